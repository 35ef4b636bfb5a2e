#!/usr/bin/env python3
"""Reading list mail in a Maildir: `blindlist open --maildir DIR --reopen`, and the
Dovecot recipe of docs/operations.md ("Dovecot: the filter inside Sieve"), for real.

Usage: reading_filter_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

The Dovecot test takes the configuration snippet, the Sieve script and the filter
program from docs/operations.md itself (only paths, the groupd URL and the binary are
replaced), runs Dovecot's LMTP rootless in its own directory (as the invoking user, or as
`nobody` when that is root: Dovecot refuses to deliver as uid 0), and delivers with
LMTP. Checked:
  - reopen: with groupd stopped nothing changes (exit 75, every file byte for byte);
    with groupd back the list's posts still encrypted to the group (new/ and cur/) are
    replaced by posts a member reads with its own key alone, under new names with the
    original flags; other mail, other lists' posts and opened posts are untouched; a
    second run opens nothing;
  - Dovecot: a list post is spliced on delivery; plain mail and a user without blindlist
    files get mail unchanged; with groupd down Dovecot stores the original (the filter
    fails) and reopen then opens it in that Maildir.
"""

import glob
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@lists.test"
OTHER = "other@lists.test"
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "operations.md")


def list_post(work, cert, lst, subject):
    """A post as listd forwards it: openssl cms to the group certificate, List-Id on top."""
    post = lh.make_post(work, cert, subject, "the body of " + subject, to=lst)
    list_id = lst.replace("@", ".")
    return ("List-Id: <%s>\r\nList-Post: <mailto:%s>\r\n" % (list_id, lst)).encode() + post


def plain(subject):
    return ("From: x@example.net\r\nTo: alice@lists.test\r\nSubject: %s\r\n\r\nplain text\r\n" % subject).encode()


def doc_block(first_line):
    """The fenced block of docs/operations.md whose first line is `first_line`."""
    text = harness.read(DOC, "r")
    for m in re.finditer(r"```[a-z]*\n(.*?)```", text, re.S):
        body = m.group(1)
        if body.splitlines()[0].strip() == first_line or (
                len(body.splitlines()) > 1 and body.splitlines()[1].strip() == first_line):
            return body
    raise AssertionError("docs/operations.md has no block starting with %r" % first_line)


class ReadingFilterTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("reading-filter", with_certd=False).start()
        p = d.pki
        cls.work = harness.tempdir("reading-filter-work")
        p.make_ca("member-ca", "Integration member CA")
        cls.alice = (p.member("alice", "member-ca", "ec", "alice@example.org"), p.key("alice"))
        cls.certs = {}
        for g in (LIST, OTHER):
            d.create_group(g, "p256")
            cls.certs[g] = os.path.join(cls.work, g + ".crt")
            d.public_certificate(g, cls.certs[g])
        cls.token = d.admin("member", "add", LIST, "alice@example.org", "--cert", cls.alice[0],
                            "--token")["token"]

    def stop_groupd(self):
        self.assertEqual(self.d.groupd.stop(), 0)

    def reopen(self, maildir, as_user=None):
        args = [harness.blindlist_bin(), "open", "--maildir", maildir, "--reopen", "--server", self.d.g.url(),
                "--ca", self.ca_copy(), "--group", LIST, "--method", "rewrap", "--member-cert",
                self.alice_cert_copy()]
        env = dict(os.environ, BLINDLIST_TOKEN=self.token)
        if as_user is not None:
            args = ["setpriv", "--reuid=%d" % as_user.pw_uid, "--regid=%d" % as_user.pw_gid, "--clear-groups"] + args
        return subprocess.run(args, env=env, capture_output=True, timeout=300)

    def ca_copy(self):
        path = os.path.join(self.work, "tls-ca.crt")
        shutil.copy(self.d.pki.crt("tls-ca"), path)
        os.chmod(path, 0o644)
        return path

    def alice_cert_copy(self):
        path = os.path.join(self.work, "alice.crt")
        shutil.copy(self.alice[0], path)
        os.chmod(path, 0o644)
        return path

    def readable_by_alice_alone(self, path):
        """openssl cms -decrypt with alice's key: no groupd involved."""
        p = harness.run(["openssl", "cms", "-decrypt", "-in", path, "-recip", self.alice[0],
                         "-inkey", self.alice[1]], check=False)
        return p.returncode == 0 and b"the body of" in p.stdout

    def test_reopen_on_a_maildir(self):
        md = os.path.join(self.work, "Maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, sub))
        files = {
            "new/1000.A.host": list_post(self.work, self.certs[LIST], LIST, "reopen-new"),
            # As the filter passed it through: the reason in one header, which the reopened post drops.
            "cur/1001.B.host,S=9999:2,S": b"X-Blindlist-Filter: passed-through; reason=not-a-member\r\n"
            + list_post(self.work, self.certs[LIST], LIST, "reopen-cur"),
            "cur/1002.C.host:2,": plain("not a post"),
            "new/1003.D.host": list_post(self.work, self.certs[OTHER], OTHER, "other-list"),
        }
        for name, data in files.items():
            harness.write(os.path.join(md, name), data)
        # An opened post (spliced for alice) is not opened again.
        spliced = self.d.open(LIST, "rewrap", os.path.join(md, "new/1000.A.host"), cert=self.alice,
                              member=(self.alice[0], self.alice[1]), splice_only=True).stdout
        harness.write(os.path.join(md, "cur/1004.E.host:2,RS"), spliced)
        files["cur/1004.E.host:2,RS"] = spliced

        def snapshot():
            return {os.path.relpath(f, md): harness.read(f) for f in glob.glob(os.path.join(md, "*", "*"))}

        self.stop_groupd()
        try:
            p = self.reopen(md)
            self.assertEqual(p.returncode, 75, p.stderr)
            self.assertIn(b"0 opened, 2 still encrypted (kept), 3 other messages", p.stderr)
            self.assertEqual(snapshot(), files)
        finally:
            self.d.restart_groupd()

        p = self.reopen(md)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"2 opened, 0 still encrypted (kept), 3 other messages", p.stderr)
        after = snapshot()
        for kept in ("cur/1002.C.host:2,", "new/1003.D.host", "cur/1004.E.host:2,RS"):
            self.assertEqual(after.pop(kept), files[kept], kept)
        self.assertNotIn("new/1000.A.host", after)
        self.assertNotIn("cur/1001.B.host,S=9999:2,S", after)
        self.assertEqual(len(after), 2, sorted(after))
        new_names = sorted(after)
        self.assertTrue(any(n.startswith("new/") and ":" not in n for n in new_names), new_names)
        self.assertTrue(any(n.startswith("cur/") and n.endswith(":2,S") and "S=9999" not in n
                            for n in new_names), new_names)
        self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
        for n in new_names:
            self.assertTrue(self.readable_by_alice_alone(os.path.join(md, n)), n)
            self.assertIn(b"List-Id: <team.lists.test>", after[n])
            self.assertNotIn(b"X-Blindlist-Filter", after[n])
        p = self.reopen(md)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"0 opened, 0 still encrypted (kept), 5 other messages", p.stderr)

    # -- Dovecot
    def dovecot_setup(self):
        root = os.path.join(self.work, "dovecot")
        for sub in ("run", "state", "etc/sieve", "etc/sieve-filter", "homes/alice/.blindlist", "homes/carol"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        user = pwd.getpwuid(os.getuid()) if os.getuid() != 0 else pwd.getpwnam("nobody")
        group = "nogroup" if os.getuid() == 0 else None
        port = lh.free_port()
        # From the doc: the snippet, the Sieve script and the filter program, paths replaced.
        subst = [("/etc/dovecot/", root + "/etc/"), ("/usr/bin/blindlist", harness.blindlist_bin()),
                 ("https://groupd.example.org:8443", self.d.g.url()),
                 ("/etc/blindlist/tls-ca.crt", os.path.join(root, "etc", "tls-ca.crt")),
                 ("<team.lists.example.org>", "<team.lists.test>"), ("team@lists.example.org", LIST)]

        def from_doc(first_line):
            text = doc_block(first_line)
            for a, b in subst:
                text = text.replace(a, b)
            return text

        snippet = from_doc("# /etc/dovecot/conf.d/90-blindlist.conf")
        harness.write(os.path.join(root, "etc", "sieve", "blindlist.sieve"),
                      from_doc("# /etc/dovecot/sieve/blindlist.sieve"))
        program = os.path.join(root, "etc", "sieve-filter", "blindlist-open")
        harness.write(program, from_doc("# /etc/dovecot/sieve-filter/blindlist-open LIST"))
        os.chmod(program, 0o755)
        shutil.copy(self.d.pki.crt("tls-ca"), os.path.join(root, "etc", "tls-ca.crt"))
        home = os.path.join(root, "homes", "alice", ".blindlist")
        harness.write(os.path.join(home, "token"), self.token + "\n")
        os.chmod(os.path.join(home, "token"), 0o600)
        shutil.copy(self.alice[0], os.path.join(home, "me.crt"))
        conf = os.path.join(root, "dovecot.conf")
        internal = "default_internal_user = %s\ndefault_login_user = %s\n" % (user.pw_name, user.pw_name)
        if group:
            internal += "default_internal_group = %s\n" % group
        harness.write(conf, """base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = lmtp
ssl = no
mail_plugins =
mail_location = maildir:~/Maildir
{internal}passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/homes/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
lmtp_save_to_detail_mailbox = no
""".format(root=root, internal=internal, uid=user.pw_uid, gid=user.pw_gid, port=port) + snippet)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", "%d:%d" % (user.pw_uid, user.pw_gid), root], check=True)
            os.chmod(self.work, 0o755)
        drop = [] if os.getuid() != 0 else ["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid,
                                            "--clear-groups"]
        # The doc's sievec step.
        harness.run(drop + ["sievec", "-c", conf, os.path.join(root, "etc", "sieve", "blindlist.sieve")])
        self.addCleanup(self.stop_dovecot, drop, conf, os.path.join(root, "run", "master.pid"))
        # Dovecot daemonizes; its children keep standard output open, so nothing is captured.
        with open(os.path.join(self.work, "dovecot-start.log"), "ab") as log:
            subprocess.run(drop + ["/usr/sbin/dovecot", "-c", conf], stdin=subprocess.DEVNULL, stdout=log,
                           stderr=log, check=True, timeout=60)
        lh.wait_for(lambda: os.path.exists(os.path.join(root, "dovecot.log")) and
                    b"starting up" in harness.read(os.path.join(root, "dovecot.log")), 60, "dovecot")
        return root, port, user

    @staticmethod
    def stop_dovecot(drop, conf, pid_file):
        subprocess.run(drop + ["/usr/sbin/dovecot", "-c", conf, "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        lh.wait_for(lambda: not os.path.exists(pid_file), 60, "Dovecot to stop")

    def lmtp(self, port, rcpt, message):
        s = smtplib.LMTP("127.0.0.1", port)
        try:
            return s.sendmail("sender@example.net", [rcpt], message)
        finally:
            s.quit()

    def test_dovecot_lmtp_sieve_recipe(self):
        root, port, user = self.dovecot_setup()
        alice_md = os.path.join(root, "homes", "alice", "Maildir")
        carol_md = os.path.join(root, "homes", "carol", "Maildir")

        def messages(md):
            return {os.path.basename(f): harness.read(f) for f in glob.glob(os.path.join(md, "new", "*"))}

        post = list_post(self.work, self.certs[LIST], LIST, "dovecot-1")
        lh.wait_for(lambda: self.try_lmtp(port, "alice", post), 60, "Dovecot's LMTP")
        self.lmtp(port, "alice", plain("dovecot-plain"))
        self.lmtp(port, "carol", post)
        got = messages(alice_md)
        self.assertEqual(len(got), 2, sorted(got))
        spliced = [n for n, m in got.items() if b"pkcs7-mime" in m]
        self.assertEqual(len(spliced), 1)
        self.assertTrue(self.readable_by_alice_alone(os.path.join(alice_md, "new", spliced[0])),
                        harness.read(os.path.join(root, "dovecot.log")).decode(errors="replace")[-3000:])
        self.assertTrue(any(b"plain text" in m for m in got.values()))
        (carols,) = messages(carol_md).values()
        # Dovecot adds its trace fields on top and stores LF line endings.
        self.assertTrue(carols.replace(b"\r\n", b"\n").endswith(post.replace(b"\r\n", b"\n")),
                        "a user without blindlist files gets the post unchanged")

        # groupd down: Dovecot stores the original; reopen opens it later.
        self.stop_groupd()
        try:
            self.lmtp(port, "alice", list_post(self.work, self.certs[LIST], LIST, "dovecot-2"))
        finally:
            self.d.restart_groupd()
        stored = [f for f in glob.glob(os.path.join(alice_md, "new", "*")) if b"dovecot-2" in harness.read(f)
                  and not self.readable_by_alice_alone(f) and b"pkcs7-mime" in harness.read(f)]
        self.assertEqual(len(stored), 1, "the post stored while groupd was down")
        # The filter passed it through (exit 0) or failed (75): either way Dovecot stored the original,
        # and its log says why.
        log = harness.read(os.path.join(root, "dovecot.log"))
        self.assertTrue(b"Terminated with non-zero exit code" in log or b"delivering the message unchanged" in log,
                        log[-2000:])
        p = self.reopen(alice_md, as_user=user if os.getuid() == 0 else None)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"1 opened, 0 still encrypted", p.stderr)
        self.assertFalse(os.path.exists(stored[0]))
        for f in glob.glob(os.path.join(alice_md, "new", "*")):
            m = harness.read(f)
            if b"pkcs7-mime" in m:
                self.assertTrue(self.readable_by_alice_alone(f), f)

    def try_lmtp(self, port, rcpt, message):
        try:
            self.lmtp(port, rcpt, message)
            return True
        except OSError:
            return False


if __name__ == "__main__":
    harness.main()
