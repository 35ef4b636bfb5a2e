#!/usr/bin/env python3
"""certd and anonymous reading (path G) against the real certd and groupd.

Usage: certd_test.py BLINDLIST GROUPD CERTD [unittest args]

The full path G (CSR made by openssl -> certificate -> blindlist open --method
cert, openssl the final reader); refusals by certd (non-member, other group's
member, unsupported key, forged group claim, bad CSR signature, malformed CSR or
JSON, oversized request) as 4xx JSON errors; refusals by groupd of a
certificate for another group, an expired one (made with the openssl CLI and the
membership CA key, decrypted with `openssl pkey -passin`) and a revoked one;
`openssl verify` against the membership CA; the generated-key issuance
(PKCS#12); unlinkability in the audit (groupd's records for path G name only
the serial; certd's link the address to the serial); the CRL at /v1/crl.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

A = "list-a@example.org"
B = "list-b@example.org"


class Certd(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("certd").start()
        p = d.pki
        cls.tmp = harness.tempdir("certd-work")
        p.make_ca("member-ca", "Integration member CA")
        cls.bob = (p.member("bob", "member-ca", "ec", "bob@example.org"), p.key("bob"))
        cls.stranger = (p.member("stranger", "member-ca", "ec", "stranger@example.org"), p.key("stranger"))
        d.create_group(A, "p256")
        d.create_group(B, "p256")
        cls.tok = {}
        cls.tok["alice"] = d.admin("member", "add", A, "alice@example.org", "--token")["token"]
        d.admin("member", "add", A, "bob@example.org", "--cert", cls.bob[0])
        cls.tok["carol"] = d.admin("member", "add", B, "carol@example.org", "--token")["token"]
        cls.tok["dave"] = d.admin("member", "add", A, "dave@example.org", "--token")["token"]
        cls.cert = {g: cls.f("%s.crt" % g) for g in (A, B)}
        for g in (A, B):
            d.public_certificate(g, cls.cert[g])
        cls.msg = harness.rfc5322("Path G", "Read without saying who you are.", to=A)
        msg = harness.write(cls.f("msg.eml"), cls.msg)
        cls.post = cls.f("post.eml")
        d.bl("encrypt", "--to", cls.cert[A], "-i", msg, "-o", cls.post)
        cls.entity = harness.entity("openssl-made post for path G")
        cls.osl_post = harness.osl_encrypt(harness.write(cls.f("entity.txt"), cls.entity), cls.f("osl.smime"),
                                           cls.cert[A])
        cls.ri = harness.recipient_infos(harness.cms_of(cls.post))[0]

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def f(cls, name):
        return os.path.join(cls.tmp, name)

    def issue(self, group, csr_pem, **auth):
        return self.d.c.post("/v1/groups/%s/certificates" % quote(group), {"csr": csr_pem}, **auth)

    def issue_ok(self, group, name, alg="ec", **auth):
        csr = self.d.pki.csr(name, alg, cn="alice@example.org")  # certd must not copy this
        r = self.issue(group, harness.read(csr, "r"), **auth)
        self.assertEqual(r.status, 201, r)
        crt = harness.write(self.d.pki.crt(name), r.json["certificate"])
        self.assertEqual(r.json["serial"], harness.cert_serial(crt))
        return (crt, self.d.pki.key(name)), r.json["serial"]

    def rewrap(self, group, cert_path, ri=None):
        ri = b64(ri or self.ri)
        return self.d.g.post("/v1/groups/%s/rewrap/certificate" % quote(group),
                             {"recipient_info": ri, "certificate": harness.read(cert_path, "r"),
                              "proof": harness.possession_proof(group, [ri], harness.key_of(cert_path)),
                              "reason": "G"})

    # -- the full path
    def test_full_path_G(self):
        d = self.d
        for alg, auth, ku in (("ec", {"token": self.tok["alice"]}, "Key Agreement"),
                              ("rsa2048", {"cert": self.bob}, "Key Encipherment")):
            with self.subTest(key=alg):
                member, serial = self.issue_ok(A, "full-" + alg, alg, **auth)
                # openssl accepts it against the membership CA (no -purpose smimeencrypt: EC has keyAgreement only).
                harness.openssl("verify", "-CAfile", d.membership_ca_crt, member[0])
                text = harness.cert_text(member[0])
                self.assertContains(text, "URI:urn:blindlist:group:" + A)
                self.assertContains(text, ku)
                usage = re.search(r"X509v3 Key Usage:.*\n\s*(.*)", text).group(1).strip()
                self.assertEqual(usage, ku, "the key usage must match the key and nothing more")
                self.assertNotIn("alice@", text)
                self.assertNotIn("bob@", text)
                subject = harness.openssl("x509", "-in", member[0], "-noout", "-subject").stdout.decode()
                self.assertRegex(subject, r"CN ?= ?member-[0-9a-f]{32}")
                # Read: splice-only then openssl with the member's key; then the full read.
                for post, expected in ((self.post, None), (self.osl_post, self.entity)):
                    p = d.open(A, "cert", post, member=member, splice_only=True)
                    spliced = harness.write(self.f("spliced-%s.smime" % alg), p.stdout)
                    out = harness.osl_decrypt(spliced, member[1], member[0])
                    if expected is not None:
                        self.assertEqual(out, expected)
                    else:
                        self.assertContains(out.decode(), "Read without saying who you are.")
                    p = d.open(A, "cert", post, member=member)
                    self.assertContains(p.stdout.decode(), "Subject: Path G" if expected is None else "openssl-made")
                self.unlinkable(member_address="alice@example.org" if alg == "ec" else "bob@example.org",
                                serial=serial)

    def test_cert_request_command(self):
        # `blindlist cert request`: a CSR made locally (the default) or a key made by certd.
        d = self.d
        for generate in (False, True):
            with self.subTest(generate=generate):
                crt, key = self.f("cli-%s.crt" % generate), self.f("cli-%s.key" % generate)
                args = ["cert", "request", *d.server_args(endpoint=d.c, token=self.tok["alice"]),
                        "--group", A, "-o", crt, "--key-out", key]
                if generate:
                    args += ["--generate", "--passphrase-file",
                             harness.write(self.f("gen.pass"), "generated passphrase\n")]
                d.bl(*args)
                harness.openssl("verify", "-CAfile", d.membership_ca_crt, crt)
                self.assertContains(harness.cert_text(crt), "URI:urn:blindlist:group:" + A)
                p = d.open(A, "cert", self.post, member=(crt, key))
                self.assertContains(p.stdout.decode(), "Subject: Path G")
        # A non-member gets a one-line refusal and no files.
        crt, key = self.f("cli-no.crt"), self.f("cli-no.key")
        p = d.bl("cert", "request", *d.server_args(endpoint=d.c, token="blt_" + "0" * 64), "--group", A,
                 "-o", crt, "--key-out", key, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertContains(p.stderr.decode(), "bad-token")
        self.assertFalse(os.path.exists(crt) or os.path.exists(key))

    def unlinkable(self, member_address, serial):
        records = self.d.audit(A)
        g_records = [r for r in records if r["daemon"] == "groupd" and r["operation"] == "rewrap-certificate"]
        self.assertTrue(g_records, "no path G record in groupd's audit")
        for r in g_records:
            for field in ("caller", "reason", "group"):
                self.assertNotIn(member_address, r[field], r)
                self.assertNotIn("@example.org", r["caller"], r)
        self.assertAudited(self.d, A, "rewrap-certificate", "ok", caller="cert:" + serial, records=records)
        # certd's record (same store, included in the group's audit) links the address to the serial.
        issued = [r for r in records if r["daemon"] == "certd" and r["operation"] == "issue" and r["result"] == "ok"]
        self.assertIn((member_address, "serial:" + serial), [(r["caller"], r["reason"]) for r in issued])

    def test_bulk_path_G(self):
        member, serial = self.issue_ok(A, "bulk", token=self.tok["alice"])
        osl_ri = harness.recipient_infos(harness.cms_of(self.osl_post))[0]
        body = {"certificate": harness.read(member[0], "r"), "reason": "archive", "requests": [
            {"operation": "rewrap-certificate", "recipient_info": b64(self.ri)},
            {"operation": "rewrap-certificate", "recipient_info": b64(osl_ri)},
            {"operation": "unwrap", "recipient_info": b64(osl_ri)},  # cannot ride on a certificate
        ]}
        body["proof"] = harness.possession_proof(A, [x["recipient_info"] for x in body["requests"]], member[1])
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(A), body)  # no credentials at all
        self.assertEqual(r.status, 200, r)
        out = r.json["responses"]
        self.assertEqual([x["status"] for x in out], [200, 200, 400], out)
        self.assertEqual(out[2]["error"], "bad-operation")
        spliced = harness.write(self.f("bulk-G.der"), harness.replace_recipient(
            harness.cms_of(self.osl_post), 0, harness.unb64(out[1]["recipient_info"])))
        self.assertEqual(harness.osl_decrypt(spliced, member[1], member[0], inform="DER"), self.entity)
        self.assertAudited(self.d, A, "bulk", "partial:1", caller="cert:" + serial)
        # A refused certificate refuses the whole batch.
        d = self.d
        expired = d.pki.dated_certificate("bulk-expired", ca_crt=d.membership_ca_crt,
                                          ca_key=d.membership_ca_plain_key(), start="20200101000000Z",
                                          end="20200102000000Z", san="URI:urn:blindlist:group:" + A)
        body["certificate"] = harness.read(expired, "r")
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(A), body)
        self.assertRefused(r, 403, "expired-certificate")

    def test_generated_key_pkcs12(self):
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(A),
                          {"generate": True, "passphrase": "member p12 passphrase", "key_type": "p256"},
                          token=self.tok["alice"])
        self.assertEqual(r.status, 201, r)
        p12 = harness.write(self.f("gen.p12"), harness.unb64(r.json["pkcs12"]))
        pem = self.f("gen.pem")
        harness.openssl("pkcs12", "-in", p12, "-nodes", "-passin", "pass:member p12 passphrase", "-out", pem)
        text = harness.read(pem, "r")
        self.assertIn("PRIVATE KEY", text)
        self.assertEqual(harness.cert_der(text), harness.cert_der(r.json["certificate"]))
        crt = harness.write(self.f("gen.crt"), r.json["certificate"])
        harness.openssl("verify", "-CAfile", self.d.membership_ca_crt, crt)
        key = self.f("gen.key")
        harness.openssl("pkey", "-in", pem, "-out", key)
        p = self.d.open(A, "cert", self.osl_post, member=(crt, key))
        self.assertContains(p.stdout.decode(), "openssl-made")
        # The wrong passphrase does not open it.
        p = harness.openssl("pkcs12", "-in", p12, "-nodes", "-passin", "pass:wrong passphrase", check=False)
        self.assertNotEqual(p.returncode, 0)
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(A), {"generate": True, "passphrase": "short"},
                          token=self.tok["alice"])
        self.assertRefused(r, 400, "weak-passphrase")
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(A),
                          {"generate": True, "passphrase": "long enough pass", "key_type": "dsa"},
                          token=self.tok["alice"])
        self.assertRefused(r, 400, "unsupported-key")

    # -- certd refuses
    def test_non_member_refused_by_certd(self):
        csr = harness.read(self.d.pki.csr("nm", "ec"), "r")
        r = self.issue(A, csr, cert=self.stranger)
        self.assertRefused(r, 403, "not-a-member")
        self.assertAudited(self.d, A, "issue", "not-a-member", daemon="certd")
        r = self.issue(A, csr, token=self.tok["carol"])  # a member of B
        self.assertRefused(r, 403, "not-a-member")
        self.assertAudited(self.d, A, "issue", "not-a-member", caller="carol@example.org", daemon="certd")
        r = self.issue(A, csr)
        self.assertRefused(r, 401, "unauthenticated")
        r = self.issue(A, csr, token="blt_" + "11" * 32)
        self.assertRefused(r, 401, "bad-token")
        r = self.issue("nobody@example.org", csr, token=self.tok["alice"])
        self.assertRefused(r, 404, "unknown-group")

    def test_bad_csrs_refused_with_clear_errors(self):
        p = self.d.pki
        tok = {"token": self.tok["alice"]}
        # Unsupported key (Ed25519).
        r = self.issue(A, harness.read(p.csr("ed", "ed25519"), "r"), **tok)
        body = self.assertRefused(r, 400, "unsupported-key")
        self.assertIn("key type", body["message"])
        # A forged group claim.
        r = self.issue(A, harness.read(p.csr("forged", "ec", san="URI:urn:blindlist:group:other@example.org"), "r"),
                       **tok)
        self.assertRefused(r, 400, "forged-group")
        self.assertAudited(self.d, A, "issue", "forged-group", caller="alice@example.org", daemon="certd")
        # Its own group claimed is fine (certd binds it anyway).
        r = self.issue(A, harness.read(p.csr("own", "ec", san="URI:urn:blindlist:group:" + A), "r"), **tok)
        self.assertEqual(r.status, 201, r)
        # A bad signature: flip a bit of the CSR's signature.
        der = harness.openssl("req", "-in", p.csr("badsig", "ec"), "-outform", "DER").stdout
        bad = harness.flip_last_byte(der)
        pem = "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n" % b64(bad)
        r = self.issue(A, pem, **tok)
        body = self.assertRefused(r, 400, "bad-signature")
        self.assertIn("signature", body["message"])
        # Not a CSR.
        r = self.issue(A, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", **tok)
        self.assertRefused(r, 400, "bad-csr")
        r = self.issue(A, "garbage", **tok)
        self.assertRefused(r, 400, "bad-csr")
        # Malformed JSON and missing fields.
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(A), b"{csr: nope", **tok)
        self.assertRefused(r, 400, "malformed-json")
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(A), {"something": "else"}, **tok)
        self.assertRefused(r, 400, "malformed-request")
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(A), {"csr": 17}, **tok)
        self.assertRefused(r, 400, "malformed-request")
        # Oversized request.
        r = self.d.c.oversized("POST", "/v1/groups/%s/certificates" % quote(A),
                               self.d.certd_limits["max_body_bytes"] + 10, **tok)
        self.assertRefused(r, 413, "body-too-large")
        # Wrong method, unknown endpoint.
        r = self.d.c.get("/v1/groups/%s/certificates" % quote(A), **tok)
        self.assertRefused(r, 405, "method-not-allowed")
        r = self.d.c.get("/v1/nothing")
        self.assertRefused(r, 404, "not-found")

    # -- groupd refuses
    def test_certificate_for_A_refused_by_groupd_for_B(self):
        member, _ = self.issue_ok(A, "for-a", token=self.tok["alice"])
        ri_b = harness.recipient_infos(harness.cms_of(harness.osl_encrypt(
            harness.write(self.f("b.txt"), harness.entity("B")), self.f("b.smime"), self.cert[B])))[0]
        r = self.rewrap(B, member[0], ri_b)
        self.assertRefused(r, 403, "wrong-group")
        self.assertAudited(self.d, B, "rewrap-certificate", "wrong-group")
        p = self.d.open(B, "cert", self.f("b.smime"), member=member, check=False)
        self.assertCliRefused(p, "403", "wrong-group")

    def test_expired_certificate_refused(self):
        d = self.d
        plain_key = d.membership_ca_plain_key()  # openssl pkey -passin
        expired = d.pki.dated_certificate("expired", ca_crt=d.membership_ca_crt, ca_key=plain_key,
                                          start="20200101000000Z", end="20200102000000Z",
                                          san="URI:urn:blindlist:group:" + A)
        # It is the membership CA's, and only its dates are wrong.
        p = harness.openssl("verify", "-CAfile", d.membership_ca_crt, expired, check=False)
        self.assertIn(b"expired", p.stdout + p.stderr)
        r = self.rewrap(A, expired)
        self.assertRefused(r, 403, "expired-certificate")
        self.assertAudited(d, A, "rewrap-certificate", "expired-certificate",
                           caller="cert:" + harness.cert_serial(expired))
        # Not yet valid is refused the same way.
        future = d.pki.dated_certificate("future", ca_crt=d.membership_ca_crt, ca_key=plain_key,
                                         start="20900101000000Z", end="20900102000000Z",
                                         san="URI:urn:blindlist:group:" + A)
        r = self.rewrap(A, future)
        self.assertRefused(r, 403, "expired-certificate")

    def test_revoked_certificate_refused_and_in_the_crl(self):
        d = self.d
        member, serial = self.issue_ok(A, "dave", token=self.tok["dave"])
        r = self.rewrap(A, member[0])
        self.assertEqual(r.status, 200, r)
        d.admin("member", "remove", A, "dave@example.org")
        # The very next request: refused.
        r = self.rewrap(A, member[0])
        self.assertRefused(r, 403, "revoked-certificate")
        self.assertAudited(d, A, "rewrap-certificate", "revoked-certificate", caller="cert:" + serial)
        p = d.open(A, "cert", self.post, member=member, check=False)
        self.assertCliRefused(p, "403", "revoked")
        # certd no longer issues to dave.
        r = self.issue(A, harness.read(d.pki.csr("dave2", "ec"), "r"), token=self.tok["dave"])
        self.assertEqual(r.status, 401, r)
        # The CRL lists the serial, signed by the membership CA.
        r = d.c.get("/v1/crl")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "application/pkix-crl")
        crl = harness.write(self.f("crl.der"), r.body)
        text = harness.openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-text").stdout.decode()
        listed = [harness.norm_serial(s) for s in
                  re.findall(r"Serial Number: ([0-9A-Fa-f]+)", text)]
        self.assertIn(harness.norm_serial(serial), listed, text)
        p = harness.openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-CAfile", d.membership_ca_crt)
        self.assertIn(b"verify OK", p.stdout + p.stderr)
        # openssl refuses the certificate with the CRL too.
        crl_pem = self.f("crl.pem")
        harness.openssl("crl", "-inform", "DER", "-in", crl, "-out", crl_pem)
        p = harness.openssl("verify", "-crl_check", "-CAfile", d.membership_ca_crt, "-CRLfile", crl_pem, member[0],
                            check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"revoked", p.stdout + p.stderr)

    def test_ca_certificate_endpoint(self):
        r = self.d.c.get("/v1/ca")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(harness.cert_der(r.body.decode()), harness.cert_der(self.d.membership_ca_crt))
        r = self.d.c.get("/healthz")
        self.assertEqual(r.json["status"], "ok")
        r = self.d.c.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn(b"certd_requests_total", r.body)


if __name__ == "__main__":
    harness.main()
