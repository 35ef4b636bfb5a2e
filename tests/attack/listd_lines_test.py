#!/usr/bin/env python3
"""Attack: lines longer than SMTP allows, through all three intakes (issue 12), against the real
listd in front of a strict SMTP sink.

Usage: listd_lines_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

RFC 5321 4.5.3.1.6 (and RFC 5322 2.1.1) limit a line to 998 octets. listd forwards what it takes
as it is, so a longer line reaches the smarthost, which refuses the whole message ("500 Line too
long"): nobody gets it, and the DSN quoting its header is refused as well. Pipe mode took lines of
any length, SMTP and LMTP lines of up to 4096. Checked, with a sink that refuses long lines:
  - a post whose base64 is one 7000-octet line: pipe mode 65 and SMTP 554 5.6.0, not taken;
  - a post with a 2000-octet header field over SMTP and LMTP: 554 5.6.0;
  - mail for the owner (forwarded as received) with a 3000-octet Subject by pipe mode: 65;
  - a line of exactly 998 octets is taken and reaches the owner through the strict sink.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "open@example.org"
ALIAS = "open-owner@example.org"
OWNER = "boss@example.net"
SENDER = "eve@example.net"


class LongLinesTest(lh.ListdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_listd("listd-lines", LIST, "lines", sink={"refuse_bare_lf": True}, lmtp=True)
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--posting", "open",
                    "--owner", OWNER)
        cls.l.lists("member", "add", LIST, "alice@example.org")
        time.sleep(1.1)
        cls.l.start()

    def post(self, subject, body="x"):
        return lh.make_post(self.work, self.cert, subject, body, to=LIST, sender=SENDER)

    def test_a_one_line_of_base64(self):
        msg = self.post("oneline", "y" * 5000)
        head, body = msg.split(b"\r\n\r\n", 1)
        flat = head + b"\r\n\r\n" + b"".join(body.split()) + b"\r\n"
        self.assertGreater(max(len(x) for x in flat.split(b"\r\n")), 6000)
        p = self.l.pipe(LIST, flat.replace(b"\r\n", b"\n"), sender=SENDER)
        self.assertEqual(p.returncode, 65, "pipe mode took a 7000-octet line: %r" % p.stdout)
        self.assertIn(b"554 5.6.0", p.stdout + p.stderr)
        rc, t = lh.swaks(self.l.smtp_port, LIST, flat, sender=SENDER)
        self.assertNotRegex(t, r"<- +250 2\.0\.0 queued")

    def test_b_a_long_header_field(self):
        msg = self.post("longheader").replace(b"\r\n", b"\r\nX-Long: " + b"h" * 2000 + b"\r\n", 1)
        rc, t = lh.swaks(self.l.smtp_port, LIST, msg, sender=SENDER)
        self.assertRegex(t, r"<\*\* +554 5\.6\.0 a line of the message is longer than 998 octets", t)
        rc, t = lh.swaks(self.l.lmtp_port, LIST, msg, sender=SENDER, protocol="LMTP")
        self.assertRegex(t, r"<\*\* +554 5\.6\.0", t)

    def test_c_owner_mail_with_a_long_subject(self):
        p = self.l.pipe(ALIAS, b"Subject: " + b"z" * 3000 + b"\n\nbody\n", sender=SENDER)
        self.assertEqual(p.returncode, 65, "pipe mode took mail for the owner with a 3000-octet line: %r" % p.stdout)
        self.assertIn(b"554 5.6.0", p.stdout + p.stderr)

    def test_d_998_octets_are_taken_and_delivered(self):
        line = b"Subject: edge-998 " + b"w" * (998 - len(b"Subject: edge-998 "))
        self.assertEqual(len(line), 998)
        p = self.l.pipe(ALIAS, line + b"\n\nbody\n", sender=SENDER)
        self.assertEqual(p.returncode, 0, p)

        def delivered():
            return [r for r in self.sink.deliveries()
                    if r["rcpt"] == OWNER and b"edge-998" in self.sink.message(r["file"])]
        lh.wait_for(delivered, 60, "the 998-octet line delivered through the strict sink")
        got = self.sink.message(delivered()[0]["file"])
        self.assertTrue(re.search(rb"Subject: edge-998 w{980}", got), got[:300])


if __name__ == "__main__":
    harness.main()
