#!/usr/bin/env python3
"""What listd takes in and what it sends on (issue 12, parts 1 and 3): valid SMTP whatever it
received, no mail loops, pipe-mode posts picked up at once.

Usage: listd_intake_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A real groupd serves an RSA-3072 list certificate; posts are EnvelopedData (AES-256-CBC, RSA
PKCS#1 v1.5) made by `openssl cms -encrypt`, the form NSS reads. listd delivers to a strict
smarthost (smtp_sink.py --refuse-bare-lf: 550 5.6.0 to any bare LF or bare CR). Checked:
  - the strict smarthost does refuse bare line ends (sent raw, byte for byte);
  - pipe mode's LF lines, and a post with stray CRs, reach it accepted, and the forwarded copy
    decrypts with `openssl cms` and with NSS `cmsutil`, using the group key exported as PKCS#12
    (path C);
  - every intake (SMTP, LMTP, pipe) reads line ends the way Postfix does: LF and CRLF end a
    line, a stray CR is a space, so "Subject: x<CR>X-Injected: yes" stays one header field;
  - a delivered copy sent back to the list (a member address that forwards to the list) is
    refused at every intake with 550 5.4.6 (pipe mode: exit 65), by its List-Id or by listd's
    X-Loop trace field, and the post is exploded once; another list's marks are no loop;
  - a post queued by pipe mode reaches the smarthost well before the runner's 1-second tick.
"""

import os
import shutil
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

TEAM = "team@example.org"
SENDER = "alice@example.org"
FORWARDER = "fwd@example.org"  # a member address that forwards back into the list
MEMBERS = [SENDER, "bob@example.org", FORWARDER]
LOOP_REPLY = "5.4.6 mail loop: already exploded by this list"


