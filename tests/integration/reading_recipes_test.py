#!/usr/bin/env python3
"""The member's reading recipes of docs/operations.md run by the real programs: procmail
(~/.procmailrc), maildrop (~/.mailfilter) and Dovecot's Sieve `filter` through dovecot-lda.

Usage: reading_recipes_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Each recipe is the block after its `<!-- recipe-test: NAME -->` marker in the doc, so the doc
and this test cannot drift apart. Replaced, and only these: the groupd URL (a loopback port),
/usr/bin/blindlist (the binary under test), /etc/dovecot/ and /etc/blindlist/ (a directory of
the test: nothing is written under /etc). The member is a P-256 list's member with an RSA-2048
certificate, so the RecipientInfo the filter splices in shows the key transport groupd used.

Runs as root: each program runs as a member account ("rmember", home in the test directory)
that exists only in a private mount namespace, where a copy of /etc/passwd is bound over the
real one; procmail and maildrop take HOME and SHELL from it, as they do on a real host.
Checked, for each recipe: a list post is delivered spliced and opens with `openssl cms
-decrypt` and the member's key alone (RSA PKCS#1 v1.5, as the recipes ask); plain mail is
delivered unchanged; with groupd stopped procmail and maildrop exit 75 and deliver nothing,
and Dovecot stores the post unopened, which the doc's `--reopen` command opens once groupd is
back; a Dovecot user without ~/.blindlist gets list mail unchanged.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@lists.example.org"  # the doc's list: its List-Id conditions stay as written
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "operations.md")
MARKER = re.compile(r"^[ \t]*<!-- recipe-test: (.+?) -->[ \t]*\n[ \t]*```[a-z]*\n(.*?)\n[ \t]*```", re.S | re.M)
UID = 64123  # the member account of the private /etc/passwd
USER = "rmember"
TOOLS = ("procmail", "maildrop", "sievec", "unshare", "setpriv", "mount")
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"


def doc_recipes():
    """{name: text} of the blocks marked `<!-- recipe-test: NAME -->`."""
    return {m.group(1).strip(): textwrap.dedent(m.group(2)) + "\n" for m in MARKER.finditer(harness.read(DOC, "r"))}


def lf(b):
    """A message as an MTA hands it to a local delivery agent: LF line endings."""
    return b.replace(b"\r\n", b"\n")


def plain(subject):
    return ("From: x@example.net\nTo: alice@example.org\nSubject: %s\n\nplain text\n" % subject).encode()


def files_in(md):
    return {os.path.relpath(f, md): harness.read(f) for f in glob.glob(os.path.join(md, "*", "*"))}


class ReadingRecipesTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            harness.peer_missing("the recipes run as a member account made in a mount namespace: needs root")
        for tool in TOOLS:
            if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
                harness.peer_missing("%s is not installed (scripts/setup installs it)" % tool)
        if not os.access(DOVECOT_LDA, os.X_OK):
            harness.peer_missing("%s is not installed (scripts/setup installs dovecot-core)" % DOVECOT_LDA)
        cls.recipes = doc_recipes()
        for name in ("procmail", "maildrop", "dovecot-conf", "dovecot-sieve", "dovecot-filter", "dovecot-reopen"):
            assert name in cls.recipes, "docs/operations.md has no <!-- recipe-test: %s --> block" % name
        d = cls.d = harness.Deployment("reading-recipes", with_certd=False).start()
        p = d.pki
        cls.work = harness.tempdir("reading-recipes-work")
        os.chmod(cls.work, 0o755)  # the member account walks into its home below
        p.make_ca("member-ca", "Integration member CA")
        cls.me = (p.member("alice", "member-ca", "rsa2048", "alice@example.org"), p.key("alice"))
        d.create_group(LIST, "p256")
        cls.group_cert = os.path.join(cls.work, "group.crt")
        d.public_certificate(LIST, cls.group_cert)
        cls.token = d.admin("member", "add", LIST, "alice@example.org", "--cert", cls.me[0], "--token")["token"]
        # The private account database: a copy of the host's with the member added.
        cls.passwd = os.path.join(cls.work, "passwd")
        cls.group = os.path.join(cls.work, "group")
        cls.home = os.path.join(cls.work, "home")
        harness.write(cls.passwd, harness.read("/etc/passwd") +
                      ("%s:x:%d:%d:list reader:%s:/bin/sh\n" % (USER, UID, UID, cls.home)).encode())
        harness.write(cls.group, harness.read("/etc/group") + ("%s:x:%d:\n" % (USER, UID)).encode())
        cls.make_home(cls.home, blindlist=True)
        # The system mailboxes the member's /var/mail/rmember would be in: nothing may go there.
        cls.spool = os.path.join(cls.work, "var-mail")
        os.makedirs(cls.spool)
        os.chmod(cls.spool, 0o1777)

    @classmethod
    def make_home(cls, home, blindlist):
        """A home as the doc's "how members read" leaves it: ~/.blindlist/ with the member's files."""
        for sub in ("Maildir/tmp", "Maildir/new", "Maildir/cur"):
            os.makedirs(os.path.join(home, sub), exist_ok=True)
        if blindlist:
            bl = os.path.join(home, ".blindlist")
            os.makedirs(bl, exist_ok=True)
            os.chmod(bl, 0o700)
            shutil.copy(cls.d.pki.crt("tls-ca"), os.path.join(bl, "tls-ca.crt"))
            shutil.copy(cls.me[0], os.path.join(bl, "me.crt"))
            harness.write(os.path.join(bl, "token"), cls.token + "\n")
            os.chmod(os.path.join(bl, "token"), 0o600)
        subprocess.run(["chown", "-R", "%d:%d" % (UID, UID), home], check=True)

    # -- helpers
    def as_member(self, argv, message, env=None):
        """Runs argv as the member account, the message on standard input."""
        script = ('mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && '
                  'mount --bind "$3" /var/mail && shift 3 && '
                  'exec setpriv --reuid %d --regid %d --clear-groups -- "$@"' % (UID, UID))
        base = {"PATH": "/usr/bin:/bin", "LANG": "C"}
        base.update(env or {})
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                               self.passwd, self.group, self.spool] + argv,
                              input=message, env=base, capture_output=True, cwd="/", timeout=300)

    def subst(self, text):
        """The doc's text with the test environment's URL and binary."""
        return (text.replace("https://groupd.example.org:8443", self.d.g.url())
                .replace("/usr/bin/blindlist", harness.blindlist_bin()))

    def post(self, subject):
        """A list post: `openssl cms -encrypt -aes-256-cbc` to the group, the List-Id listd adds."""
        post = lh.make_post(self.work, self.group_cert, subject, "the body of " + subject, to=LIST,
                            cipher="-aes-256-cbc")
        return lf(b"List-Id: <team.lists.example.org>\r\nList-Post: <mailto:%s>\r\n" % LIST.encode() + post)

    def assert_opens_with_my_key(self, path, subject):
        """openssl with the member's key alone, and the member's RecipientInfo in PKCS#1 v1.5."""
        p = harness.run(["openssl", "cms", "-decrypt", "-in", path, "-recip", self.me[0], "-inkey", self.me[1]],
                        check=False)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertIn(("the body of " + subject).encode(), p.stdout)
        printed = harness.run(["openssl", "cms", "-cmsout", "-print", "-in", path]).stdout
        # The group's RecipientInfo is P-256 (key agreement): rsaEncryption is the member's, PKCS#1 v1.5.
        self.assertIn(b"algorithm: rsaEncryption", printed)
        self.assertNotIn(b"rsaesOaep", printed)

    def assert_still_encrypted(self, path):
        p = harness.run(["openssl", "cms", "-decrypt", "-in", path, "-recip", self.me[0], "-inkey", self.me[1]],
                        check=False)
        self.assertNotEqual(p.returncode, 0, "the member's key opens a post that should be unopened")
        self.assertIn(b"application/pkcs7-mime", harness.read(path))

    def maildir(self, name):
        md = os.path.join(self.home, "Maildir")
        for f in glob.glob(os.path.join(md, "*", "*")):
            os.unlink(f)
        return md

    # -- procmail and maildrop
    def run_rcfile(self, name, rcfile, argv, default_line):
        """Installs the doc's recipe as the member's rcfile (after a line that delivers to ~/Maildir
        instead of /var/mail: the member's own choice, outside the doc's recipe) and runs one post,
        one plain message, then one post with groupd stopped."""
        md = self.maildir(name)
        path = os.path.join(self.home, rcfile)

        def install():
            harness.write(path, default_line + self.subst(self.recipes[name]))
            os.chmod(path, 0o600)
            os.chown(path, UID, UID)

        install()
        p = self.as_member(argv, self.post(name + "-1"))
        self.assertEqual(p.returncode, 0, p.stderr)
        (got,) = files_in(md)
        self.assertTrue(got.startswith("new/"), got)
        self.assert_opens_with_my_key(os.path.join(md, got), name + "-1")
        self.assertNotIn(b"X-Blindlist-Filter", harness.read(os.path.join(md, got)))
        message = plain(name + "-plain")
        p = self.as_member(argv, message)
        self.assertEqual(p.returncode, 0, p.stderr)
        delivered = [m for f, m in files_in(md).items() if f != got]
        self.assertEqual(len(delivered), 1)
        self.assertTrue(delivered[0].endswith(message), "plain mail is delivered unchanged")

        before = files_in(md)
        self.assertEqual(self.d.groupd.stop(), 0)
        try:
            p = self.as_member(argv, self.post(name + "-down"))
            self.assertEqual(p.returncode, 75, p.stderr)
            self.assertEqual(files_in(md), before, "nothing is delivered while groupd is down")
        finally:
            self.d.restart_groupd()
        install()  # groupd listens on a new port
        p = self.as_member(argv, self.post(name + "-2"))
        self.assertEqual(p.returncode, 0, p.stderr)
        (new,) = set(files_in(md)) - set(before)
        self.assert_opens_with_my_key(os.path.join(md, new), name + "-2")
        for f in os.listdir(self.spool):
            self.assertEqual(harness.read(os.path.join(self.spool, f)), b"", "mail in the system mailbox " + f)

    def test_procmail(self):
        # procmail, run as the member as ~/.forward's "|procmail" would, reads ~/.procmailrc.
        self.run_rcfile("procmail", ".procmailrc", ["procmail"], "DEFAULT=$HOME/Maildir/\n")

    def test_maildrop(self):
        # maildrop without a filter file reads ~/.mailfilter; a Maildir's DEFAULT ends in no slash.
        self.run_rcfile("maildrop", ".mailfilter", ["maildrop"], 'DEFAULT="$HOME/Maildir"\n')

    # -- Dovecot
    def dovecot_setup(self):
        root = os.path.join(self.work, "dovecot")
        for sub in ("run", "state", "etc/conf.d", "etc/sieve", "etc/sieve-filter", "homes"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        self.alice_home = os.path.join(root, "homes", "alice")
        self.carol_home = os.path.join(root, "homes", "carol")
        self.make_home(self.alice_home, blindlist=True)
        self.make_home(self.carol_home, blindlist=False)
        shutil.copy(self.d.pki.crt("tls-ca"), os.path.join(root, "etc", "tls-ca.crt"))

        def from_doc(name):
            return self.subst(self.recipes[name]).replace("/etc/dovecot/", root + "/etc/").replace(
                "/etc/blindlist/", root + "/etc/")

        harness.write(os.path.join(root, "etc", "conf.d", "90-blindlist.conf"), from_doc("dovecot-conf"))
        sieve = harness.write(os.path.join(root, "etc", "sieve", "blindlist.sieve"), from_doc("dovecot-sieve"))
        program = harness.write(os.path.join(root, "etc", "sieve-filter", "blindlist-open"),
                                from_doc("dovecot-filter"))
        os.chmod(program, 0o755)
        conf = os.path.join(root, "etc", "dovecot.conf")
        harness.write(conf, """base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols =
ssl = no
mail_location = maildir:~/Maildir
!include conf.d/90-blindlist.conf
""".format(root=root))
        harness.write(os.path.join(root, "dovecot.log"), b"")
        subprocess.run(["chown", "-R", "%d:%d" % (UID, UID), os.path.join(root, "dovecot.log"),
                        os.path.join(root, "run"), os.path.join(root, "state")], check=True)
        # The doc's sievec step, as root.
        harness.run(["sievec", "-c", conf, sieve])
        self.assertTrue(os.path.exists(sieve[:-len(".sieve")] + ".svbin"))
        return root, conf

    def lda(self, conf, user, message):
        # As local(8) or a blindlist-deliver script runs it: as the mail user, HOME set, no userdb.
        home = self.alice_home if user == "alice" else self.carol_home
        return self.as_member([DOVECOT_LDA, "-c", conf, "-f", "sender@example.net"], message,
                              env={"HOME": home, "USER": user})

    def test_dovecot_lda(self):
        root, conf = self.dovecot_setup()
        alice_md = os.path.join(self.alice_home, "Maildir")
        carol_md = os.path.join(self.carol_home, "Maildir")

        def log():
            return harness.read(os.path.join(root, "dovecot.log")).decode(errors="replace")[-3000:]

        post = self.post("dovecot-1")
        p = self.lda(conf, "alice", post)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace") + log())
        (got,) = files_in(alice_md)
        self.assert_opens_with_my_key(os.path.join(alice_md, got), "dovecot-1")
        message = plain("dovecot-plain")
        self.assertEqual(self.lda(conf, "alice", message).returncode, 0)
        self.assertTrue(any(m.endswith(message) for m in files_in(alice_md).values()), "plain mail unchanged")
        p = self.lda(conf, "carol", post)
        self.assertEqual(p.returncode, 0, p.stderr)
        (carols,) = files_in(carol_md).values()
        self.assertTrue(carols.endswith(post), "a user without ~/.blindlist gets list mail unchanged")

        # groupd down: Dovecot stores the post unopened; the doc's --reopen opens it once groupd is back.
        before = set(files_in(alice_md))
        self.assertEqual(self.d.groupd.stop(), 0)
        try:
            p = self.lda(conf, "alice", self.post("dovecot-down"))
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace") + log())
        finally:
            self.d.restart_groupd()
        (stored,) = set(files_in(alice_md)) - before
        self.assert_still_encrypted(os.path.join(alice_md, stored))
        self.assertIn("Terminated with non-zero exit code", log())
        reopen = self.subst(self.recipes["dovecot-reopen"]).replace("/etc/blindlist/", root + "/etc/")
        reopen = re.sub(r"^blindlist ", harness.blindlist_bin() + " ", reopen)
        p = self.as_member(["sh", "-c", reopen], b"", env={"HOME": self.alice_home})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"1 opened, 0 still encrypted", p.stderr)
        (opened,) = set(files_in(alice_md)) - before
        self.assertNotEqual(opened, stored)
        self.assert_opens_with_my_key(os.path.join(alice_md, opened), "dovecot-down")


if __name__ == "__main__":
    harness.main()
