#!/usr/bin/env python3
"""The day-one administration commands against a real groupd and certd.

Usage: admin_tools_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

`blindlist admin group list` (key type, current key version, member count); `admin member
set-cert` (a renewed S/MIME certificate: the old one stops authenticating, the new one works,
the member's token and its path-G membership certificates stay valid); `admin member new-token`
(the old token fails on the very next request); `admin audit prune --before DATE`. Each change
is audited.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import quote  # noqa: E402

A = "tools-a@example.org"
B = "tools-b@example.org"


class AdminTools(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("tools").start()
        p = d.pki
        p.make_ca("member-ca", "Tools member CA")
        cls.old = (p.member("alice-2025", "member-ca", "ec", "alice@example.org"), p.key("alice-2025"))
        cls.new = (p.member("alice-2026", "member-ca", "ec", "alice@example.org"), p.key("alice-2026"))
        d.create_group(A, "p256")
        d.create_group(B, "rsa3072")
        d.admin("group", "rotate", B)
        cls.token = d.admin("member", "add", A, "alice@example.org", "--cert", cls.old[0], "--token")["token"]
        d.admin("member", "add", A, "bob@example.org")
        d.admin("member", "add", B, "carol@example.org")

    def secrets(self, **cred):
        return self.d.g.get("/v1/groups/%s/secrets" % quote(A), **cred)

    def test_group_list(self):
        groups = {g["name"]: g for g in self.d.admin("group", "list")["groups"]}
        self.assertEqual((groups[A]["key_type"], groups[A]["key_version"], groups[A]["members"]), ("p256", 1, 2))
        self.assertEqual((groups[B]["key_type"], groups[B]["key_version"], groups[B]["members"]), ("rsa3072", 2, 1))
        text = self.d.bl("admin", *self.d.server_args(token=self.d.admin_token), "group", "list").stdout.decode()
        self.assertIn("%s  p256 v1  2 members" % A, text)
        self.assertIn("%s  rsa3072 v2  1 members" % B, text)
        # Administrators only.
        self.assertRefused(self.d.g.get("/v1/groups", token=self.token), 401, "bad-token")

    def test_set_cert_keeps_the_member_token_and_membership_certificates(self):
        # A path-G membership certificate issued before the renewal.
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(A),
                          {"generate": True, "passphrase": "a long passphrase"}, token=self.token)
        self.assertEqual(r.status, 201, r)
        serial = r.json["serial"]
        self.assertEqual(self.secrets(cert=self.old).status, 200)
        out = self.d.admin("member", "set-cert", A, "alice@example.org", "--cert", self.new[0])
        self.assertEqual(out["address"], "alice@example.org")
        fp = harness.run(["openssl", "x509", "-in", self.new[0], "-noout", "-fingerprint", "-sha256"]).stdout
        self.assertEqual(out["certificate_fingerprint"], fp.decode().split("=")[1].strip().replace(":", "").lower())
        members = {m["address"]: m for m in self.d.admin("member", "list", A)["members"]}
        self.assertEqual(members["alice@example.org"]["certificate_fingerprint"], out["certificate_fingerprint"])
        self.assertTrue(members["alice@example.org"]["has_token"])
        # The old certificate stops authenticating at once; the new one and the token work.
        r = self.secrets(cert=self.old)
        self.assertIn(r.status, (401, 403), r)
        self.assertRefused(r, r.status, r.json["error"])
        self.assertEqual(self.secrets(cert=self.new).status, 200)
        self.assertEqual(self.secrets(token=self.token).status, 200)
        # The membership certificate is not revoked: the member never left.
        crl = self.d.c.get("/v1/crl")
        self.assertEqual(crl.status, 200)
        text = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-text"], input=crl.body,
                              capture_output=True, check=True).stdout.decode()
        self.assertNotIn(harness.norm_serial(serial).upper(), text.upper().replace(":", ""))
        self.assertAudited(self.d, A, "member-set-cert", "ok")
        # Refusals: no such member, not a certificate.
        p = self.d.admin("member", "set-cert", A, "nobody@example.org", "--cert", self.new[0], check=False)
        self.assertCliRefused(p, "not-a-member")
        r = self.d.g.request("PUT", "/v1/groups/%s/members/%s/certificate" % (quote(A), quote("bob@example.org")),
                             {"certificate": "not a certificate"}, token=self.d.admin_token)
        self.assertRefused(r, 400, "malformed-certificate")

    def test_new_token_replaces_the_old_one_at_once(self):
        d = self.d
        tok = d.admin("member", "add", B, "dave@example.org", "--token")["token"]
        secrets = "/v1/groups/%s/secrets" % quote(B)
        self.assertEqual(d.g.get(secrets, token=tok).status, 200)
        text = d.bl("admin", *d.server_args(token=d.admin_token), "member", "new-token", B,
                    "dave@example.org").stdout.decode()
        self.assertIn("shown once", text)
        fresh = text.strip().split()[-1]
        self.assertTrue(fresh.startswith("blt_"), text)
        self.assertRefused(d.g.get(secrets, token=tok), 401, "bad-token")
        self.assertEqual(d.g.get(secrets, token=fresh).status, 200)
        self.assertAudited(d, B, "member-new-token", "ok")
        self.assertNotIn(fresh, json.dumps(d.audit(B)))  # the token itself is never audited
        p = d.admin("member", "new-token", B, "nobody@example.org", check=False)
        self.assertCliRefused(p, "not-a-member")

    def test_one_certificate_one_member(self):
        # A certificate registered to two members would keep a removed member reading as the other.
        d = self.d
        with open(self.old[0]) as f:
            pem = f.read()
        r = d.g.post("/v1/groups/%s/members" % quote(B), {"address": "erin@example.org", "certificate": pem},
                     token=d.admin_token)
        self.assertEqual(r.status, 201, r)  # another group: the same person on another list
        r = d.g.post("/v1/groups/%s/members" % quote(B), {"address": "frank@example.org", "certificate": pem},
                     token=d.admin_token)
        self.assertRefused(r, 409, "certificate-in-use")
        d.admin("member", "add", B, "frank@example.org")
        p = d.admin("member", "set-cert", B, "frank@example.org", "--cert", self.old[0], check=False)
        self.assertCliRefused(p, "certificate-in-use")
        # Renewing to the same certificate is not a conflict with oneself.
        d.admin("member", "set-cert", B, "erin@example.org", "--cert", self.old[0])

    def test_audit_reason_cut_on_a_character_boundary(self):
        # A reason longer than the audit keeps is cut, never in the middle of a UTF-8 sequence:
        # the request still succeeds and the audit shows whole characters.
        reason = "x" * 199 + "\u00e9" * 3
        r = self.d.g.get("/v1/groups/%s/secrets?reason=%s" % (quote(A), quote(reason)), token=self.token)
        self.assertEqual(r.status, 200, r)
        got = [rec["reason"] for rec in self.d.audit(A) if rec["operation"] == "secrets"]
        self.assertIn("x" * 199 + "\u00e9", got)

    def test_z_audit_prune(self):
        d = self.d
        self.assertTrue(d.audit(A))
        # Refused: a time in the future (it would empty the log), and not a date at all.
        p = d.admin("audit", "prune", "--before", "2999-01-01", check=False)
        self.assertCliRefused(p, "future")
        p = d.admin("audit", "prune", "--before", "yesterday", check=False)
        self.assertCliRefused(p, "YYYY-MM-DD")
        self.assertEqual(d.admin("audit", "prune", "--before", "2001-01-01")["pruned"], 0)
        # Members cannot prune.
        r = d.g.post("/v1/audit/prune", {"before": 1000000000}, token=self.token)
        self.assertRefused(r, 401, "bad-token")
        time.sleep(1.1)
        cutoff = int(time.time())
        time.sleep(1.1)
        pruned = d.admin("audit", "prune", "--before", str(cutoff))["pruned"]
        self.assertGreater(pruned, 0)
        left = d.audit(A)
        self.assertTrue(all(rec["time"] >= cutoff for rec in left), left)
        # The prune's own record (no group) is read with `admin audit` and no group, which shows
        # every record: the log says it was pruned, and by whom.
        every = d.admin("audit")["audit"]
        prunes = [r for r in every if r["operation"] == "audit-prune" and r["result"] == "ok"]
        self.assertTrue(prunes, every)
        self.assertEqual(prunes[0]["reason"], "before:%d pruned:%d" % (cutoff, pruned))
        self.assertEqual(prunes[0]["group"], "")
        self.assertTrue(all(rec["time"] >= cutoff for rec in every), every)
        self.assertIn(A, [r["group"] for r in every])
        text = d.bl("admin", *d.server_args(token=d.admin_token), "audit").stdout.decode()
        self.assertRegex(text, r"#\d+  \d+  -  audit-prune  .*  ok  before:%d pruned:%d" % (cutoff, pruned))
        if d.store_url.startswith("sqlite:"):
            rows = d.audit_rows_direct()
            self.assertAudited(d, None, "audit-prune", "ok", records=rows)
            prune = [r for r in rows if r["operation"] == "audit-prune" and r["result"] == "ok"][-1]
            self.assertEqual(prune["reason"], "before:%d pruned:%d" % (cutoff, pruned))


if __name__ == "__main__":
    harness.main()
