#!/usr/bin/env python3
"""Per-member reading through a real Postfix, into Maildirs.

Usage: postfix_per_member_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

The throwaway Postfix of postfix_system_test.py (its own configuration, queue and Maildirs in a
temporary directory; never the machine's /etc/postfix) takes the post from the sender, hands it
to listd by LMTP; listd, reading `per-member`, asks groupd (as the list's exploder) to re-wrap
the post's key to each member's registered certificate and sends each member a copy of its own
back through Postfix, whose virtual(8) writes it into that member's Maildir:

  swaks --(SMTP)--> Postfix --(LMTP)--> blindlist-listd --(SMTP)--> Postfix
        --(virtual(8))--> Maildirs of alice (RSA-2048), bob (P-256), carol (P-256) @members.test

Checked: alice's copy opens with NSS `cmsutil -D` (and openssl) holding only alice's key and
certificate; bob's with `openssl cms -decrypt` holding only bob's; neither opens with the other's
key; each copy carries one RecipientInfo, its member's. carol, removed from groupd's roster but
still on listd's delivery list, gets nothing of the next post in her Maildir; dave, on the
delivery list but never on the roster, gets nothing at all.

Needs root (Postfix's master runs as root), postfix, postmap, swaks, openssl and NSS's cmsutil,
certutil and pk12util: a missing one is a failure.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402
from postfix_system_test import POSTFIX, POSTMAP, Postfix  # noqa: E402

LIST = "team@lists.test"
USERS = ("alice", "bob", "carol", "dave", "owner")
ALICE, BOB, CAROL, DAVE, OWNER = ("%s@members.test" % u for u in USERS)
WAIT = 180  # seconds; the machine is shared and loaded


class PostfixPerMemberTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise RuntimeError("Postfix's master must run as root: run this test as root")
        for tool in (POSTFIX, POSTMAP) + tuple(shutil.which(t) or "/nonexistent/" + t
                                               for t in ("swaks", "cmsutil", "certutil", "pk12util")):
            if not os.path.exists(tool):
                raise RuntimeError("%s is not installed (scripts/setup installs it)" % tool)

        d = cls.d = harness.Deployment("pfx-pm", with_certd=False).start()
        p = d.pki
        cls.work = harness.tempdir("pfx-pm-work")
        p.make_ca("member-ca", "Integration member CA")
        cls.exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        cls.members = {ALICE: (p.member("alice", "member-ca", "rsa2048", ALICE), p.key("alice")),
                       BOB: (p.member("bob", "member-ca", "ec", BOB), p.key("bob")),
                       CAROL: (p.member("carol", "member-ca", "ec", CAROL), p.key("carol"))}
        d.create_group(LIST, "p256")
        cls.cert = os.path.join(cls.work, "group.crt")
        d.public_certificate(LIST, cls.cert)
        for m, (crt, _) in cls.members.items():
            d.admin("member", "add", LIST, m, "--cert", crt)
        d.admin("exploder", "set", LIST, "--cert", cls.exploder[0])

        relay_port = lh.free_port()
        groupd = {"url": d.g.url(), "public_url": d.g.url(), "client_certificate": cls.exploder[0],
                  "client_key": cls.exploder[1], "ca": p.crt("tls-ca")}
        cls.l = lh.Listd(d, "pfx-pm", delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % relay_port,
                                                "starttls": "never"}, groupd=groupd)
        # member-clients nss: RSA members get PKCS#1 v1.5 key transport, posts must be AES-CBC.
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--reading", "per-member",
                    "--member-clients", "nss", "--per-member-fallback", "skip", "--owner", OWNER,
                    "--description", "Postfix per-member list")
        # dave is on listd's delivery list and never on groupd's roster.
        cls.l.lists("member", "add", LIST, ALICE, BOB, CAROL, DAVE)
        cls.l.start()

        cls.pf = Postfix(harness.tempdir("postfix-pm"), in_port=lh.free_port(), relay_port=relay_port,
                         lmtp_port=cls.l.lmtp_port, list_domain="lists.test", member_domain="members.test",
                         users=USERS)
        cls.addClassCleanup(cls.pf.stop)
        try:
            cls.pf.start()
        except Exception:
            sys.stderr.write("\n===== Postfix maillog =====\n" + cls.pf.log_text()[-20000:])
            raise
        cls.nssdb = {m: cls.nss_db(m) for m in (ALICE, BOB)}

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def nss_db(cls, member):
        """An NSS database holding the member CA and this member's key and certificate only."""
        crt, key = cls.members[member]
        db = os.path.join(cls.work, "nss-" + member.split("@")[0])
        os.makedirs(db)
        harness.run(["certutil", "-N", "--empty-password", "-d", "sql:" + db])
        harness.run(["certutil", "-A", "-n", "member-ca", "-t", "C,C,C", "-d", "sql:" + db,
                     "-i", cls.d.pki.crt("member-ca")])
        p12 = os.path.join(cls.work, member + ".p12")
        harness.openssl("pkcs12", "-export", "-inkey", key, "-in", crt, "-name", member, "-passout", "pass:",
                        "-out", p12)
        harness.run(["pk12util", "-i", p12, "-d", "sql:" + db, "-W", ""])
        return db

    # -- helpers
    def run(self, result=None):
        """Any failure also shows Postfix's log (the daemons' logs come from harness.main)."""
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n===== Postfix maillog (%s) =====\n%s\n" %
                             (self.pf.maillog, self.pf.log_text()[-20000:]))
        return out

    def send(self, subject, body):
        post = lh.make_post(self.work, self.cert, subject, body, sender=ALICE, to=LIST, cipher="-aes-256-cbc")
        rc, out = lh.swaks(self.pf.in_port, LIST, post, sender=ALICE)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"<- +250 2\.0\.0 Ok: queued as", "Postfix did not queue the post:\n" + out)
        return post

    def copies(self, user, marker):
        return [(p, m) for p, m in self.pf.messages(user) if marker.encode() in m]

    def wait_maildir(self, user, marker):
        return lh.wait_for(lambda: self.copies(user, marker), WAIT, "%s in the Maildir of %s" % (marker, user))

    def openssl_reads(self, path, member):
        crt, key = self.members[member]
        return harness.osl_decrypt(path, key, crt)

    def nss_reads(self, path, member):
        der = harness.write(path + ".der", harness.cms_of(path))
        out = path + ".nss"
        p = harness.run(["cmsutil", "-D", "-d", "sql:" + self.nssdb[member], "-i", der, "-o", out], check=False)
        self.assertEqual(p.returncode, 0, "NSS cmsutil -D as %s: %s" % (member, p.stderr.decode(errors="replace")))
        return harness.read(out)

    def check_copy(self, member, message, body):
        """The copy holds one RecipientInfo, this member's, and opens with this member's key only."""
        path = harness.write(os.path.join(self.work, "%s-%f.eml" % (member.split("@")[0], time.time())),
                             message)
        self.assertEqual(len(harness.recipient_infos(harness.cms_of(path))), 1,
                         "a member's copy holds only that member's RecipientInfo")
        self.assertIn(b"enveloped-data", message, "not EnvelopedData (AES-CBC): NSS would not read it")
        return path

    # -- tests
    def test_a_each_member_reads_its_copy_from_its_maildir(self):
        body = "Per member, through Postfix."
        subject = "pfx-pm-%s" % os.urandom(4).hex()
        self.send(subject, body)
        got = {u: self.wait_maildir(u, subject) for u in ("alice", "bob", "carol")}
        time.sleep(3)  # would a duplicate, or a copy for dave, arrive?
        for u in ("alice", "bob", "carol"):
            self.assertEqual(len(self.copies(u, subject)), 1, "%s got more than one copy" % u)
        self.assertEqual(self.copies("dave", subject), [], "dave is not on groupd's roster")

        # alice (RSA-2048, PKCS#1 v1.5): NSS, as Thunderbird reads it; openssl too.
        alice = self.check_copy(ALICE, got["alice"][0][1], body)
        self.assertIn(body.encode(), self.nss_reads(alice, ALICE))
        self.assertIn(body.encode(), self.openssl_reads(alice, ALICE))
        # bob (P-256, KeyAgreeRecipientInfo): openssl cms with bob's key alone.
        bob = self.check_copy(BOB, got["bob"][0][1], body)
        self.assertIn(body.encode(), self.openssl_reads(bob, BOB))
        # Neither copy opens with the other member's key, nor in the other's NSS database.
        for path, other in ((alice, BOB), (bob, ALICE)):
            q = harness.openssl("cms", "-decrypt", "-in", path, "-inkey", self.members[other][1], check=False)
            self.assertNotEqual(q.returncode, 0, "%s's key read another member's copy" % other)
        der = harness.write(alice + ".bob.der", harness.cms_of(alice))
        q = harness.run(["cmsutil", "-D", "-d", "sql:" + self.nssdb[BOB], "-i", der, "-o", der + ".out"],
                        check=False)
        self.assertNotEqual(q.returncode, 0, "bob's NSS database read alice's copy")
        # Postfix delivered each copy with virtual(8).
        log = self.pf.log_text()
        for addr in (ALICE, BOB, CAROL):
            self.assertRegex(log, r"to=<%s>, relay=virtual, .*status=sent \(delivered to maildir\)" % addr)
        self.assertMemberAudited(self.d, LIST, DAVE, "not-member")

    def test_b_a_member_removed_from_groupd_gets_nothing_in_its_maildir(self):
        self.d.admin("member", "remove", LIST, CAROL)
        try:
            body = "Carol is no longer a member."
            subject = "pfx-pm-removed-%s" % os.urandom(4).hex()
            self.send(subject, body)
            got = {u: self.wait_maildir(u, subject) for u in ("alice", "bob")}
            time.sleep(5)  # give a copy for carol every chance to arrive
            self.assertEqual(self.copies("carol", subject), [], "a member removed from groupd got the post")
            self.assertEqual(self.copies("dave", subject), [])
            self.assertIn(body.encode(), self.openssl_reads(self.check_copy(BOB, got["bob"][0][1], body), BOB))
            # carol is still on listd's delivery list: only groupd's answer kept the post from her.
            self.assertIn(CAROL, self.l.lists("member", "export", LIST).stdout.decode())
        finally:
            self.d.admin("member", "add", LIST, CAROL, "--cert", self.members[CAROL][0])


if __name__ == "__main__":
    harness.main()
