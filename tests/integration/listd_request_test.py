#!/usr/bin/env python3
"""LIST-request@: listd answers whom to ask, as an automatic reply (RFC 3834).

Usage: listd_request_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A real listd delivers to a real SMTP sink (aiosmtpd). Checked: a message to
team-request@ over SMTP gets one answer from the null sender, with
Auto-Submitted: auto-replied, naming the configured owner; a second one from the
same sender within the interval gets none (and neither does pipe mode, a separate
process: the limit is on disk); the null sender, auto-submitted mail and list mail get
none; a -request address of no list is 550; the List-Unsubscribe header of a post
points at -request with subject unsubscribe and no one-click POST is claimed.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@example.org"
REQUEST = "team-request@example.org"
OWNER = "lists-admin@example.org"


def request(subject, sender="bob@example.net", extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\n%s\r\nplease\r\n"
            % (sender, REQUEST, subject, subject, extra)).encode()


class ListdRequestTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("listd-request", with_certd=False).start()
        cls.work = harness.tempdir("listd-request-work")
        d.create_group(LIST, "p256")
        cls.cert = os.path.join(cls.work, "team.crt")
        d.public_certificate(LIST, cls.cert)
        cls.sink = lh.Sink(os.path.join(cls.work, "sink")).start()
        cls.l = lh.Listd(d, "request", delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % cls.sink.port,
                                                 "starttls": "never"})
        cls.l.sections["request"] = {"owner": OWNER}
        cls.l.write_config()
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--posting", "open")
        cls.l.lists("member", "add", LIST, "alice@example.org")
        cls.l.start()

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()

    def answers_to(self, rcpt):
        return [r for r in self.sink.deliveries() if r["rcpt"] == rcpt]

    def test_a_request_gets_one_answer_per_interval(self):
        rc, out = lh.swaks(self.l.smtp_port, REQUEST, request("subscribe"), sender="bob@example.net")
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0", out)
        (answer,) = lh.wait_for(lambda: self.answers_to("bob@example.net"), 60, "the answer")
        self.assertIn(answer["mail_from"], ("", "<>"))
        text = self.sink.message(answer["file"]).decode()
        self.assertIn("From: team-request@example.org\r\n", text)
        self.assertIn("Auto-Submitted: auto-replied\r\n", text)
        self.assertIn("In-Reply-To: <subscribe@example.net>\r\n", text)
        self.assertIn("Subject: Auto: subscribe\r\n", text)
        self.assertIn(OWNER, text)
        # Again within the interval, over SMTP and by pipe(8): received, not answered.
        rc, out = lh.swaks(self.l.smtp_port, REQUEST, request("again"), sender="bob@example.net")
        self.assertEqual(rc, 0, out)
        p = self.l.pipe(REQUEST, request("piped"), sender="bob@example.net")
        self.assertEqual(p.returncode, 0, p.stderr)
        # Another sender by pipe mode: answered.
        p = self.l.pipe(REQUEST, request("piped2", sender="carol@example.net"), sender="carol@example.net")
        self.assertEqual(p.returncode, 0, p.stderr)
        lh.wait_for(lambda: self.answers_to("carol@example.net"), 60, "carol's answer")
        time.sleep(1)
        self.assertEqual(len(self.answers_to("bob@example.net")), 1)

    def test_automatic_and_null_sender_mail_is_never_answered(self):
        for name, sender, extra in (("null", "", ""),
                                    ("auto", "dave@example.net", "Auto-Submitted: auto-replied\r\n"),
                                    ("bulk", "erin@example.net", "Precedence: bulk\r\n"),
                                    ("list", "frank@example.net", "List-Id: <other.example.net>\r\n"),
                                    ("daemon", "MAILER-DAEMON@example.net", "")):
            rc, out = lh.swaks(self.l.smtp_port, REQUEST, request(name, sender or "x@example.net", extra),
                               sender=sender)
            self.assertEqual(rc, 0, out)
            self.assertIn("250 2.0.0", out)
        # A message answered afterwards shows the runner had its chance with the others.
        rc, out = lh.swaks(self.l.smtp_port, REQUEST, request("marker", "gina@example.net"),
                           sender="gina@example.net")
        self.assertEqual(rc, 0, out)
        lh.wait_for(lambda: self.answers_to("gina@example.net"), 60, "the marker's answer")
        for rcpt in ("x@example.net", "", "dave@example.net", "erin@example.net", "frank@example.net",
                     "MAILER-DAEMON@example.net"):
            self.assertEqual(self.answers_to(rcpt), [], rcpt)
        self.assertIn("request address: no automatic answer", self.l.log_text())

    def test_unknown_request_address_and_list_unsubscribe(self):
        rc, out = lh.swaks(self.l.smtp_port, "nolist-request@example.org", request("x"))
        self.assertNotEqual(rc, 0)
        self.assertIn("550 5.1.1", out)
        msg = lh.make_post(self.work, self.cert, "unsub-header", "hello", to=LIST)
        rc, out = lh.swaks(self.l.smtp_port, LIST, msg)
        self.assertEqual(rc, 0, out)
        (rec,) = lh.wait_for(lambda: [r for r in self.sink.deliveries()
                                      if b"unsub-header" in self.sink.message(r["file"])], 60, "the post")
        text = self.sink.message(rec["file"]).decode()
        self.assertIn("List-Unsubscribe: <mailto:team-request@example.org?subject=unsubscribe>\r\n", text)
        self.assertIn("List-Help: <mailto:team-request@example.org?subject=help>\r\n", text)
        self.assertNotIn("List-Unsubscribe-Post", text)


if __name__ == "__main__":
    harness.main()
