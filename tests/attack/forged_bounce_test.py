#!/usr/bin/env python3
"""Attack: silencing list members with forged bounce reports; bounces that mean what they say
(issue 12, part 2).

Usage: forged_bounce_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Two real blindlist-listd deliver to real SMTP sinks (aiosmtpd): one plain (listd sends one
transaction per member, each from its own VERP address), one offering Postfix's XVERP (one
transaction per batch; the sink expands the senders as Postfix does). The sinks refuse some
RCPTs (550) and, for marked posts, the message after its body (554). Checked:
  - forged reports score nothing: to the bare bounce address, with a made-up tag, with a real
    member's tag turned to another member, and a real tag whose report carries 20 "Action:
    failed" lines for other members (it scores one bounce, for the tag's member only);
  - a RCPT 5xx scores one bounce a day, and a score older than bounce_info_stale_after restarts;
  - a 554 after the body changes no score, and the post's sender gets one DSN naming the list;
  - XVERP batches and per-member transactions both reach every member, and a report to either
    kind of address scores its own member;
  - at the threshold a probe goes out first; only its bounce disables, and the owner is told.
"""

import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

TEAM = "team@example.org"        # plain sink: one transaction per member
REFUSE = "refuse@example.org"    # its posts get a 554 after the body
PROBE = "probe@example.org"      # threshold 1: probes
XV = "xv@example.org"            # XVERP sink
MEMBERS = ["alice@example.org", "bob@example.org", "carol@example.org"]


