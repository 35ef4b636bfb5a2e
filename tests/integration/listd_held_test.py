#!/usr/bin/env python3
"""Posts a members-only list holds for its owner (issue 12): the spool's held/ directory.

Usage: listd_held_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

One real blindlist-listd delivers to a real SMTP sink (aiosmtpd). Checked:
  - a member's post is delivered and never held;
  - an outsider's post lands in held/<id> (not corrupt/), counts in listd_spool_held (not in
    listd_spool_corrupt), shows in `held list` (id, list, sender, age, size), is never delivered,
    and its owner gets one mail about it from the null sender that carries none of its content;
  - `held release ID` delivers it to the members (as from a member), logged; `held discard ID`
    deletes it; an unknown id exits 1, a bad one 2;
  - a held post older than [spool] held_days is deleted with a log line;
  - at most [spool] held_notices_per_hour mails to one list's owner an hour.
"""

import json
import os
import re
import sys
import time
import zlib

import harness
import listd_harness as lh

TEAM = "team@example.org"
CLOSED = "closed@example.org"      # members only, owner BOSS
NOISY = "noisy@example.org"        # members only, owner BOSS2: the notice rate limit
MEMBERS = ["alice@example.org", "bob@example.org"]
BOSS = "boss@example.net"
BOSS2 = "boss2@example.net"
PER_HOUR = 2


