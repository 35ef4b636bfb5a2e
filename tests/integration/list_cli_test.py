"""`blindlist list ...`: the exploder's list database from the command line.

Runs the built `blindlist` (first argument) against a fresh SQLite file per
test, or with BLINDLIST_TEST_STORE=postgres against a fresh database on the
fixture's PostgreSQL server. Certificates are made with the openssl CLI.
"""

import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import openssl, read, run, write  # noqa: E402


def make_cert(directory, name, email, days=30):
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", str(days), "-subj", "/CN=" + name,
            "-addext", "subjectAltName=email:" + email)
    return crt


def fingerprint(crt):
    out = openssl("x509", "-in", crt, "-noout", "-fingerprint", "-sha256").stdout.decode()
    return out.strip().split("=", 1)[1].replace(":", "").lower()


class ListCliTest(unittest.TestCase):
    def setUp(self):
        self.dir = harness.tempdir("list-cli")
        self.drop = lambda: None
        if harness.store_kind() == "postgres":
            self.store, self.drop = harness._postgres_database(self.id().rsplit(".", 1)[-1][:30])
            self.sqlite_path = None
        else:
            self.sqlite_path = os.path.join(self.dir, "lists.db")
            self.store = "sqlite:" + self.sqlite_path
        self.cert = make_cert(self.dir, "team", "team@example.org")

    def tearDown(self):
        self.drop()

    def bl(self, *args, input=None, check=True):
        return run([harness.blindlist_bin(), "list", "--store", self.store] + list(args), input=input,
                   check=check)

    def fails(self, *args, input=None, store=True):
        """Runs a command that must fail with one line on stderr; returns that line."""
        cmd = [harness.blindlist_bin(), "list"] + (["--store", self.store] if store else []) + list(args)
        p = run(cmd, input=input, check=False)
        self.assertNotEqual(p.returncode, 0, "expected failure: %s" % " ".join(cmd))
        err = p.stderr.decode()
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "stderr is not one line: %r" % err)
        self.assertTrue(lines[0].startswith("blindlist: "), lines[0])
        return lines[0]

    def create(self, address="team@example.org", *extra):
        return self.bl("create", address, "--group", "team", "--certificate", self.cert, *extra)

    def show_json(self, address="team@example.org"):
        return json.loads(self.bl("show", address, "--json").stdout)

    def export(self, address="team@example.org", *extra):
        return self.bl("member", "export", address, *extra).stdout.decode().splitlines()

    # ---- lists ----

    def test_create_show_set_and_delete(self):
        p = self.create("team@Example.ORG", "--description", "The team", "--bounce-threshold", "3",
                        "--allow-plaintext")
        self.assertEqual(p.stderr, b"", "a certificate for the list address warns about nothing")
        self.assertIn(b"team@example.org", p.stdout)

        text = self.bl("show", "team@EXAMPLE.org").stdout.decode()
        self.assertIn("list:         team@example.org", text)
        self.assertIn("The team", text)
        self.assertIn("plaintext:    accepted", text)
        self.assertIn("team-bounces@example.org, disable after 3", text)
        self.assertIn(fingerprint(self.cert), text)
        self.assertIn("CN=team", text)
        self.assertIn("0 enabled, 0 disabled", text)

        j = self.show_json()
        self.assertEqual(j["address"], "team@example.org")
        self.assertEqual(j["reading"], "direct")
        self.assertEqual(j["posting"], "members")
        self.assertFalse(j["encrypted_only"])
        self.assertFalse(j["require_aead"], "AES-CBC is taken by default (Thunderbird sends it)")
        self.assertIn("ciphers:      AuthEnvelopedData (AES-GCM) and EnvelopedData (AES-CBC)", text)
        self.assertEqual(j["certificates"][0]["sha256"], fingerprint(self.cert))
        self.assertEqual(j["certificates"][0]["state"], "current")

        p = self.bl("set", "team@example.org", "--posting", "open", "--encrypted-only", "--reading", "path-b",
                    "--bounce-address", "returns@example.org")
        j = self.show_json()
        self.assertEqual(j["posting"], "open")
        self.assertEqual(j["reading"], "path-b")
        self.assertTrue(j["encrypted_only"])
        self.assertEqual(j["bounce_address"], "returns@example.org")
        self.assertEqual(j["description"], "The team", "set changes only what it is given")

        p = self.bl("set", "team@example.org", "--reading", "path-b-prime")
        self.assertIn(b"breaks the trust split", p.stderr)

        # require_aead: set, shown, undone; the two flags together are a usage error.
        self.bl("set", "team@example.org", "--require-aead")
        self.assertTrue(self.show_json()["require_aead"])
        self.assertIn("ciphers:      AuthEnvelopedData (AES-GCM) only; CBC refused",
                      self.bl("show", "team@example.org").stdout.decode())
        self.assertIn("contradict", self.fails("set", "team@example.org", "--require-aead", "--allow-cbc"))
        self.bl("set", "team@example.org", "--allow-cbc")
        self.assertFalse(self.show_json()["require_aead"])
        self.create("aead@example.org", "--require-aead", "--force")
        self.assertTrue(self.show_json("aead@example.org")["require_aead"])
        self.assertIn(b"EFAIL", self.bl("set", "--help").stdout)
        self.bl("delete", "aead@example.org")

        self.fails("create", "team@example.org", "--group", "team", "--certificate", self.cert)
        self.bl("delete", "team@example.org")
        line = self.fails("show", "team@example.org")
        self.assertIn("no list at team@example.org", line)
        self.assertIn("no list at", self.fails("delete", "team@example.org"))

    def test_certificates_are_checked_and_rotated(self):
        not_a_cert = write(os.path.join(self.dir, "notes.txt"), "hello\n")
        line = self.fails("create", "team@example.org", "--group", "team", "--certificate", not_a_cert)
        self.assertIn("notes.txt is not a usable X.509 certificate", line)
        self.assertIn("no list at", self.fails("show", "team@example.org"))

        # A certificate for another address is refused, and taken with --force (and a warning).
        other = make_cert(self.dir, "other", "other@example.org")
        line = self.fails("create", "team@example.org", "--group", "team", "--certificate", other)
        self.assertIn("is not for team@example.org", line)
        self.assertIn("--force", line)
        self.assertIn("no list at", self.fails("show", "team@example.org"))
        p = self.bl("create", "team@example.org", "--group", "team", "--certificate", other, "--force")
        self.assertIn(b"warning: ", p.stderr)
        self.assertIn(b"other@example.org", p.stderr)

        # DER works as well as PEM; the rotated certificate becomes current, the old one stays.
        der = os.path.join(self.dir, "team.der")
        openssl("x509", "-in", self.cert, "-outform", "DER", "-out", der)
        p = self.bl("certificate", "add", "team@example.org", der)
        self.assertEqual(p.stderr, b"")
        certs = self.show_json()["certificates"]
        self.assertEqual([c["sha256"] for c in certs], [fingerprint(self.cert), fingerprint(other)])
        self.assertEqual([c["state"] for c in certs], ["current", "retired"])
        self.assertIn("already", self.fails("certificate", "add", "team@example.org", self.cert))
        self.assertIn("not a usable X.509", self.fails("certificate", "add", "team@example.org", not_a_cert))

    def test_bad_input_fails_with_one_line(self):
        self.assertIn("--store", self.fails("show", "team@example.org", store=False))
        self.assertIn("store URL must start with",
                      self.fails("--store", "mysql://x/y", "show", "team@example.org", store=False))
        self.assertIn("not a list address", self.fails("create", "not an address", "--group", "g",
                                                        "--certificate", self.cert))
        self.fails("create", "team@example.org", "--group", "g", "--certificate", self.cert,
                   "--reading", "psychic")
        self.create()
        self.assertIn("not a mailbox", self.fails("member", "add", "team@example.org", "ok@example.net",
                                                  "bad address"))
        self.assertEqual(self.export(), [], "nothing is added when one address is bad")
        self.assertIn("loop", self.fails("member", "add", "team@example.org", "team-bounces@example.org"))
        self.assertIn("not on team@example.org", self.fails("member", "enable", "team@example.org",
                                                             "nobody@example.net"))
        self.assertIn("no list at", self.fails("member", "add", "nolist@example.org", "a@example.net"))
        self.fails("member", "import", "team@example.org", "--file", os.path.join(self.dir, "missing.txt"))
        self.fails("frobnicate")

    def test_config_file_names_the_store(self):
        config = write(os.path.join(self.dir, "listd.toml"), '[store]\nurl = "%s"\n' % self.store)
        run([harness.blindlist_bin(), "list", "--config", config, "create", "team@example.org", "--group", "t",
             "--certificate", self.cert])
        p = run([harness.blindlist_bin(), "list", "show", "team@example.org", "--config", config])
        self.assertIn(b"team@example.org", p.stdout)
        empty = write(os.path.join(self.dir, "empty.toml"), "[log]\nlevel = \"info\"\n")
        self.assertIn("has no [store] url",
                      self.fails("--config", empty, "show", "team@example.org", store=False))

    # ---- members ----

    def test_member_add_remove_enable_and_disabled_shown(self):
        self.create()
        p = self.bl("member", "add", "team@example.org", "b@Example.NET", "a@example.net")
        self.assertIn(b"added b@example.net", p.stdout)
        p = self.bl("member", "add", "team@example.org", "a@EXAMPLE.net", "c@example.net")
        self.assertIn(b"a@example.net is already on the list", p.stdout)
        self.assertEqual(self.export(), ["a@example.net", "b@example.net", "c@example.net"])

        line = self.fails("member", "remove", "team@example.org", "a@example.net", "zz@example.net")
        self.assertIn("zz@example.net", line)
        self.assertEqual(len(self.export()), 3, "a typo removes nobody")
        self.bl("member", "remove", "team@example.org", "a@example.net", "c@example.net")
        self.assertEqual(self.export(), ["b@example.net"])

        if self.sqlite_path:
            # Bounces are listd's business; stand in for it on the database.
            with sqlite3.connect(self.sqlite_path) as db:
                db.execute("UPDATE list_members SET enabled = 0, bounce_score = 5, "
                           "disabled_reason = 'bounces: 5.1.1 user unknown' WHERE address = 'b@example.net'")
            text = self.bl("show", "team@example.org").stdout.decode()
            self.assertIn("0 enabled, 1 disabled", text)
            self.assertIn("disabled  b@example.net  bounces: 5.1.1 user unknown", text)
            self.assertEqual(self.export(), [])
            self.assertEqual(self.export("team@example.org", "--all"),
                             ["b@example.net  # disabled: bounces: 5.1.1 user unknown"])
            self.bl("member", "enable", "team@example.org", "b@example.net")
            self.assertEqual(self.export(), ["b@example.net"])
            self.assertIn("1 enabled, 0 disabled", self.bl("show", "team@example.org").stdout.decode())

    def test_import_reports_bad_lines_and_export_round_trips(self):
        self.create()
        self.bl("member", "add", "team@example.org", "old@example.net")
        members = write(os.path.join(self.dir, "members.txt"),
                        "# the team\n"
                        "alice@example.net\n"
                        "\n"
                        "  Bob@Example.NET  \r\n"
                        "not an address\n"
                        "old@example.net\n"
                        "carol@example.net   # a comment after the address\n"
                        "alice@EXAMPLE.net\n"
                        "<dave@example.net>\n"
                        "team@example.org\n")
        p = self.bl("member", "import", "team@example.org", "--file", members, check=False)
        self.assertEqual(p.returncode, 1)
        err = p.stderr.decode().splitlines()
        self.assertIn(members + ":5: not a mailbox (local@domain)", err)
        self.assertIn(members + ":9: not a mailbox (local@domain)", err)
        self.assertTrue(any(l.startswith(members + ":10: ") and "own address" in l for l in err), err)
        self.assertTrue(err[-1].startswith("blindlist: ") and "3 bad line" in err[-1], err)
        self.assertIn(b"3 added, 2 skipped", p.stdout)
        self.assertIn(b"3 bad", p.stdout)
        exported = self.export()
        self.assertEqual(exported, ["Bob@example.net", "alice@example.net", "carol@example.net",
                                    "old@example.net"])

        # The export imports again as it is, into another list, and exports the same.
        self.create("other@example.org", "--force")
        dump = write(os.path.join(self.dir, "dump.txt"), "\n".join(exported) + "\n")
        p = self.bl("member", "import", "other@example.org", "--file", dump, "--json")
        self.assertEqual(json.loads(p.stdout), {"list": "other@example.org", "lines": 4, "added": 4,
                                                "skipped": 0, "bad": 0})
        self.assertEqual(self.export("other@example.org"), exported)

        # Standard input works as --file -.
        p = self.bl("member", "import", "other@example.org", "--file", "-", input="new@example.net\n")
        self.assertIn(b"1 added", p.stdout)

    def test_import_of_100000_addresses_takes_seconds(self):
        self.create()
        big = os.path.join(self.dir, "big.txt")
        with open(big, "w") as f:
            for i in range(100000):
                f.write("member%06d@example.net\n" % i)
        started = time.monotonic()
        p = self.bl("member", "import", "team@example.org", "--file", big, "--progress")
        elapsed = time.monotonic() - started
        self.assertIn(b"100000 added, 0 skipped", p.stdout)
        progress = [l for l in p.stderr.decode().splitlines() if "lines" in l]
        self.assertEqual(len(progress), 100, "progress every 1,000 lines")
        # Seconds, not minutes, even on a loaded test machine.
        self.assertLess(elapsed, 60, "importing 100,000 addresses took %.1f s" % elapsed)
        print("imported 100,000 addresses in %.1f s" % elapsed, file=sys.stderr)
        self.assertEqual(self.show_json()["members"], {"enabled": 100000, "disabled": 0})
        exported = self.export()
        self.assertEqual(len(exported), 100000)
        self.assertEqual(exported[0], "member000000@example.net")
        # Again: everything is skipped, nothing is added twice.
        p = self.bl("member", "import", "team@example.org", "--file", big)
        self.assertIn(b"0 added, 100000 skipped", p.stdout)


if __name__ == "__main__":
    harness.main()
