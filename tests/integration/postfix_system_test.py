#!/usr/bin/env python3
"""The whole system with a real Postfix in front of and behind the exploder.

Usage: postfix_system_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A throwaway Postfix instance (its own configuration directory, queue, data
directory and log file in a temporary directory; never the machine's
/etc/postfix) listens on two loopback ports: one for senders, one as listd's
smarthost. The mail path is

  swaks --(SMTP)--> Postfix --(LMTP)--> blindlist-listd --(SMTP)--> Postfix
        --(virtual(8))--> Maildirs of alice, bob and carol @members.test

with groupd and certd from harness.Deployment behind it. Checked:
  - a post made by `openssl cms -encrypt` to the list certificate reaches each
    member's Maildir exactly once, with listd's List-* headers and the S/MIME
    body byte-identical to what the sender posted; Postfix's log shows both
    hops (LMTP to listd, virtual delivery);
  - each member reads it: alice by path F (`open --method tls`, token), bob by
    path E (`open --filter --method rewrap`, then `openssl cms -decrypt` with
    his own key), carol by path G (`cert request` from certd, then
    `open --method cert`);
  - listd's refusal travels back: a plaintext post is refused at LMTP with
    "550 5.7.1", and Postfix returns a DSN carrying that text to the sender's
    Maildir; no member gets the plaintext;
  - /etc/postfix is left untouched.

Needs root (Postfix's master runs as root), postfix, postmap and swaks.
"""

import glob
import os
import pwd
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@lists.test"
LIST_DESCRIPTION = "Postfix system test list"
MEMBERS = {"alice": "alice@members.test", "bob": "bob@members.test", "carol": "carol@members.test"}
SENDER = MEMBERS["alice"]
POSTFIX = "/usr/sbin/postfix"
POSTMAP = "/usr/sbin/postmap"
MACHINE_POSTFIX = "/etc/postfix"
WAIT = 180  # seconds; the machine is shared and loaded


