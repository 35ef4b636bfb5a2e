#!/usr/bin/env python3
"""Attack: a UTF-8 envelope sender (RFC 6531) through listd to its smarthost.

Usage: listd_smtputf8_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Pipe mode takes a UTF-8 envelope sender (Postfix hands it over as it came, from a client that
used SMTPUTF8), and mail to a list's owner alias is forwarded from that sender. listd put it on
the wire as `MAIL FROM:<jörg@...>` without the SMTPUTF8 parameter: a Postfix smarthost refuses
that (553 5.6.7 Must declare SMTPUTF8), so anyone with a UTF-8 address could write to no list
owner, and a smarthost that does not offer SMTPUTF8 at all was sent what it never agreed to take.
Checked, against an SMTP sink:
  - a smarthost that offers SMTPUTF8 and enforces it as Postfix does gets the owner mail with
    MAIL's SMTPUTF8 parameter, and the owner receives it;
  - a smarthost that does not offer SMTPUTF8 is never sent the UTF-8 address: listd refuses it
    itself, permanently (553 5.6.7, saying the smarthost does not offer SMTPUTF8), so the mail
    does not wait in the queue; ASCII mail still goes out over the same smarthost.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "utf8-owned@example.org"
ALIAS = "utf8-owned-owner@example.org"
OWNER = "boss@example.net"
SENDER = "j\u00f6rg@example.net"
MSG = b"From: someone@example.net\nSubject: for the owner %s\n\nbody\n"


class Base(lh.ListdTestCase):
    MODE = None

    @classmethod
    def setUpClass(cls):
        cls.set_up_listd("listd-utf8-" + cls.MODE, LIST, "utf8-" + cls.MODE,
                         sink={"smtputf8": cls.MODE}, lmtp=False)
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--owner", OWNER)
        time.sleep(1.1)
        cls.l.start()

    def forwarded(self, marker):
        return [r for r in self.sink.deliveries()
                if r["rcpt"] == OWNER and marker in self.sink.message(r["file"])]

    def queue_empty(self):
        return not [n for sub in ("incoming", "active") for n in os.listdir(os.path.join(self.l.spool, sub))
                    if n[0] != "."]


class Strict(Base):
    """The smarthost offers SMTPUTF8 and, as Postfix, refuses a UTF-8 address without it."""
    MODE = "strict"

    def test_owner_mail_from_a_utf8_sender_is_forwarded_with_smtputf8(self):
        p = self.l.pipe(ALIAS, MSG % b"utf8-strict", sender=SENDER)
        self.assertEqual(p.returncode, 0, p)
        deadline = time.time() + 30
        while time.time() < deadline and not self.forwarded(b"utf8-strict"):
            time.sleep(0.2)
        got = self.forwarded(b"utf8-strict")
        self.assertTrue(got, "the owner never got mail from a UTF-8 sender; listd's log:\n%s" %
                        "\n".join(line for line in self.l.log_text().splitlines() if "deliver" in line)[-3000:])
        self.assertEqual(got[0]["mail_from"], SENDER)
        self.assertTrue(got[0]["smtputf8"], got[0])


class NotOffered(Base):
    """The smarthost does not offer SMTPUTF8: the UTF-8 address must not reach it."""
    MODE = "off"

    def test_utf8_sender_refused_by_listd_itself(self):
        p = self.l.pipe(ALIAS, MSG % b"ascii-off", sender="someone@example.net")
        self.assertEqual(p.returncode, 0, p)
        p = self.l.pipe(ALIAS, MSG % b"utf8-off", sender=SENDER)
        self.assertEqual(p.returncode, 0, p)
        lh.wait_for(lambda: self.forwarded(b"ascii-off"), 60, "the ASCII owner mail forwarded")
        lh.wait_for(lambda: "5.6.7" in self.l.log_text() or "strict ASCII" in self.l.log_text(), 60,
                    "the UTF-8 owner mail settled")
        log = self.l.log_text()
        self.assertNotIn("strict ASCII", log, "listd sent the smarthost a UTF-8 address it never offered to take")
        self.assertIn("does not offer SMTPUTF8", log)
        self.assertFalse(self.forwarded(b"utf8-off"))
        lh.wait_for(self.queue_empty, 60, "an empty queue (the refusal is permanent)")


if __name__ == "__main__":
    harness.main()
