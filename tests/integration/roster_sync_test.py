#!/usr/bin/env python3
"""One roster: a list with roster = groupd copies its group's roster from groupd.

Usage: roster_sync_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A real groupd holds the roster; listd asks it as the list's registered exploder (mTLS), on its
schedule ([groupd] roster_sync_seconds) and on demand (`blindlist list sync`). Checked: the
report of added/removed/unchanged addresses, the delivery list after it, the log and metrics,
the groupd endpoint refusing anyone but the exploder (and auditing every call), manual lists
left alone, and a failed sync (groupd refusing) leaving the delivery list as it was. With
BLINDLIST_TEST_STORE=postgres, groupd and listd both use PostgreSQL.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

FOLLOW = "roster-team@example.org"    # roster = groupd, synced by listd's schedule
ONDEMAND = "sync-team@example.org"    # roster = groupd, synced by hand in the tests
MANUAL = "hand-team@example.org"      # roster = manual
OTHER = "other-team@example.org"      # a group whose exploder is someone else


class RosterSync(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("roster", with_certd=False).start()
        p = d.pki
        cls.work = harness.tempdir("roster-work")
        p.make_ca("member-ca", "Roster member CA")
        cls.exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        cls.stranger = (p.client("stranger", "member-ca", "another exploder"), p.key("stranger"))
        cls.certs = {}
        cls.tokens = {}
        for g in (FOLLOW, ONDEMAND, MANUAL, OTHER):
            d.create_group(g, "p256")
            cls.certs[g] = os.path.join(cls.work, "%s.crt" % g)
            d.public_certificate(g, cls.certs[g])
            for m in ("alice@example.org", "bob@example.org"):
                cls.tokens[(g, m)] = d.admin("member", "add", g, m, "--token")["token"]
            d.admin("exploder", "set", g, "--cert", (cls.stranger if g == OTHER else cls.exploder)[0])
        store_url = None
        if harness.store_kind() == "postgres":
            store_url, drop = harness._postgres_database("roster-lists")
            cls.addClassCleanup(drop)
        groupd = {"url": d.g.url(), "client_certificate": cls.exploder[0], "client_key": cls.exploder[1],
                  "ca": p.crt("tls-ca"), "roster_sync_seconds": 1}
        cls.l = lh.Listd(d, "roster", groupd=groupd, store_url=store_url, lmtp=False)
        for g in (FOLLOW, ONDEMAND, MANUAL, OTHER):
            roster = "manual" if g == MANUAL else "groupd"
            cls.l.lists("create", g, "--group", g, "--certificate", cls.certs[g], "--roster", roster)
        cls.l.lists("member", "add", MANUAL, "hand@example.org")
        cls.l.lists("member", "add", OTHER, "kept@example.org")
        # ONDEMAND is synced by hand: the scheduled sync must not race the test, so it stays
        # manual while listd runs and is switched to groupd only in its test.
        cls.l.lists("set", ONDEMAND, "--roster", "manual")
        cls.l.start()

    # -- helpers
    def members(self, lst):
        p = self.l.lists("member", "export", lst, "--all")
        return sorted(line.split()[0] for line in p.stdout.decode().splitlines() if line.strip())

    def sync(self, *args, check=True):
        return harness.run([harness.blindlist_bin(), "list", "--config", self.l.config, "--json", "sync", *args],
                           check=check)

    def metrics(self):
        status, body = self.l.http("/metrics")
        self.assertEqual(status, 200)
        return body.decode()

    # -- tests
    def test_a_schedule_follows_the_roster(self):
        lh.wait_for(lambda: self.members(FOLLOW) == ["alice@example.org", "bob@example.org"], 60,
                    "the first scheduled sync")
        self.d.admin("member", "add", FOLLOW, "carol@example.org")
        self.d.admin("member", "remove", FOLLOW, "bob@example.org")
        lh.wait_for(lambda: self.members(FOLLOW) == ["alice@example.org", "carol@example.org"], 60,
                    "the scheduled sync after a change on groupd")
        log = self.l.log_text()
        synced = [json.loads(line) for line in log.splitlines()
                  if '"roster synced"' in line and FOLLOW in line]
        self.assertTrue(any(r.get("added_addresses") == "carol@example.org" and
                            r.get("removed_addresses") == "bob@example.org" for r in synced), log[-3000:])
        text = self.metrics()
        self.assertIn('listd_roster_sync_total{result="ok"}', text)
        self.assertIn('listd_roster_changes_total{change="added"}', text)
        self.assertIn('listd_roster_changes_total{change="removed"}', text)
        # Every fetch is audited on groupd, as the exploder.
        self.assertAudited(self.d, FOLLOW, "roster", "ok", caller="exploder")

    def test_b_on_demand_reports_the_difference(self):
        self.assertEqual(self.members(ONDEMAND), [])
        refused = self.sync(ONDEMAND, check=False)
        self.assertCliRefused(refused, "roster = manual", "--roster groupd")
        self.l.lists("set", ONDEMAND, "--roster", "groupd")
        self.l.lists("member", "add", ONDEMAND, "stale@example.org")  # not on the roster
        # listd's own schedule (1 s in this test) may sync the list between our change and our
        # `list sync`: then the change shows in the schedule's run, not ours. The report is
        # checked as a subset of the change and the delivery list exactly.
        r = json.loads(self.sync(ONDEMAND).stdout)["synced"][0]
        self.assertEqual(r["list"], ONDEMAND)
        self.assertLessEqual(set(r["added"]), {"alice@example.org", "bob@example.org"})
        self.assertLessEqual(set(r["removed"]), {"stale@example.org"})
        self.assertEqual(self.members(ONDEMAND), ["alice@example.org", "bob@example.org"])
        # Adding a member is one command on groupd; the sync brings it over.
        self.d.admin("member", "add", ONDEMAND, "dave@example.org")
        r = json.loads(self.sync(ONDEMAND).stdout)["synced"][0]
        self.assertLessEqual(set(r["added"]), {"dave@example.org"})
        self.assertEqual(r["removed"], [])
        self.assertEqual(self.members(ONDEMAND), ["alice@example.org", "bob@example.org", "dave@example.org"])
        # The text report names each change.
        self.d.admin("member", "remove", ONDEMAND, "alice@example.org")
        out = harness.run([harness.blindlist_bin(), "list", "--config", self.l.config, "sync", ONDEMAND])
        text = out.stdout.decode()
        if "%s: 0 added, 1 removed, 2 unchanged" % ONDEMAND in text:
            self.assertIn("  - alice@example.org", text)
        else:  # the schedule was first
            self.assertIn("%s: 0 added, 0 removed, 2 unchanged" % ONDEMAND, text)
        self.assertEqual(self.members(ONDEMAND), ["bob@example.org", "dave@example.org"])
        # The list is shown as following groupd.
        shown = json.loads(self.l.lists("--json", "list").stdout)["lists"]
        self.assertIn({"address": ONDEMAND, "group": ONDEMAND, "reading": "direct", "roster": "groupd",
                       "members": {"enabled": 2, "disabled": 0}}, shown)

    def test_c_manual_lists_are_left_alone(self):
        lh.wait_for(lambda: self.members(FOLLOW) != [], 60, "a scheduled sync")
        self.assertEqual(self.members(MANUAL), ["hand@example.org"])

    def test_d_a_refused_sync_changes_nothing(self):
        # OTHER's registered exploder is another certificate: groupd refuses ours, and the
        # delivery list keeps what it had.
        p = self.sync(OTHER, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not-exploder", p.stdout.decode() + p.stderr.decode())
        self.assertEqual(self.members(OTHER), ["kept@example.org"])
        self.assertAudited(self.d, OTHER, "roster", "not-exploder")
        self.assertIn('listd_roster_sync_total{result="error"}', self.metrics())

    def test_e_only_the_exploder_reads_the_roster(self):
        path = "/v1/groups/%s/roster" % harness.quote(FOLLOW)
        self.assertRefused(self.d.g.get(path), 401, "unauthenticated")
        self.assertRefused(self.d.g.get(path, token=self.tokens[(FOLLOW, "alice@example.org")]), 401,
                           "unauthenticated")
        self.assertRefused(self.d.g.get(path, token=self.d.admin_token), 401, "unauthenticated")
        self.assertRefused(self.d.g.get(path, cert=self.stranger), 403, "not-exploder")
        r = self.d.g.get(path, cert=self.exploder)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"group", "members"})
        self.assertTrue(all(isinstance(a, str) for a in r.json["members"]))
        self.assertRefused(self.d.g.post(path, {}, cert=self.exploder), 405, "method-not-allowed")
        self.assertRefused(self.d.g.get("/v1/groups/%s/roster" % harness.quote("nobody@example.org"),
                                        cert=self.exploder), 404, "unknown-group")


if __name__ == "__main__":
    harness.main()