def tree_snapshot(root):
    """(relative path, mode, size, mtime) of everything under root: to prove we did not touch it."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out.append((os.path.relpath(p, root), st.st_mode, st.st_size, st.st_mtime_ns))
    return sorted(out)


class Postfix:
    """One throwaway Postfix instance under `base`:
    base/etc (main.cf, master.cf, maps), base/queue, base/data, base/mail (Maildirs), base/maillog."""

    def __init__(self, base, *, in_port, relay_port, lmtp_port, list_domain, member_domain, users):
        self.base = base
        self.conf = os.path.join(base, "etc")
        self.queue = os.path.join(base, "queue")
        self.data = os.path.join(base, "data")
        self.mail = os.path.join(base, "mail")
        self.maillog = os.path.join(base, "maillog")
        self.in_port = in_port
        self.relay_port = relay_port
        self.lmtp_port = lmtp_port
        self.list_domain = list_domain
        self.member_domain = member_domain
        self.users = list(users)
        self.started = False
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid

    def f(self, *parts):
        return os.path.join(self.conf, *parts)

    def main_cf(self):
        return "\n".join([
            "# A throwaway instance for blindlist's postfix_system_test; nothing here is the machine's.",
            "compatibility_level = 3.6",
            "config_directory = %s" % self.conf,
            "queue_directory = %s" % self.queue,
            "data_directory = %s" % self.data,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = mx.postfix.test",
            "mydomain = postfix.test",
            "myorigin = $myhostname",
            "mydestination =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "relay_domains = %s" % self.list_domain,
            "transport_maps = hash:%s" % self.f("transport"),
            # Nothing may leave the machine: whatever the maps do not route is refused.
            "default_transport = error:no outside mail from this test",
            "relay_transport = error:no outside mail from this test",
            "virtual_mailbox_domains = %s" % self.member_domain,
            "virtual_mailbox_base = %s" % self.mail,
            "virtual_mailbox_maps = hash:%s" % self.f("vmailbox"),
            "virtual_uid_maps = static:%d" % self.uid,
            "virtual_gid_maps = static:%d" % self.gid,
            "virtual_minimum_uid = 100",
            "alias_maps =",
            "alias_database =",
            "local_recipient_maps =",
            "smtputf8_enable = no",
            "biff = no",
            "append_dot_mydomain = no",
            "smtp_host_lookup = native",
            "lmtp_host_lookup = native",
            "smtpd_tls_security_level = none",
            "smtp_tls_security_level = none",
            "lmtp_tls_security_level = none",
            "maillog_file = %s" % self.maillog,
            "maillog_file_prefixes = %s" % self.base,
            # Quick retries: a temporary failure should not stall the test for minutes.
            "queue_run_delay = 5s",
            "minimal_backoff_time = 5s",
            "maximal_backoff_time = 10s",
            "delay_warning_time = 0h",
            "",
        ])

    def master_cf(self):
        """/etc/postfix/master.cf with the `smtp inet` service replaced by two loopback listeners,
        no chroot (the temporary queue has no copy of /etc), and postlogd for maillog_file."""
        text = harness.read(os.path.join(MACHINE_POSTFIX, "master.cf"), "r")
        out = []
        has_postlog = False
        skipping = False
        for line in text.splitlines():
            if skipping and line[:1] in (" ", "\t") and line.strip():
                continue  # the replaced service's -o lines
            skipping = False
            if not line.strip() or line.lstrip().startswith("#") or line[:1] in (" ", "\t"):
                out.append(line)
                continue
            fields = line.split()
            if len(fields) < 8:
                out.append(line)
                continue
            if fields[0] == "smtp" and fields[1] == "inet":
                for port in (self.in_port, self.relay_port):
                    out.append("127.0.0.1:%d inet n - n - - smtpd" % port)
                skipping = True
                continue
            if fields[0] == "postlog":
                has_postlog = True
            fields[4] = "n"  # chroot
            out.append(" ".join(fields[:8]) + ("" if len(fields) == 8 else " " + " ".join(fields[8:])))
        if not has_postlog:
            out.append("postlog unix-dgram n - n - 1 postlogd")
        return "\n".join(out) + "\n"

    def postfix(self, *args, check=True):
        return harness.run([POSTFIX, "-c", self.conf] + list(args), check=check, timeout=300)

    def start(self):
        os.chmod(self.base, 0o755)  # virtual(8) runs as nobody and must reach base/mail
        os.makedirs(self.conf, mode=0o755)
        os.makedirs(self.queue, mode=0o755)
        os.makedirs(self.data, mode=0o700)
        os.makedirs(self.mail, mode=0o700)
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.data, postfix_user.pw_uid, postfix_user.pw_gid)
        os.chown(self.mail, self.uid, self.gid)
        harness.write(self.f("main.cf"), self.main_cf())
        harness.write(self.f("master.cf"), self.master_cf())
        harness.write(self.f("transport"), "%s lmtp:inet:127.0.0.1:%d\n" % (self.list_domain, self.lmtp_port))
        harness.write(self.f("vmailbox"), "".join("%s@%s %s/\n" % (u, self.member_domain, u) for u in self.users))
        for m in ("transport", "vmailbox"):
            harness.run([POSTMAP, "-c", self.conf, "hash:" + self.f(m)])
        self.postfix("check")
        self.started = True  # from here on stop() runs, even if start fails half-way
        self.postfix("start")
        lh.wait_for(self.listening, 120, "Postfix listening on 127.0.0.1:%d and :%d" % (self.in_port,
                                                                                          self.relay_port))
        return self

    def listening(self):
        import socket
        for port in (self.in_port, self.relay_port):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    if not s.recv(512).startswith(b"220"):
                        return False
            except OSError:
                return False
        return True

    def master_pid(self):
        try:
            return int(harness.read(os.path.join(self.queue, "pid", "master.pid"), "r").strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if not self.started:
            return
        self.started = False
        pid = self.master_pid()
        p = self.postfix("stop", check=False)
        if pid is None:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        # Our own master did not go away: end it (and its children, which follow it).
        print("postfix stop did not end master %d (%s); killing it" % (pid, p.stderr.decode(errors="replace")),
              file=sys.stderr)
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass

    def log_text(self):
        try:
            return harness.read(self.maillog).decode(errors="replace")
        except OSError:
            return ""

    def maildir(self, user):
        return os.path.join(self.mail, user, "new")

    def messages(self, user):
        """Every message in user's Maildir/new, as bytes, oldest first."""
        files = sorted(glob.glob(os.path.join(self.maildir(user), "*")), key=os.path.getmtime)
        return [(p, harness.read(p)) for p in files]


