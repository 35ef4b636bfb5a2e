#!/usr/bin/env python3
"""Backup and restore of groupd on SQLite, following docs/operations.md ("Back up", "Restore").

Usage: backup_restore_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

The procedure: an online backup (`sqlite3 groupd.db ".backup ..."`), then a key rotation
and a member removal, then the old backup restored (groupd stopped, the file and its
-wal/-shm replaced). Shown, as the doc warns: the rotated key version is gone (a post
encrypted to it cannot be read any more), the removed member is back (it reads again),
and groupd serves the old certificate again. Then the documented post-restore steps
(remove the member again, rotate again, give listd the new certificate set) fix what can be
fixed: the member is refused, senders get a new certificate whose posts members read, and
listd no longer accepts posts to the lost key.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@example.org"


class BackupRestoreTest(harness.TestCase):
    def setUp(self):
        if harness.store_kind() != "sqlite":
            raise AssertionError("this test follows the SQLite procedure")
        self.d = harness.Deployment("backup-restore", with_certd=False).start()
        self.work = harness.tempdir("backup-restore-work")

    def post(self, cert, subject):
        return harness.write(os.path.join(self.work, subject + ".eml"),
                             lh.make_post(self.work, cert, subject, "the body of " + subject, to=LIST))

    def reads(self, token, path):
        p = self.d.open(LIST, "tls", path, token=token, check=False)
        return p.returncode == 0 and b"the body of" in p.stdout, p.stderr.decode(errors="replace")

    def certificate(self, name):
        path = os.path.join(self.work, name)
        self.d.public_certificate(LIST, path)
        return path

    def test_restore_loses_newer_keys_and_brings_back_removed_members(self):
        d = self.d
        db = d.store_url[len("sqlite:"):]
        d.create_group(LIST, "p256")
        alice = d.admin("member", "add", LIST, "alice@example.org", "--token")["token"]
        bob = d.admin("member", "add", LIST, "bob@example.org", "--token")["token"]
        v1 = self.certificate("v1.crt")
        listd = lh.Listd(d, "backup")
        listd.lists("create", LIST, "--group", LIST, "--certificate", v1, "--posting", "open")

        # The backup, online, as the doc says (groupd keeps running).
        backup = os.path.join(self.work, "groupd.db.backup")
        harness.run(["sqlite3", db, ".backup '%s'" % backup])
        shutil.copy(d.f("master.key"), os.path.join(self.work, "master.key.backup"))

        # After the backup: a rotation (listd told at once) and a removal.
        d.admin("group", "rotate", LIST)
        v2 = self.certificate("v2.crt")
        listd.lists("certificate", "add", LIST, v2)
        d.admin("member", "remove", LIST, "bob@example.org")
        p1, p2 = self.post(v1, "post-v1"), self.post(v2, "post-v2")
        self.assertTrue(self.reads(alice, p2)[0])
        self.assertFalse(self.reads(bob, p1)[0], "bob was removed")

        # The restore: groupd stopped, the database and its -wal/-shm replaced, started.
        self.assertEqual(d.groupd.stop(), 0)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        shutil.copy(backup, db)
        d.restart_groupd()

        # What the doc warns about.
        ok, err = self.reads(alice, p2)
        self.assertFalse(ok, "the key version made after the backup is gone")
        self.assertTrue(self.reads(alice, p1)[0])
        self.assertTrue(self.reads(bob, p1)[0], "the member removed after the backup is back")
        self.assertEqual(harness.cert_der(self.certificate("served.crt")), harness.cert_der(v1),
                         "groupd serves the old certificate again")

        # The documented steps after a restore.
        d.admin("member", "remove", LIST, "bob@example.org")            # 1. removals again
        d.admin("group", "rotate", LIST)                                # 2. rotations again
        v2b = self.certificate("v2-again.crt")
        listd.lists("set", LIST, "--certificate", v2b, "--certificate", v1)  # 3. listd's set

        self.assertFalse(self.reads(bob, p1)[0], "bob is refused again")
        self.assertNotEqual(harness.cert_der(v2b), harness.cert_der(v2), "a new key, not the lost one")
        p3 = self.post(v2b, "post-v2-again")
        self.assertTrue(self.reads(alice, p3)[0])
        self.assertTrue(self.reads(alice, p1)[0], "posts to keys in the backup stay readable")
        self.assertFalse(self.reads(alice, p2)[0], "posts to the lost key stay unreadable")
        # listd accepts posts to the new and old certificates, no longer to the lost one.
        listd.start()
        for path, expect in ((p3, "250 2.0.0"), (p1, "250 2.0.0"), (p2, "550 5.7.1")):
            rc, out = lh.swaks(listd.smtp_port, LIST, harness.read(path))
            self.assertIn(expect, out, path)
        listd.stop()


if __name__ == "__main__":
    harness.main()
