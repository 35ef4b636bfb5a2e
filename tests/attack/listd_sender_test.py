#!/usr/bin/env python3
"""Attack: envelope senders listd takes but could never send to or from again (issue 12), against
the real listd in front of an SMTP sink.

Usage: listd_sender_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

The envelope sender goes out again: as the sender of mail forwarded to a list's owner
(LIST-owner@) and as the recipient of DSNs. A sender with ESMTP parameters after a '>'
(`x> SMTPUTF8 ENVID=@example.net`, from pipe mode, or `"x> ENVID=abc"@example.net`, quoted, over
SMTP) is never put on the wire (the SMTP client refuses a '>', which a lax next hop may take as
the end of the path): such mail was answered 250 and then waited in the queue, refused by our own
client, until max_age, and reached nobody. pipe(8) hands the null sender over as MAILER-DAEMON,
which must not become a sender (or a DSN recipient) named "MAILER-DAEMON". Checked:
  - pipe mode refuses such senders and an unquoted space with 553 5.1.7, exit 65 (permanent);
  - SMTP refuses the quoted form with 553 5.1.7; nothing is queued;
  - pipe mode's MAILER-DAEMON is the null sender: owner mail is forwarded from <>, and a bounce
    report is still taken;
  - an ordinary and a UTF-8 sender are still taken, and owner mail reaches the owner.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "owned@example.org"
ALIAS = "owned-owner@example.org"
OWNER = "boss@example.net"
MSG = b"From: someone@example.net\nSubject: for the owner %s\n\nbody\n"


class SenderTest(lh.ListdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_listd("listd-sender", LIST, "sender", sink={"refuse_bare_lf": True}, lmtp=False)
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--owner", OWNER)
        time.sleep(1.1)
        cls.l.start()

    def forwarded(self, marker):
        out = []
        for r in self.sink.deliveries():
            if r["rcpt"] == OWNER and marker in self.sink.message(r["file"]):
                out.append(r)
        return out

    def smtp(self, sender, data):
        s = socket.create_connection(("127.0.0.1", self.l.smtp_port), timeout=60)
        f = s.makefile("rb")

        def reply():
            out = b""
            while True:
                line = f.readline()
                out += line
                if line[3:4] != b"-":
                    return out.decode()
        try:
            reply()
            s.sendall(b"EHLO attacker.example.net\r\n")
            reply()
            s.sendall(b"MAIL FROM:<" + sender + b">\r\n")
            r = reply()
            if not r.startswith("250"):
                return r
            s.sendall(b"RCPT TO:<" + ALIAS.encode() + b">\r\n")
            r = reply()
            if not r.startswith("250"):
                return r
            s.sendall(b"DATA\r\n")
            r = reply()
            if not r.startswith("354"):
                return r
            s.sendall(data.replace(b"\n", b"\r\n") + b".\r\n")
            return reply()
        finally:
            s.close()

    def test_a_pipe_refuses_senders_it_could_never_use(self):
        for i, sender in enumerate(["x> SMTPUTF8 ENVID=@example.net", "x>@example.net", "<x@example.net>",
                                    "x y@example.net"]):
            with self.subTest(sender=sender):
                p = self.l.pipe(ALIAS, MSG % (b"pipe-bad-%d" % i), sender=sender)
                self.assertEqual(p.returncode, 65, "pipe mode took %r: %r %r" % (sender, p.stdout, p.stderr[-300:]))
                self.assertIn(b"553 5.1.7", p.stdout + p.stderr)

    def test_b_smtp_refuses_a_quoted_sender_with_a_bracket(self):
        r = self.smtp(b'"x> ENVID=abc"@example.net', MSG % b"smtp-bad")
        self.assertTrue(r.startswith("553 5.1.7"), r)

    def test_c_pipe_null_sender_is_null(self):
        p = self.l.pipe(ALIAS, MSG % b"pipe-null", sender="MAILER-DAEMON")
        self.assertEqual(p.returncode, 0, p)
        lh.wait_for(lambda: self.forwarded(b"pipe-null"), 60, "the owner mail forwarded")
        self.assertIn(self.forwarded(b"pipe-null")[0]["mail_from"], ("", "<>"))
        # A report to the bounce address from pipe(8)'s null sender is still taken.
        p = self.l.pipe("owned-bounces@example.org", b"From: MAILER-DAEMON@example.net\nSubject: x\n\nx\n",
                        sender="MAILER-DAEMON")
        self.assertEqual(p.returncode, 0, p)

    def test_d_ordinary_senders_still_work(self):
        for i, sender in enumerate(["someone@example.net", '"some one"@example.net']):
            with self.subTest(sender=sender):
                p = self.l.pipe(ALIAS, MSG % (b"pipe-good-%d" % i), sender=sender)
                self.assertEqual(p.returncode, 0, p)
        # A UTF-8 sender (RFC 6531) is a mailbox too: a report from one is taken.
        p = self.l.pipe("owned-bounces@example.org", b"Subject: x\n\nx\n", sender="j\u00f6rg@example.net")
        self.assertEqual(p.returncode, 0, p)
        r = self.smtp(b"someone@example.net", MSG % b"smtp-good")
        self.assertTrue(r.startswith("250 2.0.0"), r)
        for marker in (b"pipe-good-0", b"pipe-good-1", b"smtp-good"):
            lh.wait_for(lambda: self.forwarded(marker), 60, "owner mail %s forwarded" % marker)
        # Nothing refused above was queued: the queue is empty once the good ones are out.
        lh.wait_for(lambda: not [n for n in os.listdir(os.path.join(self.l.spool, "incoming")) if n[0] != "."] and
                    not [n for n in os.listdir(os.path.join(self.l.spool, "active")) if n[0] != "."],
                    60, "an empty queue")


if __name__ == "__main__":
    harness.main()