def dsn(final_recipients, to):
    groups = "".join("Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                     "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n" % r for r in final_recipients)
    return ("From: MAILER-DAEMON@mx.example.net\r\nTo: %s\r\nSubject: Undelivered Mail\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
            "boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\n"
            "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
            "%s--b--\r\n" % (to, groups)).encode()


class ForgedBounceTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("forged-bounce", with_certd=False).start()
        cls.work = harness.tempdir("forged-bounce-work")
        d.create_group(TEAM, "p256")
        cls.cert = os.path.join(cls.work, "team.crt")
        d.public_certificate(TEAM, cls.cert)
        cls.sink = lh.Sink(os.path.join(cls.work, "sink"),
                           rejects={"gone@example.org": "550"},
                           data_reply="554", data_reply_match="REFUSE-ME").start()
        cls.xsink = lh.Sink(os.path.join(cls.work, "xsink"), xverp=True).start()
        cls.drops = []
        cls.l = cls.make_listd("plain", cls.sink)
        cls.x = cls.make_listd("xverp", cls.xsink)
        for lst, extra, members in ((TEAM, [], MEMBERS + ["gone@example.org"]),
                                    (REFUSE, [], MEMBERS),
                                    (PROBE, ["--bounce-threshold", "1"], ["gone@example.org", "late@example.org"])):
            cls.l.lists("create", lst, "--group", TEAM, "--certificate", cls.cert, "--posting", "open", *extra)
            cls.l.lists("member", "add", lst, *members)
        cls.x.lists("create", XV, "--group", TEAM, "--certificate", cls.cert, "--posting", "open")
        cls.x.lists("member", "add", XV, *MEMBERS)
        time.sleep(1.1)  # members are added strictly before any post
        cls.l.start()
        cls.x.start()

    @classmethod
    def make_listd(cls, name, sink):
        store_url = None
        if harness.store_kind() == "postgres":
            store_url, drop = harness._postgres_database("forged_bounce_" + name)
            cls.drops.append(drop)
        return lh.Listd(cls.d, name, store_url=store_url, lmtp=False,
                        delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % sink.port, "starttls": "never"})

    @classmethod
    def tearDownClass(cls):
        for l in (cls.l, cls.x):
            if l.daemon:
                l.stop()
        cls.sink.stop()
        cls.xsink.stop()
        for drop in cls.drops:
            drop()

    # -- helpers
    def sql(self, listd, statement):
        if listd.store_url.startswith("sqlite:"):
            db = sqlite3.connect(listd.store_url[len("sqlite:"):], timeout=30)
            try:
                rows = db.execute(statement).fetchall()
                db.commit()
                return rows
            finally:
                db.close()
        out = harness.run(["psql", listd.store_url, "-v", "ON_ERROR_STOP=1", "-At", "-F", "|", "-c", statement])
        return [tuple(line.split("|")) for line in out.stdout.decode().splitlines() if line]

    def scores(self, listd, lst):
        rows = self.sql(listd, "SELECT m.address, m.bounce_score, m.enabled FROM list_members m "
                               "JOIN lists l ON l.id = m.list_id WHERE l.address = '%s'" % lst)
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def send(self, listd, lst, marker, sender="alice@example.org"):
        msg = lh.make_post(self.work, self.cert, marker, "x", to=lst, sender=sender)
        rc, out = lh.swaks(listd.smtp_port, lst, msg, sender=sender)
        self.assertEqual(rc, 0, out)

    def records(self, sink, marker, want):
        def got():
            recs = [r for r in sink.deliveries() if marker.encode() in sink.message(r["file"])]
            return recs if {r["rcpt"] for r in recs} >= set(want) else None
        return lh.wait_for(got, 60, "%s delivered to %s" % (marker, want))

    def report(self, listd, to, final_recipients):
        rc, out = lh.swaks(listd.smtp_port, to, dsn(final_recipients, to), sender="")
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0 delivery report received", out)

    def settle(self, listd, count):
        lh.wait_for(lambda: listd.log_text().count("bounce report") >= count, 30, "%d reports logged" % count)

    # -- tests
    def test_a_forged_reports_score_nothing(self):
        self.send(self.l, TEAM, "forge-post")
        recs = {r["rcpt"]: r for r in self.records(self.sink, "forge-post", MEMBERS)}
        alice = recs["alice@example.org"]["mail_from"]
        self.assertTrue(alice.startswith("team-bounces+m."), alice)
        self.assertTrue(alice.endswith("+alice=example.org@example.org"), alice)
        base = self.l.log_text().count("bounce report")
        # No tag, a made-up tag, alice's tag turned to bob.
        self.report(self.l, "team-bounces@example.org", ["bob@example.org"])
        post_id = alice.split("+")[1].split(".")[1]
        self.report(self.l, "team-bounces+m.%s.aaaaaaaaaaaaaaaa+bob=example.org@example.org" % post_id,
                    ["bob@example.org"])
        self.report(self.l, alice.replace("+alice=example.org@", "+bob=example.org@"), ["bob@example.org"])
        self.report(self.l, "team-bounces+garbage@example.org", ["bob@example.org"])
        self.settle(self.l, base + 4)
        scores = self.scores(self.l, TEAM)
        self.assertEqual({scores[m] for m in MEMBERS}, {(0, 1)}, scores)
        # alice's real tag, with 20 failed lines for others: one bounce, for alice only.
        self.report(self.l, alice, ["bob@example.org", "carol@example.org"] * 10)
        self.settle(self.l, base + 5)
        scores = self.scores(self.l, TEAM)
        self.assertEqual(scores["alice@example.org"], (1, 1), scores)
        self.assertEqual(scores["bob@example.org"], (0, 1), scores)
        self.assertEqual(scores["carol@example.org"], (0, 1), scores)
        # The same report again the same day: still one.
        self.report(self.l, alice, ["alice@example.org"])
        self.settle(self.l, base + 6)
        self.assertEqual(self.scores(self.l, TEAM)["alice@example.org"], (1, 1))

    def test_b_rcpt_5xx_scores_once_a_day_and_decays(self):
        key = '"member":"gone@example.org","counted"'
        base = self.l.log_text().count(key)
        for i in range(2):
            self.send(self.l, TEAM, "rcpt-post-%d" % i)
            self.records(self.sink, "rcpt-post-%d" % i, MEMBERS)
        lh.wait_for(lambda: self.l.log_text().count(key) >= base + 2, 30,
                    "two RCPT refusals of gone@")
        self.assertEqual(self.scores(self.l, TEAM)["gone@example.org"], (1, 1))
        # Eight days later (bounce_info_stale_after is 7), the old score is forgotten.
        self.sql(self.l, "UPDATE list_members SET bounce_score = 3, last_bounce_at = last_bounce_at - 8 * 86400 "
                         "WHERE address = 'gone@example.org'")
        self.send(self.l, TEAM, "rcpt-post-late")
        self.records(self.sink, "rcpt-post-late", MEMBERS)
        lh.wait_for(lambda: self.l.log_text().count(key) >= base + 3, 30,
                    "a third RCPT refusal of gone@")
        self.assertEqual(self.scores(self.l, TEAM)["gone@example.org"], (1, 1))

    def test_c_data_5xx_scores_nothing_and_the_sender_gets_a_dsn(self):
        self.send(self.l, REFUSE, "REFUSE-ME-post", sender="dave@example.net")
        def dsn_in():
            for r in self.sink.deliveries():
                if r["rcpt"] == "dave@example.net" and r["mail_from"] in ("", "<>"):
                    return r
            return None
        try:
            rec = lh.wait_for(dsn_in, 60, "the DSN to the sender")
        except AssertionError:
            print("\n".join(l for l in self.l.log_text().splitlines() if "refuse" in l or "dave" in l))
            raise
        text = self.sink.message(rec["file"]).decode()
        self.assertIn("report-type=delivery-status", text)
        self.assertIn("Final-Recipient: rfc822; refuse@example.org", text)
        self.assertIn("Status: 5.6.0", text)
        for m in MEMBERS:
            self.assertNotIn(m.split("@")[0] + "@", text.split("text/rfc822-headers")[0])
        time.sleep(2)
        self.assertEqual([r for r in self.sink.deliveries() if r["rcpt"] == "dave@example.net"], [rec])
        self.assertEqual(set(self.scores(self.l, REFUSE).values()), {(0, 1)})
        refused = [json.loads(line) for line in harness.read(os.path.join(self.sink.dir, "refused.jsonl"), "r")
                   .splitlines() if line]
        self.assertGreaterEqual(len(refused), len(MEMBERS))

    def test_d_xverp_batches_and_reports(self):
        self.send(self.x, XV, "xverp-post")
        recs = self.records(self.xsink, "xverp-post", MEMBERS)
        self.assertEqual(len({r["file"] for r in recs}), 1, "one transaction for the batch")
        senders = {r["rcpt"]: r["mail_from"] for r in recs}
        for m, s in senders.items():
            local, domain = m.split("@")
            self.assertTrue(s.startswith("xv-bounces+x."), s)
            self.assertTrue(s.endswith("+%s=%s@example.org" % (local, domain)), s)
        base = self.x.log_text().count("bounce report")
        # Not a member of the list: nothing. Bare address: nothing.
        self.report(self.x, senders["bob@example.org"].replace("+bob=example.org@", "+mallory=example.org@"),
                    ["mallory@example.org"])
        self.report(self.x, "xv-bounces@example.org", ["bob@example.org"])
        self.report(self.x, senders["bob@example.org"], ["carol@example.org"] * 20)
        self.settle(self.x, base + 3)
        scores = self.scores(self.x, XV)
        self.assertEqual(scores["bob@example.org"], (1, 1), scores)
        self.assertEqual(scores["carol@example.org"], (0, 1), scores)
        self.assertEqual(scores["alice@example.org"], (0, 1), scores)

    def test_e_probe_then_disable_and_the_owner_is_told(self):
        self.send(self.l, PROBE, "probe-post")
        recs = {r["rcpt"]: r for r in self.records(self.sink, "probe-post", ["late@example.org"])}
        # gone@ was refused at RCPT: threshold 1 wants a probe, which is refused too: disabled.
        # late@ was delivered; a report through its tag wants a probe; the probe's own bounce disables.
        self.report(self.l, recs["late@example.org"]["mail_from"], ["late@example.org"])
        def probe_of_late():
            for r in self.sink.deliveries():
                if r["rcpt"] == "late@example.org" and r["mail_from"].startswith("probe-bounces+p."):
                    return r
            return None
        probe = lh.wait_for(probe_of_late, 60, "the probe to late@")
        self.assertIn(b"Delivery test from probe@example.org", self.sink.message(probe["file"]))
        self.assertEqual(self.scores(self.l, PROBE)["late@example.org"][1], 1, "enabled until the probe bounces")
        self.report(self.l, probe["mail_from"], ["late@example.org"])
        lh.wait_for(lambda: self.scores(self.l, PROBE)["late@example.org"][1] == 0, 30, "late@ disabled")
        lh.wait_for(lambda: self.scores(self.l, PROBE)["gone@example.org"][1] == 0, 60, "gone@ disabled")
        def notices():
            got = {}
            for r in self.sink.deliveries():
                if r["rcpt"] == "probe-owner@example.org":
                    text = self.sink.message(r["file"]).decode()
                    for m in ("late@example.org", "gone@example.org"):
                        if "Delivery to " + m in text:
                            got[m] = text
            return got if len(got) == 2 else None
        told = lh.wait_for(notices, 60, "the owner told of both")
        self.assertIn("stays on the list, disabled", told["late@example.org"])
        # Disabled, not deleted: still listed, as disabled.
        self.assertIn("2 disabled", self.l.lists("show", PROBE).stdout.decode())


if __name__ == "__main__":
    harness.main()
