#!/usr/bin/env python3
"""Per-member reading end to end: listd asks groupd (as the list's exploder) to re-wrap each post
to every current member's registered certificate, and each member's copy reads with that member's
own S/MIME engine alone.

Usage: per_member_test.py BLINDLIST GROUPD CERTD [unittest args] (BLINDLIST_LISTD: the listd binary)
Store: SQLite, or PostgreSQL with BLINDLIST_TEST_STORE=postgres (groupd's and listd's).

Through the SMTP sink (tests/integration/smtp_sink.py), not Postfix: each delivered copy is
checked with `openssl cms -decrypt` and NSS `cmsutil -D` using only that member's key and
certificate (RSA-2048 and P-256 members); a member without a certificate gets the group's copy
(per_member_fallback = group); an address in listd's delivery list but not on groupd's roster
gets nothing and the owner is told, at most once a day per list (naming every such address of
the post that sends the notice); a member removed from groupd gets nothing from the next post;
groupd stopped: the post waits in the spool, and is delivered, re-wrapped, once groupd is back.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@example.org"
ALICE, BOB, CAROL, DAVE = "alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org"


class PerMemberTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("cmsutil", "certutil", "pk12util", "swaks"):
            if not shutil.which(tool):
                harness.peer_missing("%s is not installed" % tool)
        d = cls.d = harness.Deployment("per-member", with_certd=False).start()
        p = d.pki
        cls.work = harness.tempdir("per-member-work")
        p.make_ca("member-ca", "Integration member CA")
        cls.exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        cls.members = {ALICE: (p.member("alice", "member-ca", "rsa2048", ALICE), p.key("alice")),
                       BOB: (p.member("bob", "member-ca", "ec", BOB), p.key("bob"))}
        d.create_group(LIST, "p256")
        cls.cert = os.path.join(cls.work, "group.crt")
        d.public_certificate(LIST, cls.cert)
        for m, (crt, _) in cls.members.items():
            d.admin("member", "add", LIST, m, "--cert", crt)
        d.admin("member", "add", LIST, CAROL, "--token")
        d.admin("exploder", "set", LIST, "--cert", cls.exploder[0])

        cls.sink = lh.Sink(os.path.join(cls.work, "sink")).start()
        groupd = {"url": d.g.url(), "public_url": d.g.url(), "client_certificate": cls.exploder[0],
                  "client_key": cls.exploder[1], "ca": p.crt("tls-ca")}
        store_url = None
        if harness.store_kind() == "postgres":
            store_url = d.store_url  # listd's tables live beside groupd's
        cls.l = lh.Listd(d, "per-member", delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % cls.sink.port,
                                                    "starttls": "never"},
                         groupd=groupd, store_url=store_url)
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--reading", "per-member",
                    "--member-clients", "nss", "--description", "Per member")
        # dave is in listd's delivery list but not on groupd's roster.
        cls.l.lists("member", "add", LIST, ALICE, BOB, CAROL, DAVE)
        cls.l.start()
        cls.nssdb = {m: cls.nss_db(m) for m in cls.members}

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.d.stop()

    @classmethod
    def nss_db(cls, member):
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
    def send(self, subject, body):
        msg = lh.make_post(self.work, self.cert, subject, body, to=LIST, cipher="-aes-256-cbc")
        rc, out = lh.swaks(self.l.smtp_port, LIST, msg)
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0", out)
        return msg

    def copies(self, marker):
        out = {}
        for rec in self.sink.deliveries():
            m = self.sink.message(rec["file"])
            if marker.encode() in m:
                out.setdefault(rec["rcpt"], []).append(m)
        return out

    def wait_for(self, marker, rcpts, timeout=120):
        return lh.wait_for(lambda: self.copies(marker) if set(rcpts) <= set(self.copies(marker)) else None,
                           timeout, "delivery of %s to %s" % (marker, rcpts))

    def check_member_reads(self, member, copy, body):
        crt, key = self.members[member]
        path = harness.write(os.path.join(self.work, "copy-%s-%f.eml" % (member, time.time())), copy)
        ris = harness.recipient_infos(harness.cms_of(path))
        self.assertEqual(len(ris), 1, "a member's copy holds only that member's RecipientInfo")
        self.assertIn(body.encode(), harness.osl_decrypt(path, key, crt))
        der = harness.write(path + ".der", harness.cms_of(path))
        out = path + ".nss"
        p = harness.run(["cmsutil", "-D", "-d", "sql:" + self.nssdb[member], "-i", der, "-o", out], check=False)
        if p.returncode != 0 and member == BOB and not self.nss_reads_openssl_kari():
            # NSS before 3.91 reads no KeyAgreeRecipientInfo at all (not even openssl's own,
            # checked just now): the P-256 member's copy is read by openssl above.
            self.assertIn(b"SEC_ERROR_BAD_DER", p.stderr)
        else:
            self.assertEqual(p.returncode, 0, "NSS cmsutil -D: " + p.stderr.decode(errors="replace"))
            self.assertIn(body.encode(), harness.read(out))
        # And not with the other member's key.
        other = [m for m in self.members if m != member][0]
        q = harness.openssl("cms", "-decrypt", "-in", path, "-inkey", self.members[other][1], check=False)
        self.assertNotEqual(q.returncode, 0, "another member's key read this copy")

    def nss_reads_openssl_kari(self):
        """Whether this NSS reads an ECDH (P-256) EnvelopedData that openssl cms wrote to bob."""
        if not hasattr(type(self), "_nss_kari"):
            ent = harness.write(os.path.join(self.work, "kari-probe.txt"), b"kari probe\r\n")
            der = os.path.join(self.work, "kari-probe.der")
            harness.openssl("cms", "-encrypt", "-binary", "-aes-256-cbc", "-in", ent, "-outform", "DER",
                            "-out", der, self.members[BOB][0])
            p = harness.run(["cmsutil", "-D", "-d", "sql:" + self.nssdb[BOB], "-i", der,
                             "-o", der + ".out"], check=False)
            type(self)._nss_kari = p.returncode == 0
        return type(self)._nss_kari

    # -- tests
    def test_a_each_member_reads_its_own_copy(self):
        sent = self.send("per-member-1", "Read me with your own client.")
        got = self.wait_for("per-member-1", [ALICE, BOB, CAROL])
        for m in (ALICE, BOB):
            self.assertEqual(len(got[m]), 1)
            self.check_member_reads(m, got[m][0], "Read me with your own client.")
        # carol has no certificate: the group's copy (fallback group), the sender's ciphertext.
        self.assertEqual(lh.smime_body(got[CAROL][0]), lh.smime_body(sent))
        self.assertIn(b"List-Id:", got[ALICE][0])
        # dave is not on groupd's roster: nothing for him, and the owner is told.
        owner = lh.wait_for(lambda: [r for r in self.sink.deliveries() if r["rcpt"] == "team-owner@example.org"],
                            60, "owner notice")
        self.assertIn(DAVE.encode(), self.sink.message(owner[0]["file"]))
        time.sleep(1)
        self.assertNotIn(DAVE, self.copies("per-member-1"))
        self.assertIn("not on groupd's roster", self.l.log_text())
        self.assertAudited(self.d, LIST, "rewrap-members", "ok", caller="exploder")
        self.assertMemberAudited(self.d, LIST, DAVE, "not-member")

    def test_d_a_post_nss_cannot_read_is_refused_with_the_reason(self):
        msg = lh.make_post(self.work, self.cert, "per-member-gcm", "AES-GCM.", to=LIST, cipher="-aes-256-gcm")
        rc, out = lh.swaks(self.l.smtp_port, LIST, msg)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("550 5.7.6", out)
        self.assertIn("is read with NSS (Thunderbird), which opens only EnvelopedData with AES-CBC", out)
        self.assertIn("AuthEnvelopedData with aes-256-gcm", out)
        # The list's settings cannot contradict each other.
        p = self.l.lists("set", LIST, "--require-aead", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"member_clients nss needs AES-CBC posts", p.stderr)

    def test_e_blindlist_post_follows_the_published_cipher(self):
        r = self.d.g.get("/v1/groups/%s/certificate" % harness.quote(LIST))
        self.assertEqual(r.headers.get("x-blindlist-content-cipher"), "any")
        self.d.admin("group", "set-cipher", LIST, "aes-cbc")
        try:
            r = self.d.g.get("/v1/groups/%s/certificate" % harness.quote(LIST))
            self.assertEqual(r.headers.get("x-blindlist-content-cipher"), "aes-cbc")
            self.assertEqual(self.d.admin("group", "show", LIST)["content_cipher"], "aes-cbc")
            self.assertAudited(self.d, LIST, "content-cipher-set", "ok")
            known = os.path.join(self.work, "known_lists")
            body = harness.rfc5322("posted-per-member", "Hello from blindlist post.", to=LIST)
            args = ["post", "--list", LIST, "--server", self.d.g.url(), "--ca", self.d.pki.crt("tls-ca"),
                    "--smtp", "127.0.0.1:%d" % self.l.smtp_port, "--from", ALICE, "--known-lists", known]
            # An explicit AES-GCM is refused by the command itself, naming the list's policy.
            p = self.d.bl(*(args + ["--cipher", "aes-256-gcm"]), input=body, check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"read with NSS (Thunderbird), which opens only AES-CBC", p.stderr)
            # Without --cipher it follows the policy: AES-CBC, accepted, and each member reads its copy.
            self.d.bl(*args, input=body)
            msgid = body.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
            got = self.wait_for(msgid, [ALICE, BOB, CAROL])
            path = harness.write(os.path.join(self.work, "posted-alice.eml"), got[ALICE][0])
            self.assertIn(b"Hello from blindlist post.",
                          harness.osl_decrypt(path, self.members[ALICE][1], self.members[ALICE][0]))
            self.assertIn(b"enveloped-data", got[ALICE][0], "not EnvelopedData (AES-CBC)")
        finally:
            self.d.admin("group", "set-cipher", LIST, "any")

    def test_b_removed_member_gets_nothing_from_the_next_post(self):
        self.d.admin("member", "remove", LIST, BOB)
        try:
            self.send("per-member-2", "Bob is gone.")
            got = self.wait_for("per-member-2", [ALICE, CAROL])
            time.sleep(2)
            got = self.copies("per-member-2")
            self.assertNotIn(BOB, got, "a removed member got the post")
            self.check_member_reads(ALICE, got[ALICE][0], "Bob is gone.")
        finally:
            self.d.admin("member", "add", LIST, BOB, "--cert", self.members[BOB][0])

    def test_c_groupd_down_post_waits_then_goes_out_rewrapped(self):
        self.d.groupd.stop()
        try:
            self.send("per-member-3", "Wait for groupd.")
            time.sleep(4)
            self.assertEqual(self.copies("per-member-3"), {}, "forwarded without the re-wrap")
            self.assertIn("post waits in the queue", self.l.log_text())
        finally:
            self.d.groupd.exit_status = None
            self.d.groupd.start()
            self.d.g = harness.HttpsEndpoint(self.d.groupd.port, self.d.pki.crt("tls-ca"))
            self.d.groupd.wait_healthy(self.d.g)
            self.l.sections["groupd"]["url"] = self.d.g.url()
            self.l.write_config()
            self.l.stop()
            self.l.start()
        got = self.wait_for("per-member-3", [ALICE, BOB, CAROL], timeout=180)
        for m in (ALICE, BOB):
            self.check_member_reads(m, got[m][0], "Wait for groupd.")

    def owner_notices(self):
        return [self.sink.message(r["file"]) for r in self.sink.deliveries()
                if r["rcpt"] == "team-owner@example.org"]

    def set_notice_clock_back(self, seconds):
        """Moves listd's record of the last owner notice `seconds` into the past."""
        sql = "UPDATE list_notices SET last_sent_at = last_sent_at - %d" % seconds
        url = self.l.store_url
        if url.startswith("sqlite:"):
            import sqlite3
            db = sqlite3.connect(url[len("sqlite:"):], timeout=60)
            db.execute(sql)
            db.commit()
            db.close()
        else:
            harness.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])

    def test_f_the_owner_is_told_of_stale_addresses_at_most_once_a_day(self):
        # Every post of tests a to e went out while dave was not on groupd's roster: one notice.
        self.send("per-member-f1", "Dave is still not a member.")
        self.wait_for("per-member-f1", [ALICE, BOB, CAROL])
        time.sleep(2)
        notices = self.owner_notices()
        self.assertEqual(len(notices), 1, "the owner got a notice per post")
        self.assertIn(b"at most once a day", notices[0])
        self.assertIn("owner already told of members not on the roster today", self.l.log_text())
        # A day later the next post sends one notice, naming every such address of that post.
        erin = "erin@example.org"
        self.l.lists("member", "add", LIST, erin)
        try:
            self.set_notice_clock_back(86400 + 60)
            self.send("per-member-f2", "A day later.")
            self.wait_for("per-member-f2", [ALICE, BOB, CAROL])
            notices = lh.wait_for(lambda: self.owner_notices() if len(self.owner_notices()) >= 2 else None,
                                  60, "the second owner notice")
            self.assertEqual(len(notices), 2)
            self.assertIn(DAVE.encode(), notices[1])
            self.assertIn(erin.encode(), notices[1])
            self.send("per-member-f3", "Same day again.")
            self.wait_for("per-member-f3", [ALICE, BOB, CAROL])
            time.sleep(2)
            self.assertEqual(len(self.owner_notices()), 2, "a second notice within the day")
            self.assertNotIn(erin, self.copies("per-member-f3"))
        finally:
            self.l.lists("member", "remove", LIST, erin)


if __name__ == "__main__":
    harness.main()
