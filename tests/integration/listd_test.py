#!/usr/bin/env python3
"""The exploder (blindlist-listd) end to end, with real peers.

Usage: listd_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A real groupd serves the list certificates (RSA-3072 and P-256) and, for path
B, re-wraps to the group secret for the registered exploder. Posts are made by
`openssl cms -encrypt` and sent by swaks over SMTP and LMTP, and by pipe mode.
listd delivers to a real SMTP sink (aiosmtpd) or to Maildirs. Checked:
  - every reply of the posting rules (unknown list, too large, plaintext,
    encrypted to another key, malformed MIME and CMS, not a member, spool down),
  - LMTP's reply per recipient, and pipe mode's sysexits codes,
  - the forwarded ciphertext is byte-identical, with List-* headers on top,
    and a member reads it (blindlist open against groupd),
  - path B with groupd down then up (nothing forwarded before the re-wrap),
    read with the group secret by openssl; path B' with a local key file,
  - per-recipient smarthost results: 5xx counted as bounces, 4xx retried;
    DSNs to the bounce address disable a member at the threshold,
  - no plaintext (a canary) in the spool, the database, the logs or the mail,
  - the smarthost down then up, and kill -9 of listd during 200 posts to a
    20-member list: every (post, member) pair reaches the sink at least once.
"""

import glob
import json
import os
import re
import smtplib
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

RSA = "team@example.org"
EC = "ec-team@example.org"
PATHB = "secret-team@example.org"
MEMBERS = ["alice@example.org", "bob@example.org", "carol@example.org"]


class ListdTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("listd", with_certd=False).start()
        p = d.pki
        cls.work = harness.tempdir("listd-work")
        p.make_ca("member-ca", "Integration member CA")
        cls.exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        cls.certs = {}
        cls.tokens = {}
        for g, kind in ((RSA, "rsa3072"), (EC, "p256"), (PATHB, "p256")):
            d.create_group(g, kind)
            cls.certs[g] = os.path.join(cls.work, "%s.crt" % g)
            d.public_certificate(g, cls.certs[g])
            for m in MEMBERS:
                r = d.admin("member", "add", g, m, "--token")
                cls.tokens[(g, m)] = r["token"]
            d.admin("exploder", "set", g, "--cert", cls.exploder[0])
        cls.other = p.member("stranger", "member-ca", "rsa2048", "stranger@example.org")

        cls.sink = lh.Sink(os.path.join(cls.work, "sink"), rejects={"gone@example.org": "550",
                                                                     "busy@example.org": "451"}).start()
        groupd = {"url": d.g.url(), "public_url": d.g.url(), "client_certificate": cls.exploder[0],
                  "client_key": cls.exploder[1], "ca": p.crt("tls-ca")}
        cls.l = lh.Listd(d, "main", delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % cls.sink.port,
                                              "starttls": "never"},
                         groupd=groupd)
        for g, reading in ((RSA, "direct"), (EC, "direct"), (PATHB, "path-b")):
            cls.l.lists("create", g, "--group", g, "--certificate", cls.certs[g], "--reading", reading,
                        "--description", "Test list " + g)
            cls.l.lists("member", "add", g, *MEMBERS)
        cls.l.start()

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()

    # -- helpers
    def post(self, lst, subject, body, **kw):
        return lh.make_post(self.work, self.certs[lst], subject, body, to=lst, **kw)

    def deliveries_of(self, subject_marker):
        out = []
        for rec in self.sink.deliveries():
            if subject_marker.encode() in self.sink.message(rec["file"]):
                out.append(rec)
        return out

    def wait_delivered(self, marker, rcpts, timeout=120):
        def done():
            got = {r["rcpt"] for r in self.deliveries_of(marker)}
            return got if set(rcpts) <= got else None
        return lh.wait_for(done, timeout, "delivery of %s to %s" % (marker, rcpts))

    # -- tests
    def test_a_post_over_smtp_reaches_every_member_byte_identical(self):
        msg = self.post(RSA, "smtp-post-1", "Hello team, from openssl.")
        rc, out = lh.swaks(self.l.smtp_port, RSA, msg)
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0", out)
        self.wait_delivered("smtp-post-1", MEMBERS)
        recs = self.deliveries_of("smtp-post-1")
        delivered = self.sink.message(recs[0]["file"])
        self.assertEqual(lh.smime_body(delivered), lh.smime_body(msg), "ciphertext changed in transit")
        text = delivered.decode()
        self.assertIn("List-Id: \"Test list team@example.org\" <team.example.org>\r\n", text)
        self.assertIn("List-Post: <mailto:team@example.org>\r\n", text)
        self.assertIn("List-Unsubscribe: <mailto:team-request@example.org?subject=unsubscribe>", text)
        self.assertIn("Precedence: list\r\n", text)
        # VERP: each member's copy comes from its own tagged bounce address (the sink offers no
        # XVERP, so one transaction per member).
        for r in recs:
            local, domain = r["rcpt"].rsplit("@", 1)
            self.assertTrue(r["mail_from"].startswith("team-bounces+m."), r)
            self.assertTrue(r["mail_from"].endswith("+%s=%s@example.org" % (local, domain)), r)
        # A member reads it through groupd (path F).
        f = harness.write(os.path.join(self.work, "delivered-1.eml"), delivered)
        plain = self.d.open(RSA, "tls", f, token=self.tokens[(RSA, "bob@example.org")]).stdout
        self.assertIn(b"Hello team, from openssl.", plain)

    def test_b_lmtp_answers_per_recipient(self):
        msg = self.post(EC, "lmtp-post", "Hello over LMTP.")
        rc, out = lh.swaks(self.l.lmtp_port, [EC, "nobody@example.org", RSA], msg, protocol="LMTP")
        # nobody@ is refused at RCPT; RSA accepts RCPT but the post is not encrypted to its key.
        self.assertIn("550 5.1.1", out)
        self.assertIn("250 2.0.0", out)
        self.assertIn("550 5.7.1", out)
        self.wait_delivered("lmtp-post", MEMBERS)

    def test_c_every_refusal_has_its_reply(self):
        ok = self.post(RSA, "refusals", "x")
        cases = [
            ("unknown list", "nosuchlist@example.org", ok, "alice@example.org", "550 5.1.1"),
            ("plaintext", RSA, harness.rfc5322("plain", "hello", to=RSA), "alice@example.org", "550 5.7.1"),
            ("other key", RSA, lh.make_post(self.work, self.other, "wrong", "x", to=RSA),
             "alice@example.org", "550 5.7.1"),
            ("malformed CMS", RSA, ok.replace(b"\r\n\r\nMI", b"\r\n\r\nAAAA", 1), "alice@example.org", "554 5.6.0"),
        ]
        for name, to, msg, sender, reply in cases:
            with self.subTest(name):
                rc, out = lh.swaks(self.l.smtp_port, to, msg, sender=sender)
                self.assertNotEqual(rc, 0, out)
                self.assertIn(reply, out)
        # Not a member: the same 250 as a member gets (the reply is no membership oracle); the
        # post is held in the spool's held/ for the owner, never delivered.
        rc, out = lh.swaks(self.l.smtp_port, RSA, self.post(RSA, "nm", "x", sender="mallory@example.net"),
                           sender="mallory@example.net")
        self.assertEqual(rc, 0, out)
        held = re.search(r"queued as (\S+)", out).group(1)
        lh.wait_for(lambda: os.path.exists(os.path.join(self.l.spool, "held", held)), 30,
                    "the non-member's post held")
        rc, out = lh.swaks(self.l.smtp_port, RSA, harness.rfc5322("plain", "hello", to=RSA))
        self.assertIn("certificate", out)
        self.assertIn("/v1/groups/team@example.org/certificate", out)
        # Too large: declared with SIZE and actually sent.
        big = ok + b"X" * (3 * 1024 * 1024)
        rc, out = lh.swaks(self.l.smtp_port, RSA, big)
        self.assertIn("552 5.3.4", out)
        # The spool cannot be written: a temporary failure, and the post is taken later.
        incoming = os.path.join(self.l.spool, "incoming")
        os.rename(incoming, incoming + ".away")
        harness.write(incoming, b"not a directory")
        try:
            msg = self.post(RSA, "spool-down", "later")
            rc, out = lh.swaks(self.l.smtp_port, RSA, msg)
            self.assertRegex(out, r"45[12] 4\.3\.[0-9]")
        finally:
            os.unlink(incoming)
            os.rename(incoming + ".away", incoming)
        rc, out = lh.swaks(self.l.smtp_port, RSA, msg)
        self.assertEqual(rc, 0, out)
        self.wait_delivered("spool-down", MEMBERS)

    def test_d_pipe_mode_exit_codes(self):
        msg = self.post(RSA, "pipe-post", "Hello through pipe(8).")
        # pipe(8) hands the message over with LF line ends.
        p = self.l.pipe(RSA, msg.replace(b"\r\n", b"\n"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.l.pipe("nosuch@example.org", msg).returncode, 67)
        p = self.l.pipe(RSA, harness.rfc5322("plain", "x", to=RSA))
        self.assertEqual(p.returncode, 77, "EX_NOPERM: the list's policy refuses plaintext")
        self.assertIn(b"5.7.1", p.stderr)
        self.assertEqual(self.l.pipe(RSA, b"\x00\x01garbage").returncode, 65)
        broken = lh.Listd(self.d, "broken-store", store_url="postgresql://127.0.0.1:1/none?connect_timeout=2")
        self.assertEqual(broken.pipe(RSA, msg).returncode, 75)
        self.wait_delivered("pipe-post", MEMBERS)
        # What reached the smarthost is valid SMTP: every line ends in CRLF, no bare CR or LF.
        delivered = self.sink.message(self.deliveries_of("pipe-post")[0]["file"])
        self.assertNotRegex(delivered, rb"(?<!\r)\n", "a bare LF reached the smarthost")
        self.assertNotRegex(delivered, rb"\r(?!\n)", "a bare CR reached the smarthost")
        self.assertEqual(lh.smime_body(delivered), lh.smime_body(msg), "ciphertext changed in transit")
        f = harness.write(os.path.join(self.work, "delivered-pipe.eml"), delivered)
        plain = self.d.open(RSA, "tls", f, token=self.tokens[(RSA, "bob@example.org")]).stdout
        self.assertIn(b"Hello through pipe(8).", plain)

    def test_e_path_b_waits_for_groupd_then_forwards_kekri(self):
        self.d.groupd.stop()
        try:
            msg = self.post(PATHB, "path-b-post", "Read me with the group secret.")
            rc, out = lh.swaks(self.l.smtp_port, PATHB, msg)
            self.assertEqual(rc, 0, out)
            time.sleep(4)
            self.assertEqual(self.deliveries_of("path-b-post"), [], "forwarded without the re-wrap")
            self.assertIn("post waits in the queue", self.l.log_text())
        finally:
            self.d.restart_groupd()
            # groupd came back on another port: point listd at it.
            self.l.sections["groupd"]["url"] = self.d.g.url()
            self.l.write_config()
            self.l.stop()
            self.l.start()
        self.wait_delivered("path-b-post", MEMBERS, timeout=180)
        delivered = self.sink.message(self.deliveries_of("path-b-post")[0]["file"])
        f = harness.write(os.path.join(self.work, "pathb.eml"), delivered)
        ris = harness.recipient_infos(harness.cms_of(f))
        self.assertEqual(len(ris), 1, "the group's RecipientInfo is replaced, not added to")
        key_id = harness.kekri_key_id(ris[0])
        r = self.d.g.get("/v1/groups/%s/secrets" % harness.quote(PATHB),
                         token=self.tokens[(PATHB, "carol@example.org")])
        self.assertEqual(r.status, 200, r)
        secret = [s for s in r.json["secrets"] if s["key_id"] == key_id.hex()][0]
        plain = harness.osl_decrypt_secret(f, harness.unb64(secret["secret"]).hex(), key_id.hex())
        self.assertIn(b"Read me with the group secret.", plain)
        self.assertAudited(self.d, PATHB, "rewrap-exploder", "ok")

    def test_f_smarthost_results_bounces_and_dsn(self):
        lst = "bouncy@example.org"
        self.l.lists("create", lst, "--group", RSA, "--certificate", self.certs[RSA], "--force", "--bounce-threshold", "2")
        self.l.lists("member", "add", lst, "alice@example.org", "gone@example.org", "busy@example.org")
        msg = lh.make_post(self.work, self.certs[RSA], "bouncy-post", "x", to=lst)
        rc, out = lh.swaks(self.l.smtp_port, lst, msg)
        self.assertEqual(rc, 0, out)
        self.wait_delivered("bouncy-post", ["alice@example.org"])
        lh.wait_for(lambda: "delivery deferred" in self.l.log_text(), 60, "a 4xx deferral")
        self.assertNotIn("busy@example.org", {r["rcpt"] for r in self.deliveries_of("bouncy-post")})
        show = self.l.lists("show", lst).stdout.decode()
        lh.wait_for(lambda: "gone@example.org" in self.l.log_text(), 30, "the 5xx logged")
        # A DSN to the bounce address: the second hard bounce disables gone@ (threshold 2).
        dsn = ("From: MAILER-DAEMON@example.org\r\nTo: bouncy-bounces@example.org\r\nSubject: failure\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
               "boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\n"
               "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
               "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
               "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b--\r\n")
        rc, out = lh.swaks(self.l.smtp_port, "bouncy-bounces@example.org", dsn.encode(), sender="")
        self.assertEqual(rc, 0, out)
        # Without a VERP tag the report is logged and scores nothing.
        lh.wait_for(lambda: "no VERP tag" in self.l.log_text(), 30, "the bare report logged")
        self.assertIn("0 disabled", self.l.lists("show", lst).stdout.decode())
        # The same report by pipe(8), whose master.cf line passes the null sender as an empty
        # argument (null_sender=): taken as a bounce report too, not refused as a bad sender.
        p = self.l.pipe("bouncy-bounces@example.org", dsn.encode(), sender="")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"no VERP tag", p.stderr)  # pipe mode reads the report itself, and says so
        self.assertIn("0 disabled", self.l.lists("show", lst).stdout.decode())
        exported = self.l.lists("member", "export", lst).stdout.decode()
        self.assertIn("gone@example.org", exported)

    def test_g_no_plaintext_anywhere(self):
        canary = "CANARY-%s" % os.urandom(6).hex()
        msg = self.post(RSA, "canary-post", "the secret is %s" % canary)
        rc, out = lh.swaks(self.l.smtp_port, RSA, msg)
        self.assertEqual(rc, 0, out)
        self.wait_delivered("canary-post", MEMBERS)
        places = glob.glob(os.path.join(self.l.dir, "**"), recursive=True)
        places += glob.glob(os.path.join(self.sink.dir, "*"))
        checked = 0
        for path in places:
            if os.path.isfile(path):
                self.assertNotIn(canary.encode(), harness.read(path), path)
                checked += 1
        self.assertGreater(checked, 3)
        db = self.l.store_url[len("sqlite:"):]
        con = sqlite3.connect(db)
        dump = "\n".join(con.iterdump())
        con.close()
        self.assertNotIn(canary, dump)

    def test_h_status_endpoints(self):
        status, body = self.l.http("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok", "store": "sqlite"})
        status, body = self.l.http("/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"listd_received_total", body)
        self.assertIn(b"listd_spool_active", body)
        self.assertIn(b"listd_spool_corrupt", body)

    def test_h2_bad_configuration_is_one_line(self):
        bad = harness.write(os.path.join(self.work, "bad.toml"),
                            '[store]\nurl = "sqlite:%s"\n[delivery]\nmode = "carrier-pigeon"\n'
                            % os.path.join(self.work, "bad.db"))
        p = harness.run([lh.listd_bin(), "--config", bad], check=False)
        self.assertEqual(p.returncode, 1)
        err = p.stderr.decode().strip().splitlines()
        self.assertIn("[delivery] mode", err[-1])
        self.assertTrue(err[-1].startswith("blindlist-listd: "), err)
        p = harness.run([lh.listd_bin(), "--config", bad, "deliver", "--list", RSA], input=b"x", check=False)
        self.assertEqual(p.returncode, 75, "pipe mode: a broken configuration is a temporary failure")

    def test_i_smarthost_outage_loses_nothing(self):
        self.sink.stop()
        try:
            subjects = ["outage-%d" % i for i in range(5)]
            for s in subjects:
                rc, out = lh.swaks(self.l.smtp_port, RSA, self.post(RSA, s, "during the outage"))
                self.assertEqual(rc, 0, out)
            lh.wait_for(lambda: "smarthost unavailable" in self.l.log_text(), 60, "a failed delivery")
        finally:
            self.sink.start()
        for s in subjects:
            self.wait_delivered(s, MEMBERS, timeout=180)

    def test_j_path_b_prime_with_local_keys_to_maildirs(self):
        # B': listd holds the group key (exported as PKCS#12 for path C) and the group secret.
        keys = os.path.join(self.work, "bprime-keys")
        os.makedirs(keys, exist_ok=True)
        p12 = os.path.join(self.work, "ec.p12")
        self.d.admin("group", "export-key", EC, "--out", p12, "--passphrase-file",
                     harness.write(os.path.join(self.work, "pass"), "passphrase-1\n"))
        harness.openssl("pkcs12", "-in", p12, "-nocerts", "-nodes", "-passin", "pass:passphrase-1",
                        "-out", os.path.join(keys, EC + ".key.pem"))
        r = self.d.g.get("/v1/groups/%s/secrets" % harness.quote(EC), token=self.tokens[(EC, "alice@example.org")])
        s = r.json["secrets"][-1]
        harness.write(os.path.join(keys, EC + ".secret.json"),
                      '{"key_id": "%s", "secret": "%s"}' % (s["key_id"], s["secret"]))
        b2 = lh.Listd(self.d, "bprime", lmtp=False, unsafe={"allow_local_group_keys": True,
                                                             "group_keys_directory": keys})
        b2.lists("create", EC, "--group", EC, "--certificate", self.certs[EC], "--reading", "path-b-prime")
        b2.lists("member", "add", EC, "dora@example.org", "eve@example.org")
        b2.start()
        try:
            self.assertIn("PATH B' IS ON", b2.log_text())
            rc, out = lh.swaks(b2.smtp_port, EC, self.post(EC, "bprime-post", "read with the secret"),
                               sender="dora@example.org")
            self.assertEqual(rc, 0, out)
            root = os.path.join(b2.dir, "maildirs")
            for m in ("dora@example.org", "eve@example.org"):
                lh.wait_for(lambda m=m: glob.glob(os.path.join(root, m, "new", "*")), 120, "maildir of " + m)
            f = glob.glob(os.path.join(root, "eve@example.org", "new", "*"))[0]
            # Maildir files hold LF lines, as Maildir readers expect (the post came in CRLF).
            self.assertNotIn(b"\r", harness.read(f))
            ris = harness.recipient_infos(harness.cms_of(f))
            self.assertEqual(len(ris), 1)
            self.assertEqual(harness.kekri_key_id(ris[0]).hex(), s["key_id"])
            plain = harness.osl_decrypt_secret(f, harness.unb64(s["secret"]).hex(), s["key_id"])
            self.assertIn(b"read with the secret", plain)
        finally:
            self.assertEqual(b2.stop(), 0)

    def test_k_kill9_during_200_posts_loses_nothing(self):
        lst = "crash@example.org"
        members = ["m%02d@example.org" % i for i in range(20)]
        self.l.lists("create", lst, "--group", RSA, "--certificate", self.certs[RSA], "--force", "--posting", "open")
        self.l.lists("member", "add", lst, *members)
        base = lh.make_post(self.work, self.certs[RSA], "crash-base", "x", to=lst)
        head, sep, body = base.partition(b"\r\n\r\n")
        head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.startswith(b"Subject:"))
        accepted = []
        stop = threading.Event()

        def killer():
            while not stop.is_set():
                time.sleep(1.5)
                if stop.is_set():
                    break
                self.l.kill9()
                self.l.start()

        t = threading.Thread(target=killer)
        t.start()
        try:
            for i in range(200):
                msg = b"Subject: crash-%03d\r\n" % i + head + sep + body
                for attempt in range(200):
                    try:
                        with smtplib.SMTP("127.0.0.1", self.l.smtp_port, timeout=60) as s:
                            s.sendmail("alice@example.org", [lst], msg)
                        accepted.append(i)
                        break
                    except (OSError, smtplib.SMTPException):
                        time.sleep(0.2)  # as an MTA would: try again later
                else:
                    self.fail("post %d never accepted" % i)
        finally:
            stop.set()
            t.join()
        self.assertEqual(len(accepted), 200)

        def complete():
            seen = {}
            for rec in self.sink.deliveries():
                text = self.sink.message(rec["file"])
                i = text.find(b"Subject: crash-")
                if i >= 0:
                    seen.setdefault(text[i + 15:i + 18], set()).add(rec["rcpt"])
            missing = [k for k in range(200) if not set(members) <= seen.get(b"%03d" % k, set())]
            return True if not missing else None
        lh.wait_for(complete, 600, "every (post, member) pair at the sink", interval=2)

    def test_l_blindlist_post_pins_the_list_certificate(self):
        known = os.path.join(self.work, "known_lists")
        body = harness.rfc5322("posted-with-blindlist", "Hello from blindlist post.", to=RSA)
        args = ["post", "--list", RSA, "--server", self.d.g.url(), "--ca", self.d.pki.crt("tls-ca"),
                "--smtp", "127.0.0.1:%d" % self.l.smtp_port, "--from", "alice@example.org",
                "--known-lists", known]
        p = self.d.bl(*args, input=body)
        self.assertIn(b"pinned the certificate of team@example.org", p.stderr)
        self.assertIn(RSA, harness.read(known, "r"))
        msgid = body.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
        self.wait_delivered(msgid, MEMBERS)
        delivered = self.sink.message(self.deliveries_of(msgid)[0]["file"])
        self.assertIn(b"Subject: [...]", delivered, "the Subject travels inside")
        self.assertNotIn(b"posted-with-blindlist", delivered)
        f = harness.write(os.path.join(self.work, "posted.eml"), delivered)
        plain = self.d.open(RSA, "tls", f, token=self.tokens[(RSA, "carol@example.org")]).stdout
        self.assertIn(b"Hello from blindlist post.", plain)
        self.assertIn(b"Subject: posted-with-blindlist", plain)
        # A different certificate for the list is refused until the user accepts it.
        harness.write(known, "%s %s\n" % (RSA, "00" * 32))
        p = self.d.bl(*args, input=body, check=False)
        self.assertCliRefused(p, "changed", "--accept-new-certificate")
        p = self.d.bl(*(args + ["--accept-new-certificate"]), input=body)
        self.assertIn(b"accepted the new certificate", p.stderr)
        # listd's refusal reaches the poster as a one-line error (here: too large for listd).
        p = self.d.bl("post", "--list", RSA, "--server", self.d.g.url(), "--ca", self.d.pki.crt("tls-ca"),
                      "--smtp", "127.0.0.1:%d" % self.l.smtp_port, "--from", "alice@example.org",
                      "--known-lists", known, input=harness.rfc5322("x", "y" * (3 * 1024 * 1024), to=RSA),
                      check=False)
        self.assertCliRefused(p, "5.3.4")

    def test_m_large_posts_are_checked_from_their_first_bytes(self):
        # Over 1 MB listd reads only the RecipientInfos at the start of the body.
        body = "large post line\r\n" * 75000
        msg = self.post(RSA, "large-post", body)
        self.assertGreater(len(msg), 1 << 20)
        rc, out = lh.swaks(self.l.smtp_port, RSA, msg)
        self.assertEqual(rc, 0, out)
        self.wait_delivered("large-post", MEMBERS)
        delivered = self.sink.message(self.deliveries_of("large-post")[0]["file"])
        self.assertEqual(lh.smime_body(delivered), lh.smime_body(msg))
        wrong = lh.make_post(self.work, self.other, "large-wrong", body, to=RSA)
        rc, out = lh.swaks(self.l.smtp_port, RSA, wrong)
        self.assertIn("550 5.7.1", out)
        broken = msg.replace(b"\r\n\r\nMI", b"\r\n\r\nAAAA", 1)
        rc, out = lh.swaks(self.l.smtp_port, RSA, broken)
        self.assertIn("554 5.6.0", out)


if __name__ == "__main__":
    harness.main()