def header_block(message):
    return message.replace(b"\r\n", b"\n").partition(b"\n\n")[0].decode(errors="replace")


def headers_of(message):
    """[(name, unfolded value)] of a message's header."""
    out = []
    for line in header_block(message).split("\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        elif ":" in line:
            name, _, value = line.partition(":")
            out.append((name, value.strip()))
    return out


def header_values(message, name):
    return [v for n, v in headers_of(message) if n.lower() == name.lower()]


class PostfixSystemTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            harness.peer_missing("Postfix's master must run as root")
        for tool in (POSTFIX, POSTMAP, shutil.which("swaks") or "/nonexistent/swaks"):
            if not os.path.exists(tool):
                harness.peer_missing("%s is not installed (scripts/setup installs it)" % tool)
        cls.etc_before = tree_snapshot(MACHINE_POSTFIX)

        d = cls.d = harness.Deployment("pfx", with_certd=True).start()
        p = d.pki
        cls.work = harness.tempdir("pfx-work")
        d.create_group(LIST, "rsa3072")
        cls.list_cert = os.path.join(cls.work, "list.crt")
        d.public_certificate(LIST, cls.list_cert)
        # alice reads by path F (token), bob by path E (registered certificate), carol by path G (certd).
        p.make_ca("member-ca", "Integration member CA")
        cls.bob = (p.member("bob", "member-ca", "rsa2048", MEMBERS["bob"]), p.key("bob"))
        cls.tokens = {
            "alice": d.admin("member", "add", LIST, MEMBERS["alice"], "--token")["token"],
            "bob": d.admin("member", "add", LIST, MEMBERS["bob"], "--cert", cls.bob[0], "--token")["token"],
            "carol": d.admin("member", "add", LIST, MEMBERS["carol"], "--token")["token"],
        }

        relay_port = lh.free_port()
        cls.l = lh.Listd(d, "pfx", delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % relay_port,
                                             "starttls": "never"},
                         groupd={"public_url": d.g.url()})
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.list_cert,
                    "--description", LIST_DESCRIPTION)
        cls.l.lists("member", "add", LIST, *MEMBERS.values())
        cls.l.start()

        cls.pf = Postfix(harness.tempdir("postfix"), in_port=lh.free_port(), relay_port=relay_port,
                         lmtp_port=cls.l.lmtp_port, list_domain="lists.test", member_domain="members.test",
                         users=MEMBERS.keys())
        cls.addClassCleanup(cls.pf.stop)
        try:
            cls.pf.start()
        except Exception:
            sys.stderr.write("\n===== Postfix maillog =====\n" + cls.pf.log_text()[-20000:])
            raise

    # -- helpers
    def run(self, result=None):
        """Any failure also shows Postfix's log (the daemons' logs come from harness.main)."""
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n===== Postfix maillog (%s) =====\n%s\n" %
                             (self.pf.maillog, self.pf.log_text()[-20000:]))
        return out

    def send(self, message, *, to=LIST, sender=SENDER):
        rc, out = lh.swaks(self.pf.in_port, to, message, sender=sender)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"<- +250 2\.0\.0 Ok: queued as", "Postfix did not queue the post:\n" + out)
        return out

    def wait_maildir(self, user, marker, count=1):
        """Waits until `count` messages holding `marker` are in user's Maildir; returns them."""
        def found():
            got = [(p, m) for p, m in self.pf.messages(user) if marker.encode() in m]
            return got if len(got) >= count else None
        return lh.wait_for(found, WAIT, "%s in the Maildir of %s" % (marker, user))

    def make_post(self, subject, body):
        return lh.make_post(self.work, self.list_cert, subject, body, sender=SENDER, to=LIST)

    # -- tests
    def test_a_post_through_postfix_and_listd_reaches_every_maildir_and_is_read(self):
        body = "Hello team, through Postfix and the exploder."
        subject = "pfx-post-%s" % os.urandom(4).hex()
        post = self.make_post(subject, body)
        self.send(post)

        delivered = {}
        for user in MEMBERS:
            got = self.wait_maildir(user, subject)
            delivered[user] = got[0]
        time.sleep(3)  # would a duplicate arrive?
        for user, addr in MEMBERS.items():
            with self.subTest(member=user):
                copies = [p for p, m in self.pf.messages(user) if subject.encode() in m]
                self.assertEqual(len(copies), 1, "%s got %d copies of the post" % (user, len(copies)))
                msg = delivered[user][1]
                # The S/MIME body is exactly what the sender posted.
                self.assertEqual(lh.smime_body(msg), lh.smime_body(post), "ciphertext changed on the way")
                # listd's list headers, once each.
                self.assertEqual(header_values(msg, "List-Id"), ['"%s" <team.lists.test>' % LIST_DESCRIPTION])
                self.assertEqual(header_values(msg, "List-Post"), ["<mailto:%s>" % LIST])
                self.assertEqual(header_values(msg, "List-Unsubscribe"),
                                 ["<mailto:team-request@lists.test?subject=unsubscribe>"])
                self.assertEqual(header_values(msg, "Precedence"), ["list"])
                # The sender's own headers are still there.
                for name in ("From", "To", "Subject", "MIME-Version", "Content-Type"):
                    self.assertEqual(header_values(msg, name), header_values(post, name), name)
                # Delivered by Postfix's virtual(8) to this member, sent by listd with the list's bounce address.
                self.assertEqual(header_values(msg, "Delivered-To"), [addr])
                # VERP: the list's bounce address with a tag naming the post and the member.
                rp = header_values(msg, "Return-Path")
                self.assertEqual(len(rp), 1, rp)
                self.assertRegex(rp[0], r"^<team-bounces\+[a-z0-9.+=-]+@lists\.test>$")
                # Two Postfix hops: sender -> Postfix, listd -> Postfix.
                received = header_values(msg, "Received")
                self.assertGreaterEqual(len([r for r in received if "by mx.postfix.test" in r]), 2, received)
        # Postfix's own record of both hops.
        log = self.pf.log_text()
        self.assertRegex(log, r"to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent \(250 2\.0\.0" %
                         (re.escape(LIST), self.pf.lmtp_port))
        for addr in MEMBERS.values():
            self.assertRegex(log, r"to=<%s>, relay=virtual, .*status=sent \(delivered to maildir\)" %
                             re.escape(addr))

        # Path F: alice, with her token, over TLS.
        f_in = harness.write(os.path.join(self.work, "alice.eml"), delivered["alice"][1])
        plain = self.d.open(LIST, "tls", f_in, token=self.tokens["alice"]).stdout
        self.assertIn(body.encode(), plain)
        self.assertIn(b"Subject: " + subject.encode(), plain)

        # Path E: bob's delivery filter splices in a RecipientInfo for his own certificate;
        # then any S/MIME tool (openssl) reads it with his key.
        e_in = harness.write(os.path.join(self.work, "bob.eml"), delivered["bob"][1])
        e_out = os.path.join(self.work, "bob-filtered.eml")
        p = self.d.bl("open", *self.d.server_args(token=self.tokens["bob"]), "--group", LIST,
                      "--method", "rewrap", "--filter", "--member-cert", self.bob[0], "-i", e_in, "-o", e_out)
        self.assertNotIn(b"delivering the message unchanged", p.stderr, "the filter passed the post through")
        filtered = harness.read(e_out)
        self.assertNotEqual(lh.smime_body(filtered), lh.smime_body(delivered["bob"][1]), "nothing spliced")
        # What the filter hands to the mailbox is still the list mail bob got, only readable by him now.
        for name in ("Subject", "From", "List-Id", "Delivered-To"):
            self.assertEqual(header_values(filtered, name), header_values(delivered["bob"][1], name), name)
        out = harness.osl_decrypt(e_out, self.bob[1], self.bob[0])
        self.assertEqual(out, harness.entity(body), "openssl's read of the spliced post differs from the post")

        # Path G: carol gets a membership certificate from certd, then reads without saying who she is.
        g_crt, g_key = os.path.join(self.work, "carol-g.crt"), os.path.join(self.work, "carol-g.key")
        self.d.bl("cert", "request", *self.d.server_args(endpoint=self.d.c, token=self.tokens["carol"]),
                  "--group", LIST, "-o", g_crt, "--key-out", g_key)
        harness.openssl("verify", "-CAfile", self.d.membership_ca_crt, g_crt)
        g_in = harness.write(os.path.join(self.work, "carol.eml"), delivered["carol"][1])
        plain = self.d.open(LIST, "cert", g_in, member=(g_crt, g_key)).stdout
        self.assertIn(body.encode(), plain)
        self.assertIn(b"Subject: " + subject.encode(), plain)

    def test_b_plaintext_post_is_refused_by_listd_and_bounced_to_the_sender(self):
        subject = "pfx-plain-%s" % os.urandom(4).hex()
        message = harness.rfc5322(subject, "this should never reach the members", to=LIST)
        message = message.replace(b"From: Alice Example <alice@example.org>", b"From: Alice <%s>" % SENDER.encode())
        self.send(message)  # Postfix takes it; listd refuses it at LMTP; Postfix bounces.

        def bounce():
            for path, m in self.pf.messages("alice"):
                if subject.encode() in m and b"multipart/report" in m:
                    return m
            return None
        dsn = lh.wait_for(bounce, WAIT, "the bounce of the plaintext post in alice's Maildir")
        self.assertEqual(header_values(dsn, "Return-Path"), ["<>"])
        self.assertRegex(header_values(dsn, "From")[0], r"MAILER-DAEMON@mx\.postfix\.test")
        self.assertRegex(header_values(dsn, "Content-Type")[0], r"multipart/report; report-type=delivery-status")
        text = dsn.decode(errors="replace")
        unfolded = re.sub(r"\r?\n[ \t]+", " ", text)
        self.assertIn("Final-Recipient: rfc822; %s" % LIST, unfolded)
        self.assertIn("Action: failed", unfolded)
        self.assertIn("Status: 5.7.1", unfolded)
        expected = ("550 5.7.1 %s takes only S/MIME-encrypted posts; get the list certificate at "
                    "%s/v1/groups/%s/certificate" % (LIST, self.d.g.url(), LIST))
        m = re.search(r"Diagnostic-Code: (?:lmtp|smtp|x-unix); (.*)", unfolded)
        self.assertIsNotNone(m, "no Diagnostic-Code in the DSN:\n" + text[:3000])
        self.assertIn(expected, re.sub(r"\s+", " ", m.group(1)))
        # The human-readable part says the same.
        self.assertIn("5.7.1", unfolded.split("Content-Type: message/delivery-status")[0])
        self.assertIn("takes only S/MIME-encrypted posts", re.sub(r"\s+", " ", unfolded))
        # Nobody else received anything of it.
        for user in ("bob", "carol"):
            self.assertEqual([p for p, m in self.pf.messages(user) if subject.encode() in m], [],
                             "%s received the refused plaintext post" % user)
        self.assertRegex(self.pf.log_text(), r"to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=bounced "
                                             r"\(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.7\.1" %
                         (re.escape(LIST), self.pf.lmtp_port))

    def test_z_machine_postfix_configuration_untouched(self):
        self.assertEqual(tree_snapshot(MACHINE_POSTFIX), self.etc_before, "/etc/postfix changed during the test")


if __name__ == "__main__":
    harness.main()