def raw_smtp(port, rcpts, data, *, lmtp=False, sender=SENDER):
    """Sends `data` byte for byte (dots at line starts doubled, nothing else changed); returns
    the replies to DATA (one per recipient in LMTP) as text lines."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline().decode(errors="replace").rstrip("\r\n")
            if not line:
                raise AssertionError("connection closed; got %r" % lines)
            lines.append(line)
            if line[3:4] != "-":
                return line

    def cmd(text):
        s.sendall(text.encode() + b"\r\n")
        return reply()

    try:
        reply()
        cmd(("LHLO" if lmtp else "EHLO") + " client.test")
        assert cmd("MAIL FROM:<%s>" % sender).startswith("250")
        for r in rcpts:
            got = cmd("RCPT TO:<%s>" % r)
            assert got.startswith("250"), got
        assert cmd("DATA").startswith("354")
        stuffed = b"\n".join(b"." + line if line.startswith(b".") else line for line in data.split(b"\n"))
        s.sendall(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        replies = [reply() for _ in (rcpts if lmtp else [None])]
        cmd("QUIT")
        return replies
    finally:
        s.close()


class ListdIntakeTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("cmsutil", "certutil", "pk12util"):
            if not shutil.which(tool):
                raise AssertionError("%s not found (install libnss3-tools)" % tool)
        d = cls.d = harness.Deployment("listd-intake", with_certd=False).start()
        cls.work = harness.tempdir("listd-intake-work")
        d.create_group(TEAM, "rsa3072")
        cls.cert = os.path.join(cls.work, "team.crt")
        d.public_certificate(TEAM, cls.cert)
        for m in MEMBERS:
            d.admin("member", "add", TEAM, m)
        # Path C: the group key as PKCS#12, into a PEM for openssl and an NSS database.
        passfile = harness.write(os.path.join(cls.work, "p12.pass"), "intake passphrase\n")
        p12 = os.path.join(cls.work, "team.p12")
        d.admin("group", "export-key", TEAM, "--out", p12, "--passphrase-file", passfile)
        cls.key_pem = os.path.join(cls.work, "team-key.pem")
        harness.openssl("pkcs12", "-in", p12, "-nodes", "-passin", "file:" + passfile, "-out", cls.key_pem)
        cls.nssdb = os.path.join(cls.work, "nssdb")
        os.makedirs(cls.nssdb)
        harness.run(["certutil", "-N", "-d", "sql:" + cls.nssdb, "--empty-password"])
        harness.run(["pk12util", "-i", p12, "-d", "sql:" + cls.nssdb, "-W", "intake passphrase"])

        cls.sink = lh.Sink(os.path.join(cls.work, "sink"), refuse_bare_lf=True).start()
        store_url = None
        if harness.store_kind() == "postgres":
            store_url, cls.drop_lists_db = harness._postgres_database("listd_intake")
        cls.l = lh.Listd(d, "intake", store_url=store_url,
                         delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % cls.sink.port,
                                   "starttls": "never"})
        cls.l.lists("create", TEAM, "--group", TEAM, "--certificate", cls.cert, "--description", "Team")
        cls.l.lists("member", "add", TEAM, *MEMBERS)
        cls.l.start()

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        drop = getattr(cls, "drop_lists_db", None)
        if drop:
            cls.l.stop()
            drop()

    # -- helpers
    def post(self, subject, body):
        """EnvelopedData, AES-256-CBC, RSA PKCS#1 v1.5 (what NSS reads), CRLF lines."""
        n = len(os.listdir(self.work))
        ent = harness.write(os.path.join(self.work, "ent-%d.txt" % n), harness.entity(body))
        out = os.path.join(self.work, "post-%d.eml" % n)
        harness.openssl("cms", "-encrypt", "-binary", "-in", ent, "-out", out, "-from", SENDER, "-to", TEAM,
                        "-subject", subject, "-aes256", self.cert)
        return harness.crlf(harness.read(out))

    def deliveries_of(self, marker):
        return [r for r in self.sink.deliveries() if marker.encode() in self.sink.message(r["file"])]

    def wait_delivered(self, marker, timeout=120):
        def done():
            got = {r["rcpt"] for r in self.deliveries_of(marker)}
            return got if set(MEMBERS) <= got else None
        lh.wait_for(done, timeout, "delivery of %s to every member" % marker)
        return self.sink.message(self.deliveries_of(marker)[0]["file"])

    def refused_by_sink(self):
        path = os.path.join(self.sink.dir, "refused.jsonl")
        return harness.read(path, "r").splitlines() if os.path.exists(path) else []

    def assert_valid_smtp_and_decrypts(self, delivered, plaintext, name):
        self.assertNotRegex(delivered, rb"(?<!\r)\n", "a bare LF reached the smarthost")
        self.assertNotRegex(delivered, rb"\r(?!\n)", "a bare CR reached the smarthost")
        f = harness.write(os.path.join(self.work, name + ".eml"), delivered)
        self.assertIn(plaintext.encode(), harness.osl_decrypt(f, self.key_pem), "openssl cms -decrypt")
        der = harness.write(os.path.join(self.work, name + ".der"), harness.cms_of(delivered))
        p = harness.run(["cmsutil", "-D", "-d", "sql:" + self.nssdb, "-i", der], check=False)
        self.assertEqual(p.returncode, 0, "NSS cmsutil -D: " + p.stderr.decode(errors="replace"))
        self.assertIn(plaintext.encode(), p.stdout, "NSS cmsutil -D")

    # -- tests
    def test_a_the_strict_smarthost_refuses_bare_line_ends(self):
        for i, data in enumerate((b"Subject: x\r\n\r\nbare LF\nhere\r\n", b"Subject: x\r\n\r\nbare\rCR\r\n")):
            got = raw_smtp(self.sink.port, ["probe%d@example.org" % i], data)
            self.assertTrue(got[0].startswith("550 5.6.0"), got)
        got = raw_smtp(self.sink.port, ["probe@example.org"], b"Subject: ok\r\n\r\nfine\r\n")
        self.assertTrue(got[0].startswith("250"), got)

    def test_b_pipe_mode_lf_post_reaches_the_strict_smarthost_and_decrypts(self):
        refused_before = len(self.refused_by_sink())
        msg = self.post("pipe-lf-post", "Hello in LF lines.")
        p = self.l.pipe(TEAM, msg.replace(b"\r\n", b"\n"))  # pipe(8) gives LF line ends
        self.assertEqual(p.returncode, 0, p.stderr)
        delivered = self.wait_delivered("pipe-lf-post")
        self.assertEqual(len(self.refused_by_sink()), refused_before, "the strict smarthost refused DATA")
        self.assert_valid_smtp_and_decrypts(delivered, "Hello in LF lines.", "pipe-lf")
        self.assertEqual(lh.smime_body(delivered), lh.smime_body(msg), "ciphertext changed in transit")

    def stray_cr_post(self, marker, body):
        """LF lines with stray CRs: one inside the Subject (header injection if a CR ended a line),
        one inside a base64 line, and '\\r\\r\\n' line ends (a client that converts twice)."""
        msg = self.post(marker, body).replace(b"\r\n", b"\n")
        head, _, b64 = msg.partition(b"\n\n")
        head = head.replace(b"Subject: " + marker.encode(),
                            b"Subject: " + marker.encode() + b"\rX-Injected: yes")
        lines = b64.split(b"\n")
        lines[1] = lines[1][:20] + b"\r" + lines[1][20:]
        lines[2] += b"\r"
        lines[3] += b"\r"
        return head + b"\n\n" + b"\n".join(lines)

    def test_c_stray_crs_are_spaces_at_every_intake(self):
        refused_before = len(self.refused_by_sink())
        posts = {}
        for intake in ("pipe", "smtp", "lmtp"):
            marker = "stray-cr-%s" % intake
            body = "Hello with stray CRs over %s." % intake
            data = self.stray_cr_post(marker, body)
            if intake == "pipe":
                p = self.l.pipe(TEAM, data)
                self.assertEqual(p.returncode, 0, p.stderr)
            else:
                port = self.l.smtp_port if intake == "smtp" else self.l.lmtp_port
                got = raw_smtp(port, [TEAM], data, lmtp=intake == "lmtp")
                self.assertTrue(got[0].startswith("250 2.0.0"), got)
            posts[intake] = (marker, body)
        for intake, (marker, body) in posts.items():
            delivered = self.wait_delivered(marker)
            self.assert_valid_smtp_and_decrypts(delivered, body, "stray-cr-" + intake)
            head = delivered.partition(b"\r\n\r\n")[0]
            self.assertIn(b"\r\nSubject: " + marker.encode() + b" X-Injected: yes\r\n", head,
                          "%s: a stray CR must not end the Subject field (Postfix makes it a space)" % intake)
            self.assertNotIn(b"\r\nX-Injected:", head, intake + ": a header field was injected by a bare CR")
        self.assertEqual(len(self.refused_by_sink()), refused_before, "the strict smarthost refused DATA")

    def test_d_a_post_sent_back_to_the_list_is_a_loop(self):
        msg = self.post("loop-post", "Exploded once.")
        rc, out = lh.swaks(self.l.smtp_port, TEAM, msg)
        self.assertEqual(rc, 0, out)
        delivered = self.wait_delivered("loop-post")
        # The forwarding member's copy comes back: the delivered bytes, as a .forward resends them.
        copy = self.sink.message([r for r in self.deliveries_of("loop-post") if r["rcpt"] == FORWARDER][0]["file"])
        no_trace = b"\r\n".join(l for l in copy.split(b"\r\n") if not l.startswith(b"X-Loop:"))
        no_list_id = b"\r\n".join(l for l in copy.split(b"\r\n") if not l.startswith(b"List-Id:"))
        lf = copy.replace(b"\r\n", b"\n")
        for name, data in (("copy", copy), ("without X-Loop", no_trace), ("without List-Id", no_list_id)):
            got = raw_smtp(self.l.smtp_port, [TEAM], data, sender=FORWARDER)
            self.assertEqual(got, ["550 " + LOOP_REPLY], "SMTP, " + name)
            got = raw_smtp(self.l.lmtp_port, [TEAM], data, lmtp=True, sender=FORWARDER)
            self.assertEqual(got, ["550 " + LOOP_REPLY], "LMTP, " + name)
        p = self.l.pipe(TEAM, lf, sender=FORWARDER)
        self.assertEqual(p.returncode, 65, "pipe mode: EX_DATAERR for a loop")
        self.assertIn(LOOP_REPLY.encode(), p.stderr)
        head = delivered.partition(b"\r\n\r\n")[0]
        self.assertIn(b"\r\nX-Loop: team@example.org\r\n", head)
        self.assertIn(b"List-Id: \"Team\" <team.example.org>\r\n", head)
        # Another list's marks are no loop: the post goes out.
        other = self.post("other-list-post", "Via another list.")
        head, _, rest = other.partition(b"\r\n\r\n")
        other = (b"List-Id: <other.example.net>\r\nX-Loop: other@example.net\r\n" + head +
                 b"\r\n\r\n" + rest)
        got = raw_smtp(self.l.smtp_port, [TEAM], other)
        self.assertTrue(got[0].startswith("250 2.0.0"), got)
        delivered = self.wait_delivered("other-list-post")
        self.assertIn(b"X-Loop: other@example.net\r\n", delivered)
        # No second explosion: each member got the looping post once.
        time.sleep(2)
        rcpts = sorted(r["rcpt"] for r in self.deliveries_of("loop-post"))
        self.assertEqual(rcpts, sorted(MEMBERS))

    def test_e_pipe_mode_posts_are_picked_up_at_once(self):
        # Each round first lets an SMTP post through (it wakes the runner, which then sleeps a
        # full tick), then pipes a post right after: without a wake-up it waits for that tick.
        latencies = []
        for i in range(3):
            rc, out = lh.swaks(self.l.smtp_port, TEAM, self.post("tick-%d-smtp" % i, "tick"))
            self.assertEqual(rc, 0, out)
            lh.wait_for(lambda i=i: len(self.deliveries_of("tick-%d-smtp" % i)) == len(MEMBERS), 60,
                        "the SMTP post", interval=0.005)
            time.sleep(0.05)
            msg = self.post("tick-%d-pipe" % i, "picked up at once").replace(b"\r\n", b"\n")
            count = len(self.sink.deliveries())
            queued = time.monotonic()  # pipe-in: includes starting the pipe-mode process
            p = self.l.pipe(TEAM, msg)
            self.assertEqual(p.returncode, 0, p.stderr)
            lh.wait_for(lambda: len(self.sink.deliveries()) > count, 60, "the pipe post", interval=0.005)
            latencies.append(time.monotonic() - queued)
            self.wait_delivered("tick-%d-pipe" % i)
        ms = [round(x * 1000) for x in latencies]
        print("pipe-in -> first delivery at the smarthost: %s ms" % ms, file=sys.stderr)
        self.assertLess(statistics.median(latencies), 0.4,
                        "pipe-mode posts wait for the runner's tick: %s ms" % ms)


if __name__ == "__main__":
    harness.main()
