#!/usr/bin/env python3
"""Attack: a stranger and the held posts of a members-only list (issue 12), against the real listd.

Usage: held_attack_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Anyone may mail a members-only list, and every post gets the same 250 (no membership oracle), so
a stranger's posts are kept in the spool's held/ for the owner for [spool] held_days (14). Unbounded,
that lets one stranger fill the spool's disk with posts of the largest size listd takes; members'
posts then get 452 until the held ones expire. With listd's defaults ([smtp] max_message_bytes
25 MiB), checked:
  - five 24 MiB posts from a stranger: held/ keeps no more than [spool] held_max_bytes (100 MiB)
    for the list; the post past it is deleted (logged, counted), not held, and nothing of it stays
    in the spool;
  - every one of those posts, and a member's, got the same reply (250 2.0.0 queued as ID);
  - the list still delivers a member's post afterwards, and the owner got a notice for each post
    held and none for the one deleted.
"""

import os
import re
import smtplib
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "closed@example.org"
OWNER = "boss@example.net"
MEMBER = "alice@example.org"
STRANGER = "mallory@example.net"
MIB = 1024 * 1024


class HeldPostsTest(lh.ListdTestCase):
    @classmethod
    def setUpClass(cls):
        # listd's own default message size (the harness lowers it to 2 MiB); [spool] as shipped.
        cls.set_up_listd("held-attack", LIST, "held", lmtp=False, smtp={"max_message_bytes": 25 * MIB})
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--owner", OWNER)
        cls.l.lists("member", "add", LIST, MEMBER)
        time.sleep(1.1)
        cls.l.start()

    def spool(self, sub):
        d = os.path.join(self.l.spool, sub)
        return sorted(n for n in os.listdir(d) if not n.startswith(".")) if os.path.isdir(d) else []

    def delivered_to_member(self, marker):
        for root, _, files in os.walk(os.path.join(self.l.dir, "maildirs")):
            for name in files:
                if marker in harness.read(os.path.join(root, name)):
                    return True
        return False

    def send(self, conn, sender, message):
        conn.mail(sender)
        code, text = conn.rcpt(LIST)
        self.assertEqual(code, 250, text)
        code, text = conn.data(message)
        return code, text.decode()

    def test_a_stranger_cannot_fill_the_disk_through_held_posts(self):
        # One 24 MiB post (S/MIME to the list, as a member's would be), sent five times.
        big = lh.make_post(self.work, self.cert, "big", "x" * (17 * MIB + 512 * 1024), sender=STRANGER, to=LIST)
        self.assertGreater(len(big), 24 * MIB)
        self.assertLess(len(big), 25 * MIB)
        small = lh.make_post(self.work, self.cert, "member post", "hello", sender=MEMBER, to=LIST)
        replies = []
        with smtplib.SMTP("127.0.0.1", self.l.smtp_port, timeout=300) as conn:
            conn.ehlo("attacker.example.net")
            for _ in range(5):
                replies.append(self.send(conn, STRANGER, big))
            replies.append(self.send(conn, MEMBER, small))
        ids = []
        for code, text in replies:
            self.assertEqual(code, 250, text)
            m = re.fullmatch(r"2\.0\.0 queued as (\S+)", text)
            self.assertIsNotNone(m, text)
            ids.append(m.group(1))
        # Wait until listd has decided about every post.
        lh.wait_for(lambda: not self.spool("incoming") and not self.spool("active"), 180, "an empty queue")
        lh.wait_for(lambda: self.delivered_to_member(b"member post"), 60, "the member's post delivered")
        held = self.spool("held")
        held_bytes = sum(os.path.getsize(os.path.join(self.l.spool, "held", n)) for n in held)
        self.assertLessEqual(held_bytes, 100 * MIB,
                             "held/ keeps %d posts, %.1f MiB, from one stranger: unbounded" %
                             (len(held), held_bytes / MIB))
        self.assertEqual(held, sorted(ids[:4]))
        self.assertNotIn(ids[4], held)
        for sub in ("incoming", "active", "corrupt"):
            self.assertFalse([n for n in self.spool(sub) if n.startswith(ids[4])], sub)
        log = self.l.log_text()
        self.assertIn("post from a non-member deleted, not held: held/ is full for this list", log)
        status, metrics = self.l.http("/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"listd_held_full_deleted_total 1", metrics)
        # The member's post went out; the owner was told of the four held posts only.
        self.assertNotIn(ids[5], held)
        told = re.findall(r'"msg":"owner told of a held post","id":"([^"]+)"', log)
        self.assertEqual(sorted(told), sorted(ids[:4]), log[-3000:])


if __name__ == "__main__":
    harness.main()
