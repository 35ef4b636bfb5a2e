#!/usr/bin/env python3
"""Attack: what listd's replies and reports tell an outsider, and the addresses around a list
(issue 12, after its first attack).

Usage: listd_oracle_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

One real blindlist-listd delivers one transaction per member to a real SMTP sink (aiosmtpd)
that refuses marked posts after their body with a text that names the recipient (as real MTAs
do), and defers other marked posts forever (451 after the body). Checked:
  - the DSN for a refused post carries the reply's codes and a fixed text, never the remote
    text: no member's address reaches the sender;
  - a members-only list answers a member and an outsider with the same reply (250, queued);
    the outsider's post is held in the spool's held/ for the owner, never delivered;
  - LIST-owner@ is forwarded to the owner address the list sets, as received, with an X-Loop
    field; without an owner it is refused with 550 5.1.1, and a forward that comes back is a
    loop (550 5.4.6);
  - pipe mode refuses a --sender with CR/LF permanently (65), and prints "250 2.0.0 queued";
  - a post deferred at DATA until it expires gives its sender one DSN (Action: failed,
    Status 4.3.0) and the log says "expired", never "delivered to every member"; a restart
    between the expiry and the report does not send that DSN to the owner instead (the routing
    is in the queue file), and the DSN is itself a queue file before the post's is removed;
  - list and bounce addresses compare without case: an upper-cased VERP address still scores
    its own member, an upper-cased list address still takes posts;
  - `blindlist list set --owner --bounce-stale-after` and `list show` with scores and states;
    a certificate for another address is refused without --force.
"""

import os
import re
import sqlite3
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

TEAM = "team@example.org"       # open posting, no owner
LEAK = "leak@example.org"       # open; its LEAKME posts are refused with the recipient named
CLOSED = "closed@example.org"   # members only
OWNED = "owned@example.org"     # --owner boss@example.net
DEFER = "defer@example.org"     # open; its DEFERME posts are deferred at DATA until they expire
MEMBERS = ["alice@example.org", "bob@example.org", "carol@example.org"]
BOSS = "boss@example.net"
MAX_AGE = 8


