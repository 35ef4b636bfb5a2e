#!/usr/bin/env python3
"""Every reading path of DESIGN.md end to end against the real groupd (and certd).

Usage: groupd_paths_test.py BLINDLIST GROUPD CERTD [unittest args]
Store: SQLite, or PostgreSQL with BLINDLIST_TEST_STORE=postgres (see harness.py).

Two groups, an RSA-3072 and a P-256 one, made with `blindlist admin`; posts to
each made by `openssl cms -encrypt` (a stock S/MIME engine) and by `blindlist
encrypt`, to the public certificate fetched unauthenticated. Then each path:
  C      admin export-key -> openssl pkcs12 -> openssl cms -decrypt
  E      blindlist open --method rewrap (--splice-only -> openssl cms -decrypt
         with the member's own key; and the full open), mTLS and token
  F      blindlist open --method tls, with a token and with mTLS
  G      a membership certificate from certd (CSR by openssl) ->
         blindlist open --method cert, no member credential; openssl reads the
         --splice-only output
  S      blindlist open --method secret
  B      the exploder's mTLS POST /rewrap/exploder: a KEKRecipientInfo under the
         current group secret (key id as GET /secrets says), spliced in place of
         the group's RecipientInfo, read by openssl -secretkey and blindlist
  blind  blindlist open --method blind, RSA and EC
  bulk   several items in one call
Plus key rotation (old posts stay readable, the public certificate changes,
destroying the retired version makes old posts unreadable) and member removal
taking effect on the next request.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import b64, unb64, quote  # noqa: E402

RSA = "list-rsa@example.org"
EC = "list-ec@example.org"
ROT = "list-rot@example.org"


class ReadingPaths(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("paths").start()
        p = d.pki
        cls.tmp = harness.tempdir("paths-work")
        p.make_ca("member-ca", "Integration member CA")
        # alice: RSA certificate (mTLS) and a token; bob: EC certificate and a token;
        # carol: a token only; dave: a token (removed later); erin: a certificate only (removed later).
        cls.alice = (p.member("alice", "member-ca", "rsa2048", "alice@example.org"), p.key("alice"))
        cls.bob = (p.member("bob", "member-ca", "ec", "bob@example.org"), p.key("bob"))
        cls.erin = (p.member("erin", "member-ca", "ec", "erin@example.org"), p.key("erin"))
        cls.exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))

        cls.groups = {RSA: d.create_group(RSA, "rsa3072"), EC: d.create_group(EC, "p256")}
        d.create_group(ROT, "p256")
        cls.tokens = {}
        cls.seen_secrets = set()  # CEKs and group secrets handed out: never in the audit or the logs
        for g in (RSA, EC, ROT):
            r = d.admin("member", "add", g, "alice@example.org", "--cert", cls.alice[0], "--token")
            cls.tokens[(g, "alice")] = r["token"]
            r = d.admin("member", "add", g, "bob@example.org", "--cert", cls.bob[0], "--token")
            cls.tokens[(g, "bob")] = r["token"]
            r = d.admin("member", "add", g, "carol@example.org", "--token")
            cls.tokens[(g, "carol")] = r["token"]
            assert r["token"].startswith("blt_"), r
        r = d.admin("member", "add", EC, "dave@example.org", "--token")
        cls.tokens[(EC, "dave")] = r["token"]
        d.admin("member", "add", EC, "erin@example.org", "--cert", cls.erin[0])
        for g in (RSA, EC):
            d.admin("exploder", "set", g, "--cert", cls.exploder[0])

        # Posts, to the certificate anyone can fetch.
        cls.cert = {}
        cls.posts = {}
        cls.plain = {}
        for g, tag in ((RSA, "rsa"), (EC, "ec"), (ROT, "rot")):
            cls.cert[g] = cls.f("%s-group.crt" % tag)
            d.public_certificate(g, cls.cert[g])
            ent = cls.f("%s-entity.txt" % tag)
            harness.write(ent, harness.entity("Hello %s from openssl cms.\r\nCaf\u00e9 at noon." % tag))
            cls.plain[(g, "osl")] = harness.read(ent)
            cls.posts[(g, "osl")] = harness.osl_encrypt(ent, cls.f("%s-osl.smime" % tag), cls.cert[g])
            msg = cls.f("%s-message.eml" % tag)
            harness.write(msg, harness.rfc5322("Secret plans for %s" % tag, "The body of the %s post." % tag, to=g))
            cls.plain[(g, "bl")] = harness.read(msg)
            cls.posts[(g, "bl")] = cls.f("%s-bl.eml" % tag)
            d.bl("encrypt", "--to", cls.cert[g], "-i", msg, "-o", cls.posts[(g, "bl")])

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def f(cls, name):
        return os.path.join(cls.tmp, name)

    # -- helpers
    def token(self, g, who):
        return self.tokens[(g, who)]

    def check_plain(self, g, kind, out, *, whole_message=True):
        """The output of a full read: the original entity (openssl post) or message (blindlist post)."""
        expected = self.plain[(g, kind)]
        if kind == "osl" or whole_message:
            self.assertEqual(harness.crlf(out), harness.crlf(expected),
                             "the read message differs from what was sent")

    def check_openssl_read(self, g, kind, out):
        """What openssl cms -decrypt gives: the entity (openssl post) or the header-protected inner part."""
        if kind == "osl":
            self.assertEqual(out, self.plain[(g, kind)])
        else:
            # RFC 9788: the inner part carries the real Subject and the body.
            self.assertContains(out.decode(errors="replace"), "The body of the")
            self.assertContains(out.decode(errors="replace"), "Secret plans for")

    def ri_of(self, post, index=0):
        return harness.recipient_infos(harness.cms_of(post))[index]

    # -- the public certificate
    def test_public_certificate_is_unauthenticated_and_standard(self):
        for g, ku in ((RSA, "Key Encipherment"), (EC, "Key Agreement")):
            r = self.d.g.get("/v1/groups/%s/certificate" % quote(g))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers.get("content-type"), "application/pem-certificate-chain")
            self.assertEqual(r.headers.get("x-blindlist-key-version"), "1")
            text = harness.cert_text(self.cert[g])
            self.assertContains(text, "email:" + g)
            self.assertContains(text, "E-mail Protection")
            self.assertContains(text, ku)
            self.assertEqual(harness.cert_der(r.body.decode()), harness.cert_der(self.groups[g]["certificate"]))
            args = ["verify", "-CAfile", self.d.pki.crt("deploy-ca")]
            if g == RSA:
                args += ["-purpose", "smimeencrypt"]
            harness.openssl(*args, self.cert[g])
        r = self.d.g.get("/v1/groups/%s/certificate" % quote("nobody@example.org"))
        self.assertRefused(r, 404, "unknown-group")
        r = self.d.g.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'groupd_requests_total{operation="certificate",result="ok"}', r.body)
        self.assertIn(b"groupd_request_duration_seconds", r.body)

    # -- C
    def test_path_C_exported_key_reads_with_openssl(self):
        passfile = harness.write(self.f("p12.pass"), "export passphrase 123\n")
        for g, tag in ((RSA, "rsa"), (EC, "ec")):
            p12 = self.f("%s.p12" % tag)
            self.d.bl("admin", *self.d.server_args(token=self.d.admin_token), "group", "export-key", g,
                      "--passphrase-file", passfile, "--reason", "path C for the archive", "-o", p12)
            pem = self.f("%s-p12.pem" % tag)
            harness.openssl("pkcs12", "-in", p12, "-nodes", "-passin", "file:" + passfile, "-out", pem)
            text = harness.read(pem, "r")
            self.assertIn("PRIVATE KEY", text)
            self.assertEqual(harness.cert_der(text), harness.cert_der(self.cert[g]))
            for kind in ("osl", "bl"):
                out = harness.osl_decrypt(self.posts[(g, kind)], pem)
                self.check_openssl_read(g, kind, out)
            rec = self.assertAudited(self.d, g, "export-key", "ok", caller="admin:integration-admin")
            self.assertEqual(rec["key_version"], 1)
            self.assertEqual(rec["reason"], "path C for the archive")

    # -- E
    def test_path_E_rewrap_splice_then_openssl(self):
        cases = [(RSA, "alice", self.alice, "mtls"), (EC, "bob", self.bob, "token"),
                 (RSA, "bob", self.bob, "token"), (EC, "alice", self.alice, "mtls")]
        for g, who, member, auth in cases:
            creds = {"cert": member} if auth == "mtls" else {"token": self.token(g, who)}
            for kind in ("osl", "bl"):
                with self.subTest(group=g, member=who, post=kind):
                    p = self.d.open(g, "rewrap", self.posts[(g, kind)], member=member, splice_only=True, **creds)
                    spliced = harness.write(self.f("E-%s-%s-%s.smime" % (g, who, kind)), p.stdout)
                    # The group's RecipientInfo is gone: only the member's remains, the content is untouched.
                    ris = harness.recipient_infos(harness.cms_of(spliced))
                    self.assertEqual(len(ris), 1)
                    self.assertNotEqual(ris[0], self.ri_of(self.posts[(g, kind)]))
                    out = harness.osl_decrypt(spliced, member[1], member[0])
                    self.check_openssl_read(g, kind, out)
                    # The full read with the member's key.
                    p = self.d.open(g, "rewrap", self.posts[(g, kind)], member=member, **creds)
                    self.check_plain(g, kind, p.stdout)
        self.assertAudited(self.d, RSA, "rewrap", "ok", caller="alice@example.org")
        self.assertAudited(self.d, EC, "rewrap", "ok", caller="bob@example.org")

    def test_path_E_needs_a_registered_certificate(self):
        # carol has only a token: nothing to rewrap to.
        p = self.d.open(EC, "rewrap", self.posts[(EC, "bl")], token=self.token(EC, "carol"),
                        member=self.bob, check=False)
        self.assertCliRefused(p, "no-certificate")
        r = self.d.g.post("/v1/groups/%s/rewrap" % quote(EC),
                          {"recipient_info": b64(self.ri_of(self.posts[(EC, "bl")])), "reason": "t"},
                          token=self.token(EC, "carol"))
        self.assertRefused(r, 400, "no-certificate")

    # -- F
    def test_path_F_token_and_mtls(self):
        for g in (RSA, EC):
            for kind in ("osl", "bl"):
                with self.subTest(group=g, post=kind, auth="token"):
                    p = self.d.open(g, "tls", self.posts[(g, kind)], token=self.token(g, "carol"), reason="F token")
                    self.check_plain(g, kind, p.stdout)
                with self.subTest(group=g, post=kind, auth="mtls"):
                    p = self.d.open(g, "tls", self.posts[(g, kind)], cert=self.alice)
                    self.check_plain(g, kind, p.stdout)
        rec = self.assertAudited(self.d, RSA, "unwrap", "ok", caller="carol@example.org")
        self.assertEqual(rec["key_version"], 1)
        self.assertEqual(rec["reason"], "F token")
        self.assertAudited(self.d, EC, "unwrap", "ok", caller="alice@example.org")
        # The API directly: the CEK and the key version.
        r = self.d.g.post("/v1/groups/%s/unwrap" % quote(EC),
                          {"recipient_info": b64(self.ri_of(self.posts[(EC, "osl")])), "reason": "api"},
                          token=self.token(EC, "carol"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["key_version"], 1)
        self.assertEqual(len(unb64(r.json["cek"])), 32)  # AES-256-GCM
        self.seen_secrets.add(r.json["cek"])

    # -- G
    def issue_membership(self, g, name, alg, auth):
        p = self.d.pki
        csr = p.csr(name, alg, cn="ignored by certd")
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(g), {"csr": harness.read(csr, "r")}, **auth)
        self.assertEqual(r.status, 201, r)
        crt = harness.write(p.crt(name), r.json["certificate"])
        return (crt, p.key(name)), r.json["serial"]

    def test_path_G_membership_certificate(self):
        cases = [(RSA, "ec", {"token": self.token(RSA, "carol")}), (EC, "rsa2048", {"cert": self.bob})]
        for g, alg, auth in cases:
            member, serial = self.issue_membership(g, "G-%s-%s" % (g.split("@")[0], alg), alg, auth)
            harness.openssl("verify", "-CAfile", self.d.membership_ca_crt, member[0])
            for kind in ("osl", "bl"):
                with self.subTest(group=g, key=alg, post=kind):
                    # No member credential at all: only the membership certificate.
                    p = self.d.open(g, "cert", self.posts[(g, kind)], member=member, splice_only=True)
                    spliced = harness.write(self.f("G-%s-%s-%s.smime" % (g, alg, kind)), p.stdout)
                    out = harness.osl_decrypt(spliced, member[1], member[0])
                    self.check_openssl_read(g, kind, out)
                    p = self.d.open(g, "cert", self.posts[(g, kind)], member=member)
                    self.check_plain(g, kind, p.stdout)
            records = self.d.audit(g)
            rec = self.assertAudited(self.d, g, "rewrap-certificate", "ok", caller="cert:" + serial, records=records)
            self.assertEqual(rec["key_version"], 1)

    # -- S
    def test_path_S_group_secret(self):
        for g in (RSA, EC):
            for kind in ("osl", "bl"):
                with self.subTest(group=g, post=kind):
                    p = self.d.open(g, "secret", self.posts[(g, kind)], token=self.token(g, "carol"))
                    self.check_plain(g, kind, p.stdout)
            self.assertAudited(self.d, g, "rewrap-secret", "ok", caller="carol@example.org")
            self.assertAudited(self.d, g, "secrets", "ok", caller="carol@example.org")
            # One version, by number; an unknown one is a 404.
            r = self.d.g.get("/v1/groups/%s/secrets?version=1&reason=archive" % quote(g),
                             token=self.token(g, "carol"))
            self.assertEqual(r.status, 200, r)
            self.assertEqual([x["version"] for x in r.json["secrets"]], [1])
            self.assertEqual(len(unb64(r.json["secrets"][0]["secret"])), 32)  # AES-256 key wrap
            # The KEKRecipientInfo keyIdentifier: "blindlist:" and 24 random hex digits.
            self.assertRegex(bytes.fromhex(r.json["secrets"][0]["key_id"]).decode(), r"^blindlist:[0-9a-f]{24}$")
            self.seen_secrets.add(r.json["secrets"][0]["secret"])
            r = self.d.g.get("/v1/groups/%s/secrets?version=9" % quote(g), token=self.token(g, "carol"))
            self.assertRefused(r, 404, "unknown-version")

    # -- B
    def test_path_B_exploder(self):
        for g in (RSA, EC):
            for kind in ("osl", "bl"):
                with self.subTest(group=g, post=kind):
                    post = self.posts[(g, kind)]
                    cms = harness.cms_of(post)
                    r = self.d.g.post("/v1/groups/%s/rewrap/exploder" % quote(g),
                                      {"recipient_info": b64(harness.recipient_infos(cms)[0]),
                                       "reason": "fan-out"}, cert=self.exploder)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json["key_version"], 1)
                    kekri = unb64(r.json["recipient_info"])
                    key_id = harness.kekri_key_id(kekri)
                    secrets_reply = self.d.g.get("/v1/groups/%s/secrets" % quote(g), token=self.token(g, "carol"))
                    self.assertEqual(secrets_reply.status, 200, secrets_reply)
                    by_id = {s["key_id"]: s for s in secrets_reply.json["secrets"]}
                    self.assertIn(key_id.hex(), by_id, "the KEKRI's key id is none of the group's secrets")
                    secret = by_id[key_id.hex()]
                    self.assertEqual(secret["version"], r.json["secret_version"])
                    self.seen_secrets.add(secret["secret"])
                    # What the exploder forwards: the group's RecipientInfo replaced by the KEKRI.
                    forwarded = harness.write(self.f("B-%s-%s.der" % (g, kind)), harness.replace_recipient(cms, 0, kekri))
                    out = harness.osl_decrypt_secret(forwarded, unb64(secret["secret"]).hex(), key_id.hex(),
                                                     inform="DER")
                    self.check_openssl_read(g, kind, out)
                    # A member reads it with the group secret and no unwrap call.
                    p = self.d.open(g, "secret", forwarded, token=self.token(g, "carol"))
                    self.check_plain(g, kind, p.stdout)
            self.assertAudited(self.d, g, "rewrap-exploder", "ok", caller="exploder")

    # -- per member: the exploder's bulk re-wrap to each member's registered certificate
    def test_per_member_exploder_rewrap(self):
        members = ["alice@example.org", "bob@example.org", "carol@example.org", "nobody@example.org"]
        for g in (RSA, EC):
            wrapped = []
            for kind in ("osl", "bl"):
                for padding in ("oaep", "pkcs1"):
                    with self.subTest(group=g, post=kind, rsa_padding=padding):
                        post = self.posts[(g, kind)]
                        cms = harness.cms_of(post)
                        r = self.d.g.post("/v1/groups/%s/rewrap/members" % quote(g),
                                          {"recipient_info": b64(harness.recipient_infos(cms)[0]),
                                           "members": members, "rsa_padding": padding,
                                           "reason": "per-member fan-out"}, cert=self.exploder)
                        self.assertEqual(r.status, 200, r)
                        self.assertEqual(r.json["key_version"], 1)
                        got = {m["address"]: m for m in r.json["members"]}
                        self.assertEqual([m["address"] for m in r.json["members"]], members)
                        self.assertEqual(got["carol@example.org"], {"address": "carol@example.org",
                                                                     "status": "no-certificate"})
                        self.assertEqual(got["nobody@example.org"], {"address": "nobody@example.org",
                                                                      "status": "not-member"})
                        for who, member in (("alice@example.org", self.alice), ("bob@example.org", self.bob)):
                            self.assertEqual(got[who]["status"], "ok")
                            wrapped.append(got[who]["recipient_info"])
                            ri = unb64(got[who]["recipient_info"])
                            # RSA members: KTRI with the asked padding; EC members: KARI.
                            alg = harness.tlv(ri)
                            self.assertEqual(alg.tag, 0x30 if member is self.alice else 0xA1)
                            copy = harness.write(self.f("PM-%s-%s-%s-%s.der" % (g, kind, padding, who)),
                                                 harness.replace_recipient(cms, 0, ri))
                            self.assertEqual(len(harness.recipient_infos(harness.cms_of(copy))), 1)
                            out = harness.osl_decrypt(copy, member[1], member[0], inform="DER")
                            self.check_openssl_read(g, kind, out)
            # One audit record per request, naming every address by its status, never a key.
            recs = self.d.audit(g)
            self.assertEqual([rec for rec in recs if rec["operation"] == "rewrap-member"], [])
            per = [rec for rec in recs if rec["operation"] == "rewrap-members" and
                   rec["reason"].startswith("per-member fan-out")]
            self.assertEqual(len(per), 4, per)  # two posts, two paddings
            for rec in per:
                self.assertEqual(rec["caller"], "exploder")
                self.assertEqual(rec["result"], "ok")
                self.assertEqual(rec["reason"], "per-member fan-out; members:4 wrapped:2")
                self.assertEqual(rec["members"], {"ok": ["alice@example.org", "bob@example.org"],
                                                  "not-member": ["nobody@example.org"],
                                                  "no-certificate": ["carol@example.org"]})
                for ri in wrapped:
                    self.assertNotIn(ri[:24], json.dumps(rec), "no key material in the audit")
            self.assertMemberAudited(self.d, g, "alice@example.org", "ok")
            self.assertMemberAudited(self.d, g, "nobody@example.org", "not-member")

    def test_per_member_follows_the_roster_of_each_request(self):
        """The re-wrap keeps certificates by fingerprint across requests, never membership: a
        replaced certificate is the one wrapped to on the very next request, a removed member
        gets nothing on the next."""
        g = "list-pm@example.org"
        p = self.d.pki
        frank1 = (p.member("frank1", "member-ca", "ec", "frank@example.org"), p.key("frank1"))
        frank2 = (p.member("frank2", "member-ca", "rsa2048", "frank@example.org"), p.key("frank2"))
        self.d.create_group(g, "p256")
        self.d.admin("member", "add", g, "frank@example.org", "--cert", frank1[0])
        self.d.admin("exploder", "set", g, "--cert", self.exploder[0])
        cert = self.f("pm-group.crt")
        self.d.public_certificate(g, cert)
        ent = self.f("pm-entity.txt")
        harness.write(ent, harness.entity("For frank, whichever key he has."))
        post = harness.osl_encrypt(ent, self.f("pm-osl.smime"), cert)
        cms = harness.cms_of(post)
        path = "/v1/groups/%s/rewrap/members" % quote(g)
        body = {"recipient_info": b64(harness.recipient_infos(cms)[0]), "members": ["frank@example.org"]}

        def copy_for(step):
            r = self.d.g.post(path, body, cert=self.exploder)
            self.assertEqual(r.status, 200, r)
            (entry,) = r.json["members"]
            if entry["status"] != "ok":
                return entry["status"], None
            return "ok", harness.write(self.f("pm-%s.der" % step),
                                       harness.replace_recipient(cms, 0, unb64(entry["recipient_info"])))

        def reads(copy, member):
            q = harness.openssl("cms", "-decrypt", "-inform", "DER", "-in", copy, "-recip", member[0],
                                "-inkey", member[1], check=False)
            return q.returncode == 0 and q.stdout == harness.read(ent)

        for step in ("first", "cached"):
            status, copy = copy_for(step)
            self.assertEqual(status, "ok")
            self.assertTrue(reads(copy, frank1), step)
        self.d.admin("member", "set-cert", g, "frank@example.org", "--cert", frank2[0])
        status, copy = copy_for("new-cert")
        self.assertEqual(status, "ok")
        self.assertTrue(reads(copy, frank2), "the replaced certificate's key does not read the copy")
        self.assertFalse(reads(copy, frank1), "the copy after set-cert is still for the old key")
        self.d.admin("member", "remove", g, "frank@example.org")
        self.assertEqual(copy_for("removed"), ("not-member", None))
        self.assertMemberAudited(self.d, g, "frank@example.org", "not-member")

    def test_per_member_refusals(self):
        g = EC
        ri = b64(harness.recipient_infos(harness.cms_of(self.posts[(g, "osl")]))[0])
        path = "/v1/groups/%s/rewrap/members" % quote(g)
        # Only the registered exploder: a member's certificate is refused.
        r = self.d.g.post(path, {"recipient_info": ri, "members": ["alice@example.org"]}, cert=self.alice)
        self.assertRefused(r, 403, "not-exploder")
        r = self.d.g.post(path, {"recipient_info": ri, "members": ["alice@example.org"]})
        self.assertRefused(r, 401, "unauthenticated")
        r = self.d.g.post(path, {"recipient_info": ri}, cert=self.exploder)
        self.assertRefused(r, 400, "malformed-request")
        r = self.d.g.post(path, {"recipient_info": ri, "members": "alice@example.org"}, cert=self.exploder)
        self.assertRefused(r, 400, "malformed-request")
        r = self.d.g.post(path, {"recipient_info": ri, "members": ["not an address"]}, cert=self.exploder)
        self.assertRefused(r, 400, "bad-address")
        r = self.d.g.post(path, {"recipient_info": ri, "members": ["m%d@example.org" % i for i in range(1001)]},
                          cert=self.exploder)
        self.assertRefused(r, 413, "too-many")
        # A RecipientInfo for another key, a damaged one, one that is not one: unwrap-failed, alike.
        other = b64(harness.recipient_infos(harness.cms_of(self.posts[(RSA, "osl")]))[0])
        r1 = self.d.g.post(path, {"recipient_info": other, "members": ["alice@example.org"]}, cert=self.exploder)
        b1 = self.assertRefused(r1, 400, "unwrap-failed")
        r = self.d.g.post(path, {"recipient_info": "%%%", "members": ["alice@example.org"]}, cert=self.exploder)
        self.assertRefused(r, 400, "malformed-base64")
        # A damaged wrapped key on a P-256 KARI: a synthetic key, answered like any other (200).
        damaged = harness.flip_last_byte(unb64(ri))
        r = self.d.g.post(path, {"recipient_info": b64(damaged), "members": ["alice@example.org"]},
                          cert=self.exploder)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["members"][0]["status"], "ok")
        self.assertEqual(b1["message"], "cannot unwrap this RecipientInfo for this group")

    # -- blind
    def test_path_blind_rsa_and_ec(self):
        for g in (RSA, EC):
            for kind in ("osl", "bl"):
                with self.subTest(group=g, post=kind):
                    p = self.d.open(g, "blind", self.posts[(g, kind)], token=self.token(g, "carol"))
                    self.check_plain(g, kind, p.stdout)
            self.assertAudited(self.d, g, "blind", "ok", caller="carol@example.org")

    # -- bulk
    def test_bulk(self):
        g = EC
        ri_osl = self.ri_of(self.posts[(g, "osl")])
        ri_bl = self.ri_of(self.posts[(g, "bl")])
        token = self.token(g, "bob")
        single = {}
        for name, ri in (("osl", ri_osl), ("bl", ri_bl)):
            r = self.d.g.post("/v1/groups/%s/unwrap" % quote(g), {"recipient_info": b64(ri)}, token=token)
            self.assertEqual(r.status, 200, r)
            single[name] = r.json["cek"]
        body = {"reason": "archive", "requests": [
            {"operation": "unwrap", "recipient_info": b64(ri_osl)},
            {"operation": "unwrap", "recipient_info": b64(ri_bl)},
            {"operation": "rewrap-secret", "recipient_info": b64(ri_osl)},
            {"operation": "rewrap", "recipient_info": b64(ri_bl)},
            # Tampered: a key all the same (implicit rejection), not the post's.
            {"operation": "unwrap", "recipient_info": b64(harness.flip_last_byte(ri_bl))},
            # Names no key of this group: refused.
            {"operation": "unwrap", "recipient_info": b64(self.ri_of(self.posts[(RSA, "bl")]))},
        ]}
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(g), body, token=token)
        self.assertEqual(r.status, 200, r)
        out = r.json["responses"]
        self.assertEqual([x["status"] for x in out], [200, 200, 200, 200, 200, 400], out)
        self.assertEqual(out[0]["cek"], single["osl"])
        self.assertEqual(out[1]["cek"], single["bl"])
        self.seen_secrets.update(single.values())
        self.assertEqual(len(unb64(out[4]["cek"])), 32)
        self.assertNotEqual(out[4]["cek"], single["bl"])
        self.assertEqual(out[5]["error"], "unwrap-failed")
        # The rewrap-secret item: a KEKRI that openssl opens with the group secret.
        kekri = unb64(out[2]["recipient_info"])
        secrets_reply = self.d.g.get("/v1/groups/%s/secrets" % quote(g), token=token).json["secrets"]
        secret = next(s for s in secrets_reply if s["key_id"] == harness.kekri_key_id(kekri).hex())
        fwd = harness.write(self.f("bulk.der"),
                            harness.replace_recipient(harness.cms_of(self.posts[(g, "osl")]), 0, kekri))
        self.assertEqual(harness.osl_decrypt_secret(fwd, unb64(secret["secret"]).hex(), secret["key_id"], inform="DER"),
                         self.plain[(g, "osl")])
        # The rewrap item: to bob's registered EC certificate.
        spliced = harness.write(self.f("bulk-E.der"),
                                harness.replace_recipient(harness.cms_of(self.posts[(g, "bl")]), 0,
                                                          unb64(out[3]["recipient_info"])))
        self.check_openssl_read(g, "bl", harness.osl_decrypt(spliced, self.bob[1], self.bob[0], inform="DER"))
        self.assertAudited(self.d, g, "bulk", "partial:1", caller="bob@example.org")

    # -- rotation
    def test_rotation_and_destroy(self):
        d = self.d
        old_cert = self.cert[ROT]
        old_post = self.posts[(ROT, "osl")]
        token = self.token(ROT, "carol")
        r = d.admin("group", "rotate", ROT)
        self.assertEqual(r["key_version"], 2)
        show = d.admin("group", "show", ROT)
        states = {k["version"]: (k["state"], k["key_type"]) for k in show["keys"]}
        self.assertEqual(states, {1: ("retired", "p256"), 2: ("active", "p256")},
                         "rotation must keep the group's key type unless told otherwise")
        # The public certificate is the new one.
        new_cert = self.f("rot-group-v2.crt")
        pub = d.public_certificate(ROT, new_cert)
        self.assertEqual(pub.headers.get("x-blindlist-key-version"), "2")
        self.assertNotEqual(harness.cert_der(new_cert), harness.cert_der(old_cert))
        self.assertEqual(harness.cert_der(new_cert), harness.cert_der(r["certificate"]))
        # Old posts still open through F (key version 1), new ones too (version 2).
        p = d.open(ROT, "tls", old_post, token=token)
        self.check_plain(ROT, "osl", p.stdout)
        new_post = harness.osl_encrypt(harness.write(self.f("rot2.txt"), self.plain[(ROT, "osl")]),
                                       self.f("rot2.smime"), new_cert)
        p = d.open(ROT, "tls", new_post, token=token)
        self.check_plain(ROT, "osl", p.stdout)
        r = d.g.post("/v1/groups/%s/unwrap" % quote(ROT), {"recipient_info": b64(self.ri_of(old_post))}, token=token)
        self.assertEqual((r.status, r.json["key_version"]), (200, 1))
        # The current version cannot be destroyed; the retired one can.
        p = d.admin("group", "destroy-key", ROT, "--version", "2", check=False)
        self.assertCliRefused(p, "key-active")
        d.admin("group", "destroy-key", ROT, "--version", "1")
        self.assertAudited(d, ROT, "key-destroy", "ok")
        p = d.open(ROT, "tls", old_post, token=token, check=False)
        self.assertCliRefused(p, "unwrap-failed")
        r = d.g.post("/v1/groups/%s/unwrap" % quote(ROT), {"recipient_info": b64(self.ri_of(old_post))}, token=token)
        self.assertRefused(r, 400, "unwrap-failed")
        self.assertAudited(d, ROT, "unwrap", "unwrap-failed", caller="carol@example.org")
        p = d.open(ROT, "tls", new_post, token=token)
        self.check_plain(ROT, "osl", p.stdout)
        show = d.admin("group", "show", ROT)
        self.assertEqual({k["version"]: k["state"] for k in show["keys"]}, {1: "destroyed", 2: "active"})
        # A secret rotation adds a secret version.
        r = d.admin("group", "rotate", ROT, "--secret")
        self.assertEqual(r["secret_version"], 2)

    # -- removal
    def test_member_removal_takes_effect_on_the_next_request(self):
        d = self.d
        post = self.posts[(EC, "bl")]
        token = self.token(EC, "dave")
        p = d.open(EC, "tls", post, token=token)
        self.check_plain(EC, "bl", p.stdout)
        d.admin("member", "remove", EC, "dave@example.org")
        p = d.open(EC, "tls", post, token=token, check=False)
        self.assertCliRefused(p, "401")
        p = d.open(EC, "secret", post, token=token, check=False)
        self.assertCliRefused(p, "401")
        # By certificate (mTLS): erin.
        p = d.open(EC, "tls", post, cert=self.erin)
        self.check_plain(EC, "bl", p.stdout)
        d.admin("member", "remove", EC, "erin@example.org")
        p = d.open(EC, "tls", post, cert=self.erin, check=False)
        self.assertCliRefused(p, "403", "not-a-member")
        members = [m["address"] for m in d.admin("member", "list", EC)["members"]]
        self.assertNotIn("dave@example.org", members)
        self.assertNotIn("erin@example.org", members)
        self.assertIn("carol@example.org", members)

    # -- the admin CLI's text output
    def test_admin_show_and_audit_text(self):
        p = self.d.bl("admin", *self.d.server_args(token=self.d.admin_token), "group", "show", RSA)
        text = p.stdout.decode()
        self.assertContains(text, "group:    " + RSA)
        self.assertContains(text, "rsa3072")
        p = self.d.bl("admin", *self.d.server_args(token=self.d.admin_token), "audit", RSA, "--limit", "5")
        self.assertTrue(p.stdout.strip(), "empty audit")

    # -- last (alphabetically): nothing secret in the audit or the logs
    def test_zz_no_key_material_in_audit_or_logs(self):
        self.assertTrue(self.seen_secrets, "the path tests handed out no CEK or secret?")
        secrets_ = set(self.seen_secrets) | set(self.tokens.values()) | {self.d.admin_token}
        # Also in hex, the form a careless log line might use.
        secrets_ |= {unb64(x).hex() for x in self.seen_secrets}
        records = []
        for g in (RSA, EC, ROT):
            records += self.d.audit(g, limit=10000)
        text = "\n".join(repr(r) for r in records)
        logs = self.d.groupd.log_text() + self.d.certd.log_text()
        for secret in secrets_:
            self.assertNotIn(secret, text, "key material or a token in the audit")
            self.assertNotIn(secret, logs, "key material or a token in a daemon log")
        # Every record names a known operation and a result.
        for r in records:
            self.assertTrue(r["operation"] and r["result"], r)


if __name__ == "__main__":
    harness.main()
