#!/usr/bin/env python3
"""groupd's access matrix: every refusal with the right status and JSON error,
and visible in the audit (GET /v1/groups/G/audit as an administrator: the record
with that operation and result code).

Usage: groupd_access_test.py BLINDLIST GROUPD CERTD [unittest args]

Also: a tampered RecipientInfo fails exactly like an unknown one; blind inputs
off the curve or out of range; rate limiting (429 with Retry-After) on a second
groupd with rate_per_second=1, rate_burst=3; the PKCS#12 export of path C
imports into `openssl pkcs12` and NSS `pk12util`.
"""

import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

A = "list-a@example.org"   # P-256
B = "list-b@example.org"   # P-256
R = "list-r@example.org"   # RSA-3072
UNWRAP_FAILED = "cannot unwrap this RecipientInfo for this group"


class AccessMatrix(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("access").start()
        p = d.pki
        cls.tmp = harness.tempdir("access-work")
        p.make_ca("member-ca", "Integration member CA")
        p.make_ca("foreign-ca", "Some other CA")
        cls.m1 = (p.member("m1", "member-ca", "ec", "m1@example.org"), p.key("m1"))  # member of A and R
        cls.m2 = (p.member("m2", "member-ca", "ec", "m2@example.org"), p.key("m2"))  # member of B
        cls.m4 = (p.member("m4", "member-ca", "ec", "m4@example.org"), p.key("m4"))  # A, removed later
        cls.stranger = (p.member("stranger", "member-ca", "ec", "stranger@example.org"), p.key("stranger"))
        cls.exploder = (p.client("exploder", "member-ca", "exploder of A"), p.key("exploder"))
        cls.other_exploder = (p.client("exploder2", "member-ca", "exploder of B"), p.key("exploder2"))
        d.create_group(A, "p256")
        d.create_group(B, "p256")
        d.create_group(R, "rsa3072")
        cls.tok = {}
        cls.tok["m1"] = d.admin("member", "add", A, "m1@example.org", "--cert", cls.m1[0], "--token")["token"]
        cls.tok["m1r"] = d.admin("member", "add", R, "m1@example.org", "--cert", cls.m1[0], "--token")["token"]
        cls.tok["m2"] = d.admin("member", "add", B, "m2@example.org", "--cert", cls.m2[0], "--token")["token"]
        cls.tok["m3"] = d.admin("member", "add", A, "m3@example.org", "--token")["token"]
        d.admin("member", "add", A, "m4@example.org", "--cert", cls.m4[0])
        cls.tok["g1"] = d.admin("member", "add", A, "g1@example.org", "--token")["token"]  # path G, revoked later
        cls.tok["gb"] = d.admin("member", "add", B, "gb@example.org", "--token")["token"]  # path G for B
        d.admin("exploder", "set", A, "--cert", cls.exploder[0])
        d.admin("exploder", "set", B, "--cert", cls.other_exploder[0])
        cls.cert = {g: cls.f("%s.crt" % g) for g in (A, B, R)}
        for g in (A, B, R):
            d.public_certificate(g, cls.cert[g])
        msg = harness.write(cls.f("msg.eml"), harness.rfc5322("access", "The access matrix body."))
        cls.post = {}
        # A's post also goes to m1 directly: its second RecipientInfo is one groupd has no key for.
        cls.post[A] = cls.f("a.eml")
        d.bl("encrypt", "--to", cls.cert[A], "--to", cls.m1[0], "-i", msg, "-o", cls.post[A])
        ent = harness.write(cls.f("entity.txt"), harness.entity("RSA post"))
        cls.post["R-oaep"] = cls.f("r-oaep.eml")
        d.bl("encrypt", "--to", cls.cert[R], "--to", cls.m1[0], "-i", msg, "-o", cls.post["R-oaep"])
        cls.post["R-pkcs1"] = harness.osl_encrypt(ent, cls.f("r-pkcs1.smime"), cls.cert[R], "-aes256")
        cls.ri = {k: harness.recipient_infos(harness.cms_of(v)) for k, v in cls.post.items()}

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def f(cls, name):
        return os.path.join(cls.tmp, name)

    def unwrap(self, group, ri, **auth):
        return self.d.g.post("/v1/groups/%s/unwrap" % quote(group), {"recipient_info": b64(ri), "reason": "t"},
                             **auth)

    # -- member authentication
    def test_no_credentials_401(self):
        r = self.unwrap(A, self.ri[A][0])
        self.assertRefused(r, 401, "unauthenticated")
        self.assertAudited(self.d, A, "unwrap", "unauthenticated", caller="anonymous")

    def test_bad_token_401(self):
        r = self.d.g.post("/v1/groups/%s/rewrap/secret" % quote(A), {"recipient_info": b64(self.ri[A][0])},
                          token="blt_" + "00" * 32)
        self.assertRefused(r, 401, "bad-token")
        self.assertAudited(self.d, A, "rewrap-secret", "bad-token", caller="anonymous")

    def test_non_member_certificate_403(self):
        r = self.unwrap(A, self.ri[A][0], cert=self.stranger)
        self.assertRefused(r, 403, "not-a-member")
        rec = self.assertAudited(self.d, A, "unwrap", "not-a-member")
        self.assertTrue(rec["caller"].startswith("cert-sha256:"), rec)

    def test_member_of_another_group_403(self):
        r = self.unwrap(A, self.ri[A][0], token=self.tok["m2"])
        self.assertRefused(r, 403, "not-a-member")
        self.assertAudited(self.d, A, "unwrap", "not-a-member", caller="m2@example.org")
        r = self.d.g.post("/v1/groups/%s/rewrap" % quote(A), {"recipient_info": b64(self.ri[A][0])}, cert=self.m2)
        self.assertRefused(r, 403, "not-a-member")
        self.assertAudited(self.d, A, "rewrap", "not-a-member")
        r = self.d.g.get("/v1/groups/%s/secrets" % quote(A), token=self.tok["m2"])
        self.assertRefused(r, 403, "not-a-member")
        self.assertAudited(self.d, A, "secrets", "not-a-member", caller="m2@example.org")

    def test_removed_member_refused_on_the_next_request(self):
        # Token: one successful request, removal, then the very next request.
        r = self.unwrap(A, self.ri[A][0], token=self.tok["m3"])
        self.assertEqual(r.status, 200, r)
        r = self.d.g.request("DELETE", "/v1/groups/%s/members/m3@example.org" % quote(A), token=self.d.admin_token)
        self.assertEqual(r.status, 200, r)
        r = self.unwrap(A, self.ri[A][0], token=self.tok["m3"])
        self.assertRefused(r, 401, "bad-token")
        self.assertAudited(self.d, A, "member-remove", "ok", caller="admin:integration-admin")
        self.assertAudited(self.d, A, "unwrap", "bad-token")
        # Certificate (mTLS) on a kept-alive sense: a new request right after removal.
        r = self.unwrap(A, self.ri[A][0], cert=self.m4)
        self.assertEqual(r.status, 200, r)
        self.d.admin("member", "remove", A, "m4@example.org")
        r = self.unwrap(A, self.ri[A][0], cert=self.m4)
        self.assertRefused(r, 403, "not-a-member")

    # -- path G
    def membership_certificate(self, group, token, name):
        p = self.d.pki
        csr = p.csr(name, "ec")
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(group), {"csr": harness.read(csr, "r")}, token=token)
        self.assertEqual(r.status, 201, r)
        return harness.write(p.crt(name), r.json["certificate"]), r.json["serial"]

    def rewrap_certificate(self, group, cert_path):
        ri = b64(self.ri[A][0])
        return self.d.g.post("/v1/groups/%s/rewrap/certificate" % quote(group),
                             {"recipient_info": ri, "certificate": harness.read(cert_path, "r"),
                              "proof": harness.possession_proof(group, [ri], harness.key_of(cert_path)),
                              "reason": "G"})

    def test_path_G_refusals(self):
        d = self.d
        good, serial = self.membership_certificate(A, self.tok["g1"], "g-good")
        r = self.rewrap_certificate(A, good)
        self.assertEqual(r.status, 200, r)
        # Expired: signed by the membership CA, validity in the past.
        expired = d.pki.dated_certificate("g-expired", ca_crt=d.membership_ca_crt, ca_key=d.membership_ca_key,
                                          passin="pass:" + d.CA_PASSPHRASE, start="20200101000000Z",
                                          end="20200102000000Z", san="URI:urn:blindlist:group:" + A)
        r = self.rewrap_certificate(A, expired)
        self.assertRefused(r, 403, "expired-certificate")
        self.assertAudited(d, A, "rewrap-certificate", "expired-certificate",
                           caller="cert:" + harness.cert_serial(expired))
        # Foreign CA, same group claim.
        foreign = d.pki.issue("g-foreign", "foreign-ca", "ec", "member-x", key_usage="keyAgreement",
                              san="URI:urn:blindlist:group:" + A)
        r = self.rewrap_certificate(A, foreign)
        self.assertRefused(r, 403, "foreign-certificate")
        self.assertAudited(d, A, "rewrap-certificate", "foreign-certificate")
        # A genuine certificate for another group.
        other, _ = self.membership_certificate(B, self.tok["gb"], "g-other")
        r = self.rewrap_certificate(A, other)
        self.assertRefused(r, 403, "wrong-group")
        self.assertAudited(d, A, "rewrap-certificate", "wrong-group")
        # Revoked: the member is removed from the roster, which revokes its certificates.
        d.admin("member", "remove", A, "g1@example.org")
        r = self.rewrap_certificate(A, good)
        self.assertRefused(r, 403, "revoked-certificate")
        self.assertAudited(d, A, "rewrap-certificate", "revoked-certificate", caller="cert:" + serial)
        # Not a certificate at all.
        r = d.g.post("/v1/groups/%s/rewrap/certificate" % quote(A),
                     {"recipient_info": b64(self.ri[A][0]), "certificate": "not PEM"})
        self.assertRefused(r, 400, "malformed-certificate")

    # -- path B
    def test_wrong_exploder_403(self):
        path = "/v1/groups/%s/rewrap/exploder" % quote(A)
        body = {"recipient_info": b64(self.ri[A][0]), "reason": "fan-out"}
        r = self.d.g.post(path, body, cert=self.other_exploder)
        self.assertRefused(r, 403, "not-exploder")
        self.assertAudited(self.d, A, "rewrap-exploder", "not-exploder")
        r = self.d.g.post(path, body, cert=self.m1)  # a member is not the exploder either
        self.assertRefused(r, 403, "not-exploder")
        r = self.d.g.post(path, body, token=self.tok["m1"])
        self.assertRefused(r, 401, "unauthenticated")
        self.assertAudited(self.d, A, "rewrap-exploder", "unauthenticated")
        r = self.d.g.post(path, body, cert=self.exploder)
        self.assertEqual(r.status, 200, r)

    # -- what a failed unwrap looks like
    def test_tampered_recipient_info_answers_like_a_valid_one(self):
        # Implicit rejection: a RecipientInfo of the group's key gets 200 and a key whether or
        # not it really unwraps (a synthetic one, the same each time); only one that names no
        # key of the group is refused, and that refusal says nothing about padding.
        cases = [(A, self.ri[A], "m1"), (R, self.ri["R-oaep"], "m1r")]
        for group, ris, tok in cases:
            with self.subTest(group=group):
                r = self.unwrap(group, ris[0], token=self.tok[tok])
                self.assertEqual(r.status, 200, r)
                tampered = self.unwrap(group, harness.flip_last_byte(ris[0]), token=self.tok[tok])
                self.assertEqual(tampered.status, 200, tampered)
                self.assertEqual(sorted(tampered.json), sorted(r.json))
                self.assertNotEqual(tampered.json["cek"], r.json["cek"])
                again = self.unwrap(group, harness.flip_last_byte(ris[0]), token=self.tok[tok])
                self.assertEqual(again.json["cek"], tampered.json["cek"])
                unknown = self.unwrap(group, ris[1], token=self.tok[tok])  # addressed to m1, not the group
                self.assertRefused(unknown, 400, "unwrap-failed", UNWRAP_FAILED)
                self.assertAudited(self.d, group, "unwrap", "unwrap-failed", caller="m1@example.org")
        # RSA PKCS#1 v1.5 (what stock clients send): a key too when tampered.
        ri = harness.recipient_infos(harness.cms_of(self.post["R-pkcs1"]))[0]
        good = self.unwrap(R, ri, token=self.tok["m1r"])
        self.assertEqual(good.status, 200)
        r = self.unwrap(R, harness.flip_last_byte(ri), token=self.tok["m1r"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json), sorted(good.json))
        self.assertNotEqual(r.json["cek"], good.json["cek"])

    def test_blind_rejects_bad_points_and_integers(self):
        path = "/v1/groups/%s/blind"
        # EC: not on the curve, and the point at infinity.
        off_curve = b"\x04" + b"\x01" * 64
        for blinded in (off_curve, b"\x00"):
            r = self.d.g.post(path % quote(A), {"recipient_info": b64(self.ri[A][0]), "blinded": b64(blinded)},
                              token=self.tok["m1"])
            self.assertRefused(r, 400, "bad-point")
        self.assertAudited(self.d, A, "blind", "bad-point", caller="m1@example.org")
        # RSA: 0 and n (all 0xff is >= n) are out of range.
        for blinded in (b"\x00" * 384, b"\xff" * 384):
            r = self.d.g.post(path % quote(R), {"recipient_info": b64(self.ri["R-oaep"][0]),
                                                "blinded": b64(blinded)}, token=self.tok["m1r"])
            self.assertRefused(r, 400, "out-of-range")
        self.assertAudited(self.d, R, "blind", "out-of-range", caller="m1@example.org")

    # -- malformed input
    def test_malformed_json_400(self):
        r = self.d.g.post("/v1/groups/%s/unwrap" % quote(A), b'{"recipient_info": ', token=self.tok["m1"])
        self.assertRefused(r, 400, "malformed-json")
        self.assertAudited(self.d, A, "unwrap", "malformed-json")
        r = self.d.g.post("/v1/groups/%s/unwrap" % quote(A), b'["an array"]', token=self.tok["m1"])
        self.assertRefused(r, 400, "malformed-json")
        r = self.d.g.post("/v1/groups/%s/unwrap" % quote(A), {"recipient_info": 42}, token=self.tok["m1"])
        self.assertRefused(r, 400, "malformed-request")
        self.assertAudited(self.d, A, "unwrap", "malformed-request")

    def test_malformed_base64_400(self):
        r = self.d.g.post("/v1/groups/%s/unwrap" % quote(A), {"recipient_info": "!!not base64!!"},
                          token=self.tok["m1"])
        self.assertRefused(r, 400, "malformed-base64")
        self.assertAudited(self.d, A, "unwrap", "malformed-base64", caller="m1@example.org")

    def test_malformed_der_400(self):
        for der in (b"\x30\x03\x02\x01", b"\x04\x02hi", b"\x30\x00"):
            r = self.d.g.post("/v1/groups/%s/unwrap" % quote(A), {"recipient_info": b64(der)}, token=self.tok["m1"])
            self.assertRefused(r, 400, "malformed-der")
        self.assertAudited(self.d, A, "unwrap", "malformed-der", caller="m1@example.org")

    def test_oversized_request_413(self):
        r = self.d.g.oversized("POST", "/v1/groups/%s/unwrap" % quote(A), self.d.limits["max_body_bytes"] + 100,
                               token=self.tok["m1"])
        self.assertRefused(r, 413, "body-too-large")
        r = self.d.g.get("/v1/groups/%s/certificate" % quote(A), headers={"X-Padding": "x" * 9000})
        self.assertRefused(r, 431, "headers-too-large")

    def test_oversized_request_is_audited(self):
        # The 413 is answered by the HTTPS layer before the handler runs; groupd counts it
        # through the server's refusal observer and audits the count (one record per
        # address, group, operation and result every refusal_audit_seconds).
        r = self.d.g.oversized("POST", "/v1/groups/%s/rewrap" % quote(A), self.d.limits["max_body_bytes"] + 100,
                               token=self.tok["m1"])
        self.assertEqual(r.status, 413)
        rec = self.assertAuditedSoon(self.d, A, "rewrap", "body-too-large", caller="ip:127.0.0.1")
        self.assertRegex(rec["reason"], r"^count:[0-9]+$")

    def test_bulk_limits(self):
        items = [{"operation": "unwrap", "recipient_info": "AA=="}] * 501  # small: under max_body_bytes
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(A), {"requests": items}, token=self.tok["m1"])
        self.assertRefused(r, 413, "too-many")
        self.assertAudited(self.d, A, "bulk", "too-many")
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(A), {"requests": "no"}, token=self.tok["m1"])
        self.assertRefused(r, 400, "malformed-request")
        # Exploder-only operations cannot hide in a bulk call.
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(A),
                          {"requests": [{"operation": "rewrap-exploder", "recipient_info": b64(self.ri[A][0])}]},
                          token=self.tok["m1"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["responses"][0]["status"], 400)
        self.assertEqual(r.json["responses"][0]["error"], "bad-operation")

    def test_unknown_group_404(self):
        r = self.unwrap("nobody@example.org", self.ri[A][0], token=self.tok["m1"])
        self.assertRefused(r, 404, "unknown-group")
        r = self.d.g.get("/v1/groups/%s/audit" % quote("nobody@example.org"), token=self.d.admin_token)
        self.assertRefused(r, 404, "unknown-group")
        # No group's audit can show it (the group does not exist): read the store itself.
        if self.d.store_url.startswith("sqlite:"):
            rows = [x for x in self.d.audit_rows_direct() if x["group"] == "nobody@example.org"]
            self.assertAudited(self.d, None, "unwrap", "unknown-group", records=rows)
        r = self.d.g.get("/v1/nothing-here")
        self.assertRefused(r, 404, "not-found")

    def test_paths_with_empty_or_encoded_slash_segments_are_refused(self):
        # A trailing or doubled slash is no other spelling of a route: 404 as for any unknown
        # path. An encoded "/" in a segment never becomes two segments: 400 bad-target.
        tok = self.d.admin_token
        members = "/v1/groups/%s/members" % quote(A)
        self.assertEqual(self.d.g.get(members, token=tok).status, 200)
        for path in (members + "/", "/" + members, members.replace("/members", "//members"),
                     "/v1//groups", "/v1/groups/"):
            self.assertRefused(self.d.g.get(path, token=tok), 404, "not-found")
        for path in ("/v1/groups/%s%%2Fmembers" % quote(A), "/v1/groups/a%2Fb/members",
                     "/v1/groups/%s%%00/members" % quote(A)):
            self.assertRefused(self.d.g.get(path, token=tok), 400, "bad-target")

    def test_wrong_method_405(self):
        r = self.d.g.get("/v1/groups/%s/unwrap" % quote(A), token=self.tok["m1"])
        self.assertRefused(r, 405, "method-not-allowed")
        self.assertAudited(self.d, A, "unwrap", "method-not-allowed")

    # -- administration
    def test_admin_refusals(self):
        g = self.d.g
        r = g.get("/v1/groups/%s/members" % quote(A))
        self.assertRefused(r, 401, "unauthenticated")
        r = g.get("/v1/groups/%s/members" % quote(A), token=self.tok["m1"])  # a member's token is no admin's
        self.assertRefused(r, 401, "bad-token")
        r = g.get("/v1/groups/%s/members" % quote(A), cert=self.m1)
        self.assertRefused(r, 403, "not-admin")
        records = self.d.audit(A)
        for result in ("unauthenticated", "bad-token", "not-admin"):
            self.assertAudited(self.d, A, "admin", result, records=records)
        r = g.post("/v1/groups", {"name": "not an address", "key_type": "p256"}, token=self.d.admin_token)
        self.assertRefused(r, 400, "bad-address")
        r = g.post("/v1/groups", {"name": "x@example.org", "key_type": "dsa"}, token=self.d.admin_token)
        self.assertRefused(r, 400, "bad-key-type")
        # A non-ASCII address: its certificate could not name it (an rfc822Name is ASCII), on any
        # creation path: refused with a word, never a 500.
        for body in ({"key_type": "p256"}, {"key_type": "rsa3072", "csr": True},
                     {"key_type": "p256-threshold"}):
            r = g.post("/v1/groups", dict(body, name="\u00e9t\u00e9@example.org"), token=self.d.admin_token)
            self.assertIn("ASCII", self.assertRefused(r, 400, "bad-address")["message"])
        r = g.post("/v1/groups", {"name": A, "key_type": "p256"}, token=self.d.admin_token)
        self.assertRefused(r, 409, "exists")
        # A name that differs only in case is the same list address: refused, naming the group.
        for key_type in ("p256", "rsa3072"):
            r = g.post("/v1/groups", {"name": A.upper(), "key_type": key_type}, token=self.d.admin_token)
            self.assertRefused(r, 409, "exists")
            self.assertIn(A, r.json["message"])
        r = g.get("/v1/groups/%s/members" % quote(A.upper()), token=self.d.admin_token)
        self.assertRefused(r, 404, "unknown-group")
        r = g.post("/v1/groups/%s/export" % quote(A), {"passphrase": "short"}, token=self.d.admin_token)
        self.assertRefused(r, 400, "weak-passphrase")
        self.assertAudited(self.d, A, "export-key", "weak-passphrase")

    # -- rate limiting
    def test_rate_limit_429_with_retry_after(self):
        limits = dict(self.d.limits, rate_per_second=1, rate_burst=3)
        daemon, ep = self.d.extra_groupd("limited", limits)
        statuses = []
        limited = None
        for _ in range(20):
            r = ep.get("/v1/groups/%s/certificate" % quote(A))
            statuses.append(r.status)
            if r.status == 429:
                limited = r
                break
        self.assertIsNotNone(limited, "no 429 after %d quick requests: %r" % (len(statuses), statuses))
        self.assertGreaterEqual(statuses.count(200), 3, "the burst of 3 must pass: %r" % statuses)
        self.assertRefused(limited, 429, "rate-limited")
        self.assertTrue(limited.headers.get("retry-after", "").isdigit(), limited.headers)
        self.assertGreaterEqual(int(limited.headers["retry-after"]), 1)
        # Another caller (its own bucket) still gets through.
        r = ep.post("/v1/groups/%s/unwrap" % quote(A), {"recipient_info": b64(self.ri[A][0])}, token=self.tok["m1"])
        self.assertEqual(r.status, 200, r)
        # 429s are audited in aggregate, by address (limits: refusal_audit_seconds).
        self.assertAuditedSoon(self.d, A, "rate-limited", "rate-limited", caller="ip:127.0.0.1")
        # SIGHUP reloads the limits: a generous bucket lets the same caller through again.
        self.d.reload_extra_groupd("limited", daemon, dict(self.d.limits, rate_per_second=1000, rate_burst=10000))
        deadline = time.monotonic() + 60
        statuses = []
        while time.monotonic() < deadline:
            burst = [ep.get("/v1/groups/%s/certificate" % quote(A)).status for _ in range(6)]
            statuses.append(burst)
            if burst == [200] * 6:
                break
            time.sleep(1)
        self.assertEqual(statuses[-1], [200] * 6, "the reloaded limits did not apply: %r" % statuses)
        self.assertIsNone(daemon.proc.poll(), "groupd exited on SIGHUP")
        self.assertIn("reloaded certificates and limits", daemon.log_text())

    def test_rate_limit_cannot_be_bypassed_with_fresh_bogus_tokens(self):
        # Failed authentications are charged to the peer address, so a caller sending
        # a new random token each time is limited too.
        limits = dict(self.d.limits, rate_per_second=1, rate_burst=3)
        _, ep = self.d.extra_groupd("limited2", limits)
        statuses = [ep.post("/v1/groups/%s/unwrap" % quote(A), {"recipient_info": "AA=="},
                            token="blt_" + os.urandom(32).hex()).status for _ in range(10)]
        self.assertIn(429, statuses, statuses)

    # -- path C export into openssl and NSS
    def test_pkcs12_export_imports_into_openssl_and_nss(self):
        passfile = harness.write(self.f("p12.pass"), "nss import passphrase\n")
        p12 = self.f("r.p12")
        self.d.bl("admin", *self.d.server_args(token=self.d.admin_token), "group", "export-key", R,
                  "--passphrase-file", passfile, "-o", p12)
        pem = self.f("r-p12.pem")
        harness.openssl("pkcs12", "-in", p12, "-nodes", "-passin", "file:" + passfile, "-out", pem)
        self.assertEqual(harness.cert_der(harness.read(pem, "r")), harness.cert_der(self.cert[R]))
        self.assertEqual(harness.osl_decrypt(self.post["R-pkcs1"], pem), harness.entity("RSA post"))
        if not shutil.which("pk12util") or not shutil.which("certutil"):
            self.fail("pk12util/certutil (libnss3-tools) are not installed")
        db = self.f("nssdb")
        os.makedirs(db)
        harness.run(["certutil", "-N", "-d", "sql:" + db, "--empty-password"])
        p = harness.run(["pk12util", "-i", p12, "-d", "sql:" + db, "-W", "nss import passphrase"])
        self.assertIn(b"PKCS12 IMPORT SUCCESSFUL", p.stdout + p.stderr)
        p = harness.run(["certutil", "-K", "-d", "sql:" + db])
        self.assertIn(b"rsa", p.stdout.lower())
        listing = harness.run(["certutil", "-L", "-d", "sql:" + db]).stdout.decode()
        self.assertIn(R, listing)
        # NSS reads the post too (EnvelopedData, AES-256-CBC, RSA PKCS#1 v1.5) with the imported key.
        if shutil.which("cmsutil"):
            der = harness.write(self.f("r-pkcs1.der"), harness.cms_of(self.post["R-pkcs1"]))
            p = harness.run(["cmsutil", "-D", "-d", "sql:" + db, "-i", der])
            self.assertEqual(p.stdout, harness.entity("RSA post"))


if __name__ == "__main__":
    harness.main()