class ListdOracleTest(lh.ListdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_listd("listd-oracle", TEAM, "oracle", cert_name="team.crt", lmtp=False,
                         sink={"data_reply": "554", "data_reply_match": "LEAKME",
                               "data_reply_echo": True, "data_defer_match": "DEFERME"},
                         delivery={"max_age_seconds": MAX_AGE})
        cls.l.lists("create", TEAM, "--group", TEAM, "--certificate", cls.cert, "--posting", "open")
        for lst, extra in ((LEAK, ["--posting", "open"]), (CLOSED, []), (OWNED, ["--owner", BOSS]),
                           (DEFER, ["--posting", "open"])):
            cls.l.lists("create", lst, "--group", TEAM, "--certificate", cls.cert, "--force", *extra)
        for lst in (TEAM, LEAK, CLOSED, OWNED, DEFER):
            cls.l.lists("member", "add", lst, *MEMBERS)
        time.sleep(1.1)  # members are added strictly before any post
        cls.l.start()

    # -- helpers
    def sql(self, statement):
        url = self.l.store_url
        if url.startswith("sqlite:"):
            db = sqlite3.connect(url[len("sqlite:"):], timeout=30)
            try:
                rows = db.execute(statement).fetchall()
                db.commit()
                return rows
            finally:
                db.close()
        out = harness.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-F", "|", "-c", statement])
        return [tuple(line.split("|")) for line in out.stdout.decode().splitlines() if line]

    def scores(self, lst):
        rows = self.sql("SELECT m.address, m.bounce_score, m.enabled FROM list_members m "
                        "JOIN lists l ON l.id = m.list_id WHERE l.address = '%s'" % lst)
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def post(self, lst, marker, sender="dave@example.net", to=None):
        msg = lh.make_post(self.work, self.cert, marker, "x", to=lst, sender=sender)
        return lh.swaks(self.l.smtp_port, to or lst, msg, sender=sender)

    def queued_id(self, transcript):
        m = re.search(r"<- +250 2\.0\.0 queued as (\S+)", transcript)
        self.assertIsNotNone(m, transcript)
        return m.group(1)

    def to_rcpt(self, rcpt, null_sender=None, marker=None):
        out = []
        for r in self.sink.deliveries():
            if r["rcpt"] != rcpt:
                continue
            if null_sender is not None and (r["mail_from"] in ("", "<>")) != null_sender:
                continue
            if marker and marker.encode() not in self.sink.message(r["file"]):
                continue
            out.append(r)
        return out

    def delivered(self, marker, want):
        def got():
            recs = [r for r in self.sink.deliveries() if marker.encode() in self.sink.message(r["file"])]
            return recs if {r["rcpt"] for r in recs} >= set(want) else None
        return lh.wait_for(got, 60, "%s delivered to %s" % (marker, want))

    # -- tests
    def test_a_refusal_dsn_names_no_member(self):
        rc, out = self.post(LEAK, "LEAKME-post", sender="dave@example.net")
        self.assertEqual(rc, 0, out)
        rec = lh.wait_for(lambda: (self.to_rcpt("dave@example.net", null_sender=True, marker="LEAKME-post")
                                   or [None])[0], 60, "the DSN to the sender")
        text = self.sink.message(rec["file"]).decode()
        self.assertIn("report-type=delivery-status", text)
        self.assertIn("Final-Recipient: rfc822; %s" % LEAK, text)
        self.assertIn("Status: 5.6.0", text)
        self.assertRegex(text, r"Diagnostic-Code: smtp; 554 5\.6\.0 ")
        for m in MEMBERS:
            self.assertNotIn(m, text)
            self.assertNotIn(m.split("@")[0], text.lower())
        # The remote text, with the member, is in the log for the operator.
        self.assertIn("refused after its body", self.l.log_text())
        self.assertRegex(self.l.log_text(), r"message for <(alice|bob|carol)@example\.org> refused")

    def test_b_members_only_reply_is_the_same_for_everyone(self):
        replies = {}
        ids = {}
        for who in ("alice@example.org", "mallory@example.net"):
            rc, out = self.post(CLOSED, "closed-from-" + who, sender=who)
            self.assertEqual(rc, 0, out)
            ids[who] = self.queued_id(out)
            lines = [l for l in out.splitlines() if l.startswith("<-") or l.startswith("<**")]
            replies[who] = [re.sub(r"queued as \S+", "queued as ID", l) for l in lines]
        self.assertEqual(replies["alice@example.org"], replies["mallory@example.net"])
        # Pipe mode too: the same exit and the same text.
        pipe = {}
        for who in ("bob@example.org", "eve@example.net"):
            msg = lh.make_post(self.work, self.cert, "closed-pipe-" + who, "x", to=CLOSED, sender=who)
            p = self.l.pipe(CLOSED, msg, sender=who)
            pipe[who] = (p.returncode, re.sub(rb"queued as \S+", b"queued as ID", p.stdout))
        self.assertEqual(pipe["bob@example.org"], pipe["eve@example.net"])
        self.assertEqual(pipe["bob@example.org"][0], 0)
        # The member's post goes out; the outsider's is held for the owner, never delivered.
        self.delivered("closed-from-alice@example.org", MEMBERS)
        self.delivered("closed-pipe-bob@example.org", MEMBERS)
        held = os.path.join(self.l.spool, "held", ids["mallory@example.net"])
        lh.wait_for(lambda: os.path.exists(held), 30, "the outsider's post held")
        self.assertFalse([n for n in os.listdir(os.path.join(self.l.spool, "corrupt"))
                          if ids["mallory@example.net"] in n], "a held post counts as damage")
        time.sleep(1)
        for marker in ("closed-from-mallory@example.net", "closed-pipe-eve@example.net"):
            self.assertEqual([r for r in self.sink.deliveries() if marker.encode() in self.sink.message(r["file"])],
                             [], marker + " was delivered")

    def test_c_owner_alias(self):
        note = ("From: someone@example.net\r\nTo: owned-owner@example.org\r\nSubject: owner-note-1\r\n"
                "\r\nHello owner.\r\n").encode()
        rc, out = lh.swaks(self.l.smtp_port, "owned-owner@example.org", note, sender="someone@example.net")
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0 queued as", out)
        rec = lh.wait_for(lambda: (self.to_rcpt(BOSS, marker="owner-note-1") or [None])[0], 60, "the forward")
        self.assertEqual(rec["mail_from"], "someone@example.net")
        text = self.sink.message(rec["file"]).decode()
        self.assertIn("X-Loop: owned-owner@example.org", text)
        self.assertIn("Hello owner.", text)
        self.assertNotIn("List-Id", text)
        # Upper case, as some MTAs rewrite it.
        rc, out = lh.swaks(self.l.smtp_port, "OWNED-OWNER@example.org", note.replace(b"owner-note-1", b"owner-note-2"),
                           sender="someone@example.net")
        self.assertEqual(rc, 0, out)
        lh.wait_for(lambda: self.to_rcpt(BOSS, marker="owner-note-2"), 60, "the second forward")
        # A list without an owner: a clear 550 5.1.1 at RCPT.
        rc, out = lh.swaks(self.l.smtp_port, "team-owner@example.org", note, sender="someone@example.net")
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"550 5\.1\.1 team-owner@example\.org: team@example\.org has no owner address set")
        # What comes back through the alias is a loop.
        looped = b"X-Loop: owned-owner@example.org\r\n" + note
        rc, out = lh.swaks(self.l.smtp_port, "owned-owner@example.org", looped, sender="someone@example.net")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("550 5.4.6", out)
        # An owner that is the list's own address is refused by the CLI.
        p = self.l.lists("set", TEAM, "--owner", "team-owner@example.org", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"loop", p.stderr)

    def test_d_pipe_sender_injection_is_permanent_and_output_is_smtp_style(self):
        msg = lh.make_post(self.work, self.cert, "pipe-inject", "x", to=TEAM)
        p = self.l.pipe(TEAM, msg, sender="alice@example.org\r\nX-Injected: yes")
        self.assertIn(p.returncode, (65, 77), p.stderr)
        self.assertEqual(len(p.stderr.decode().strip().splitlines()), 1, p.stderr)
        self.assertIn(b"5.1.7", p.stderr)
        p = self.l.pipe(TEAM, msg, sender="alice@example.org\nX: y")
        self.assertIn(p.returncode, (65, 77), p.stderr)
        p = self.l.pipe(TEAM, msg, sender="alice@example.org")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode(), r"^250 2\.0\.0 queued as \S+\n$")

    def test_e_deferred_until_expiry_gives_one_dsn(self):
        rc, out = self.post(DEFER, "DEFERME-post", sender="erin@example.net")
        self.assertEqual(rc, 0, out)
        post_id = self.queued_id(out)
        rec = lh.wait_for(lambda: (self.to_rcpt("erin@example.net", null_sender=True) or [None])[0],
                          MAX_AGE + 60, "the expiry DSN to the sender")
        text = self.sink.message(rec["file"]).decode()
        self.assertIn("Action: failed", text)
        self.assertIn("Status: 4.3.0", text)
        self.assertIn("Final-Recipient: rfc822; %s" % DEFER, text)
        for m in MEMBERS:
            self.assertNotIn(m, text)
        lh.wait_for(lambda: re.search(r"post expired.*%s" % re.escape(post_id), self.l.log_text()), 30,
                    "the log line of the expiry")
        time.sleep(3)
        self.assertEqual(len(self.to_rcpt("erin@example.net", null_sender=True)), 1, "one DSN")
        for line in self.l.log_text().splitlines():
            if '"id":"%s"' % post_id in line:  # not its DSN's own queue file, "<id>.dsn"
                self.assertNotIn("delivered to every member", line)
        self.assertEqual(set(self.scores(DEFER).values()), {(0, 1)}, "a deferral of the message scores nobody")

    def expire_records(self, path, code, enhanced_subject, enhanced_detail, message_phase):
        """Marks every record of an active file expired, as listd writes it (docs/queue-format.md)."""
        data = bytearray(harness.read(path))
        m = re.search(rb"\nrecipients (\d+) (\d+)\npad *\n", bytes(data))
        self.assertIsNotNone(m)
        count, width, start = int(m.group(1)), int(m.group(2)), m.end()
        self.assertEqual(start % 512, 0)
        value = 900000000000000000 + (1000000000 if message_phase else 0) + code * 1000000 + \
            enhanced_subject * 1000 + enhanced_detail
        for i in range(count):
            at = start + i * width
            state = b"X %010d %019d" % (1, value)
            check = b"%08x" % zlib.crc32(state + b" " + str(i).encode())
            data[at:at + 41] = state + b" " + check
        harness.write(path, bytes(data))

    def test_e2_expiry_report_routing_survives_a_restart(self):
        sender = "frank@example.net"
        rc, out = self.post(DEFER, "DEFERME-restart", sender=sender)
        self.assertEqual(rc, 0, out)
        post_id = self.queued_id(out)
        lh.wait_for(lambda: re.search(r"delivery deferred.*%s" % re.escape(post_id), self.l.log_text()), 30,
                    "the first deferral")
        self.l.stop()
        # Its copies expired on a reply to the message itself, then listd stopped before the report.
        active = os.path.join(self.l.spool, "active", post_id)
        self.expire_records(active, 451, 3, 0, message_phase=True)
        self.l.start()
        rec = lh.wait_for(lambda: (self.to_rcpt(sender, null_sender=True) or [None])[0], 60,
                          "the expiry DSN to the sender after the restart")
        text = self.sink.message(rec["file"]).decode()
        self.assertIn("Action: failed", text)
        self.assertIn("Status: 4.3.0", text)
        self.assertIn("Final-Recipient: rfc822; %s" % DEFER, text)
        lh.wait_for(lambda: not os.path.exists(active), 30, "the post's queue file removed")
        self.assertRegex(self.l.log_text(), r"expired post queued.*%s\.dsn" % re.escape(post_id))
        time.sleep(2)
        self.assertEqual(self.to_rcpt("defer-owner@example.org"), [], "the DSN went to the owner")
        self.assertEqual(len(self.to_rcpt(sender, null_sender=True)), 1, "one DSN")
        self.assertFalse(os.path.exists(active + ".dsn"))

    def test_e3_expiry_report_is_queued_before_the_post_goes(self):
        # A post whose copies expired on RCPT replies only: its report goes to the owner, through
        # a queue file of its own; with the smarthost away the report waits in the spool (the post
        # is gone), and a restart keeps it.
        rc, out = self.post(DEFER, "DEFERME-durable", sender="grace@example.net")
        self.assertEqual(rc, 0, out)
        post_id = self.queued_id(out)
        lh.wait_for(lambda: re.search(r"delivery deferred.*%s" % re.escape(post_id), self.l.log_text()), 30,
                    "the first deferral")
        self.l.stop()
        active = os.path.join(self.l.spool, "active", post_id)
        self.expire_records(active, 452, 2, 2, message_phase=False)
        self.sink.stop()
        try:
            self.l.start()
            dsn = active + ".dsn"
            lh.wait_for(lambda: os.path.exists(dsn) and not os.path.exists(active), 30,
                        "the report queued, then the post removed")
            self.l.stop()
            self.assertTrue(os.path.exists(dsn))
        finally:
            self.sink.start()
        self.l.start()
        rec = lh.wait_for(lambda: (self.to_rcpt("defer-owner@example.org", null_sender=True) or [None])[0], 60,
                          "the owner's report after the restart")
        text = self.sink.message(rec["file"]).decode()
        self.assertIn("Status: 4.2.2", text)
        self.assertEqual(self.to_rcpt("grace@example.net", null_sender=True), [], "the sender told of members")
        lh.wait_for(lambda: not os.path.exists(dsn), 30, "the report's queue file removed")

    def test_f_upper_case_addresses(self):
        rc, out = self.post(TEAM, "upper-post", sender="dave@example.net")
        self.assertEqual(rc, 0, out)
        recs = {r["rcpt"]: r for r in self.delivered("upper-post", MEMBERS)}
        alice = recs["alice@example.org"]["mail_from"]
        self.assertTrue(alice.startswith("team-bounces+m."), alice)
        report = ("From: MAILER-DAEMON@mx.example.net\r\nTo: x\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
                  "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\n"
                  "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
                  "Final-Recipient: rfc822; alice@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
                  "--b--\r\n").encode()
        base = self.l.log_text().count("bounce report scored")
        # A made-up MAC in upper case scores nothing; alice's own tag in upper case scores her.
        forged = re.sub(r"(\+m\.[^.]+\.)[a-z2-7]{16}", lambda m: m.group(1) + "a" * 16, alice).upper()
        for to in (forged, alice.upper()):
            rc, out = lh.swaks(self.l.smtp_port, to, report, sender="")
            self.assertEqual(rc, 0, out)
            self.assertIn("250 2.0.0 delivery report received", out)
        try:
            lh.wait_for(lambda: self.l.log_text().count("bounce report scored") >= base + 1, 30, "alice scored")
        except AssertionError:
            print("\n".join(line for line in self.l.log_text().splitlines() if "bounce" in line))
            raise
        time.sleep(1)
        self.assertEqual(self.l.log_text().count("bounce report scored"), base + 1)
        scores = self.scores(TEAM)
        self.assertEqual(scores["alice@example.org"], (1, 1), scores)
        self.assertEqual(scores["bob@example.org"], (0, 1), scores)
        # An upper-cased list address takes posts like the list's own.
        rc, out = self.post(TEAM, "upper-list", sender="dave@example.net", to="TEAM@example.org")
        self.assertEqual(rc, 0, out)
        self.delivered("upper-list", MEMBERS)

    def test_g_list_set_and_show(self):
        self.l.lists("set", TEAM, "--bounce-stale-after", "3", "--bounce-threshold", "4", "--owner", BOSS)
        self.sql("UPDATE list_members SET bounce_score = 2, last_bounce_at = 1700000000, probe_state = 2, "
                 "probe_at = 1700000100 WHERE address = 'carol@example.org' AND list_id = "
                 "(SELECT id FROM lists WHERE address = '%s')" % TEAM)
        text = self.l.lists("show", TEAM).stdout.decode()
        self.assertIn("disable after 4", text)
        self.assertIn("forgotten after 3 days", text)
        self.assertIn("owner:        " + BOSS, text)
        self.assertRegex(text, r"carol@example\.org  score 2/4, last bounce 2023-11-14T22:13:20Z, probing since")
        j = __import__("json").loads(self.l.lists("show", TEAM, "--json").stdout)
        self.assertEqual(j["owner"], BOSS)
        self.assertEqual(j["bounce_stale_after_days"], 3)
        self.assertEqual(j["bounce_threshold"], 4)
        carol = [b for b in j["bouncing"] if b["address"] == "carol@example.org"]
        self.assertEqual(carol[0]["state"], "probing")
        self.assertEqual(carol[0]["bounce_score"], 2)
        # Clearing the owner: LIST-owner@ is refused again.
        self.l.lists("set", TEAM, "--owner", "")
        self.assertIn("none set", self.l.lists("show", TEAM).stdout.decode())
        # A certificate that is not for the list address: refused without --force.
        p = self.l.lists("create", "stranger@example.org", "--group", TEAM, "--certificate", self.cert, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"is not for stranger@example.org", p.stderr)


if __name__ == "__main__":
    harness.main()