class ListdHeldTest(lh.ListdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_listd("listd-held", TEAM, "held", cert_name="team.crt", sink={}, lmtp=False)
        cls.l.sections["spool"]["held_days"] = 2
        cls.l.sections["spool"]["held_notices_per_hour"] = PER_HOUR
        cls.l.write_config()
        for lst, owner in ((CLOSED, BOSS), (NOISY, BOSS2)):
            cls.l.lists("create", lst, "--group", TEAM, "--certificate", cls.cert, "--force",
                        "--owner", owner)
            cls.l.lists("member", "add", lst, *MEMBERS)
        time.sleep(1.1)  # members are added strictly before any post
        cls.l.start()

    # -- helpers
    def post(self, lst, marker, sender):
        msg = lh.make_post(self.work, self.cert, marker, "x", to=lst, sender=sender)
        rc, out = lh.swaks(self.l.smtp_port, lst, msg, sender=sender)
        self.assertEqual(rc, 0, out)
        m = re.search(r"<- +250 2\.0\.0 queued as (\S+)", out)
        self.assertIsNotNone(m, out)
        return m.group(1), msg

    def held(self, *args):
        return harness.run([lh.listd_bin(), "--config", self.l.config, "held"] + list(args), check=False)

    def held_list(self):
        p = self.held("list", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return {h["id"]: h for h in json.loads(p.stdout)}

    def held_path(self, post_id):
        return os.path.join(self.l.spool, "held", post_id)

    def with_marker(self, marker):
        return [r for r in self.sink.deliveries() if marker.encode() in self.sink.message(r["file"])]

    def notices(self, owner, post_id=None):
        out = []
        for r in self.sink.deliveries():
            if r["rcpt"] != owner or r["mail_from"] not in ("", "<>"):
                continue
            text = self.sink.message(r["file"])
            if post_id is None or post_id.encode() in text:
                out.append(text)
        return out

    def gauge(self, name):
        status, body = self.l.http("/metrics")
        self.assertEqual(status, 200)
        m = re.search(r"^%s (\S+)$" % name, body.decode(), re.M)
        self.assertIsNotNone(m, name)
        return float(m.group(1))

    def wait_held(self, post_id):
        lh.wait_for(lambda: os.path.exists(self.held_path(post_id)), 60, "post %s held" % post_id)

    # -- tests
    def test_a_outsider_held_then_released(self):
        member_id, _ = self.post(CLOSED, "held-a-member", "alice@example.org")
        out_id, out_msg = self.post(CLOSED, "held-a-outsider", "mallory@example.net")
        lh.wait_for(lambda: {r["rcpt"] for r in self.with_marker("held-a-member")} >= set(MEMBERS), 60,
                    "the member's post delivered")
        self.wait_held(out_id)
        self.assertFalse(os.path.exists(self.held_path(member_id)), "a member's post was held")
        corrupt = os.listdir(os.path.join(self.l.spool, "corrupt"))
        self.assertEqual([n for n in corrupt if out_id in n], [], "held in corrupt/")
        self.assertEqual(self.gauge("listd_spool_held"), 1)
        self.assertEqual(self.gauge("listd_spool_corrupt"), 0)
        listed = self.held_list()
        self.assertEqual(set(listed), {out_id})
        h = listed[out_id]
        self.assertEqual((h["list"], h["sender"]), (CLOSED, "mallory@example.net"))
        self.assertEqual(h["size"], os.path.getsize(self.held_path(out_id)))
        self.assertGreaterEqual(h["age_seconds"], 0)
        self.assertLess(h["age_seconds"], 600)
        text = self.held("list").stdout.decode()
        self.assertIn(out_id, text)
        self.assertIn("mallory@example.net", text)

        # The owner is told once, without the post's content.
        notice = lh.wait_for(lambda: (self.notices(BOSS, out_id) or [None])[0], 60, "the owner's notice")
        self.assertIn(b"Subject: Post held on " + CLOSED.encode(), notice)
        self.assertIn(b"held release " + out_id.encode(), notice)
        self.assertNotIn(b"held-a-outsider", notice)
        ciphertext = lh.smime_body(out_msg)
        self.assertGreater(len(ciphertext), 200)
        self.assertNotIn(ciphertext[100:160], b"".join(notice.split()), "the post's content in the notice")
        time.sleep(2)
        self.assertEqual(self.with_marker("held-a-outsider"), [], "a held post was delivered")
        self.assertEqual(len(self.notices(BOSS, out_id)), 1, "one notice per held post")

        # Released: delivered to the members as from a member, logged.
        p = self.held("release", out_id)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"released " + out_id.encode(), p.stdout)
        lh.wait_for(lambda: {r["rcpt"] for r in self.with_marker("held-a-outsider")} >= set(MEMBERS), 60,
                    "the released post delivered")
        self.assertFalse(os.path.exists(self.held_path(out_id)))
        self.assertFalse(os.path.exists(os.path.join(self.l.spool, "released", out_id)))
        self.assertTrue([l for l in self.l.log_text().splitlines() if "released post" in l and out_id in l],
                        "the release in listd's log")
        self.assertEqual(self.gauge("listd_spool_held"), 0)
        self.assertEqual(len(self.notices(BOSS, out_id)), 1, "no second notice after release")
        # Released once: a second release finds nothing.
        self.assertEqual(self.held("release", out_id).returncode, 1)

    def test_b_discard(self):
        out_id, _ = self.post(CLOSED, "held-b-outsider", "eve@example.net")
        self.wait_held(out_id)
        # Anyone but the spool's owner (root at a shell, say) is refused before writing: a file
        # root made in the spool is one listd's own user could not read or remove.
        st = os.stat(self.l.spool)
        os.chown(self.l.spool, 65534, st.st_gid)
        try:
            p = self.held("discard", out_id)
        finally:
            os.chown(self.l.spool, st.st_uid, st.st_gid)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"runuser -u blindlist-listd", p.stderr)
        self.assertTrue(os.path.exists(self.held_path(out_id)), "a refused discard deleted the post")
        p = self.held("discard", out_id)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(self.held_path(out_id)))
        self.assertNotIn(out_id, self.held_list())
        self.assertEqual(self.held("discard", out_id).returncode, 1)
        self.assertEqual(self.held("release", "../incoming/x").returncode, 2)
        self.assertEqual(self.held("release").returncode, 2)
        time.sleep(2)
        self.assertEqual(self.with_marker("held-b-outsider"), [], "a discarded post was delivered")
        self.assertEqual(os.listdir(os.path.join(self.l.spool, "corrupt")), [])

    def test_c_expiry(self):
        out_id, _ = self.post(CLOSED, "held-c-outsider", "trudy@example.net")
        self.wait_held(out_id)
        data = harness.read(self.held_path(out_id))
        end = data.rindex(b"end ")
        self.assertEqual(data[end:], b"end %08x\n" % zlib.crc32(data[:end]), "the checksum as specified")
        # The same post, three days old, under another id: older than held_days = 2.
        old = int(time.time()) - 3 * 86400
        old_id = "%017d-0a0a0a0a" % ((old - 10) * 1000000)
        forged = re.sub(rb"received-at \d+\n", b"received-at %d\n" % old, data[:end], count=1)
        forged = forged.replace(b"id " + out_id.encode() + b"\n", b"id " + old_id.encode() + b"\n", 1)
        harness.write(self.held_path(old_id), forged + b"end %08x\n" % zlib.crc32(forged))
        self.assertEqual(self.held_list()[old_id]["age_seconds"] // 86400, 3)
        # Expiry is looked at when listd starts and once a minute.
        self.l.stop()
        self.l.start()
        lh.wait_for(lambda: not os.path.exists(self.held_path(old_id)), 60, "the old held post deleted")
        lh.wait_for(lambda: re.search(r"held post deleted.*%s" % old_id, self.l.log_text()), 30, "its log line")
        self.assertTrue(os.path.exists(self.held_path(out_id)), "a young held post was deleted")
        self.assertEqual(self.held("discard", out_id).returncode, 0)

    def test_d_notice_rate_limit(self):
        hour = int(time.time()) // 3600
        ids = [self.post(NOISY, "held-d-%d" % i, "spam%d@example.net" % i)[0] for i in range(PER_HOUR + 2)]
        for post_id in ids:
            self.wait_held(post_id)
        lh.wait_for(lambda: len(self.notices(BOSS2)) >= PER_HOUR, 60, "the owner's notices")
        time.sleep(3)
        if int(time.time()) // 3600 == hour:
            self.assertEqual(len(self.notices(BOSS2)), PER_HOUR)
            self.assertIn("held post not announced: too many this hour", self.l.log_text())
        self.assertEqual(set(self.held_list()) & set(ids), set(ids), "every post is held all the same")
        for post_id in ids:
            self.assertEqual(self.held("discard", post_id).returncode, 0)


if __name__ == "__main__":
    harness.main()
