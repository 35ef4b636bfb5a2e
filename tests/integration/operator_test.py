#!/usr/bin/env python3
"""An operator follows docs/operations.md, literally, from an empty host to a list members read.

Usage: operator_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

The commands come from docs/operations.md itself: every fenced block preceded by
`<!-- operator-test: NAME -->` is extracted and run as written, in document order
(`<!-- operator-test: file PATH -->` blocks are installed as that file). Nothing
here repeats them, so the doc and the test cannot drift apart.

To run them as root without touching this machine, the test re-executes itself
in new mount, network and PID namespaces (`unshare`), where
  - /etc, /var, /usr and /root are overlays (copy-on-write into a temporary
    directory; the real ones are never written);
  - /etc/hosts maps groupd.example.org, certd.example.org and lists.example.org
    to 127.0.0.2, 127.0.0.3 and 127.0.0.4: three "hosts" on one loopback;
  - `systemctl` is a stand-in (written below) that starts a unit's ExecStart as
    its User= and groups, with every mount read-only except the unit's
    ReadWritePaths= (ProtectSystem=strict), a private /tmp and its UMask=, and
    refuses, as systemd does, a unit whose ReadWritePaths= directory is missing;
  - the site's Postfix (real, root, /etc/postfix in the overlay) already has a
    transport_maps, relay_domains, smtputf8_enable and a milter that refuses at
    RCPT every recipient in the members' domain (a stand-in for a spam filter).
When the test ends, the PID namespace ends every process in it.

Checked: every marked step succeeds; a post sent to the MX reaches each member
through Postfix, listd and the fan-out listener despite the milter; each member
reads it by every documented method (F, E, G, S, blind, C); the site's own
transport route and relay domain still work; the mailbox_command recipe delivers
the mail of a user who does not use blindlist even with groupd stopped and /tmp
unusable; the start-up refusals (loopback CRL URL, missing [store] url,
starttls = required without ca).

Needs root, unshare/setpriv (util-linux), postfix, postmap, swaks, curl.
"""

import glob
import grp
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

DOC = os.path.join(SOURCE, "docs", "operations.md")
INNER = "BLINDLIST_OPERATOR_TEST_INNER"
HOSTS = {"groupd.example.org": "127.0.0.2", "certd.example.org": "127.0.0.3",
         "lists.example.org": "127.0.0.4", "mx.example.org": "127.0.0.4"}
LIST = "team@lists.example.org"
MEMBERS = ("alice", "bob")
WAIT = 120
MARKER = re.compile(r"^[ \t]*<!-- operator-test: (.+?) -->[ \t]*\n[ \t]*```[a-z]*\n(.*?)\n[ \t]*```", re.S | re.M)


def doc_blocks():
    """[(name, text)] of the marked blocks, in order, with a list item's indentation removed."""
    return [(m.group(1).strip(), textwrap.dedent(m.group(2)) + "\n")
            for m in MARKER.finditer(harness.read(DOC, "r"))]


# ---------------------------------------------------------------------------
# a stand-in for systemctl (runs inside the namespaces, as root)

SYSTEMCTL = r'''#!/usr/bin/python3
"""systemctl for operator_test.py: daemon-reload, enable [--now], start, stop, reload, is-active."""
import grp, os, pwd, signal, subprocess, sys, time
STATE = os.environ["OPERATOR_TEST_STATE"]
UNITS = "/etc/systemd/system"

def unit(name):
    name = name if name.endswith(".service") else name + ".service"
    files = [os.path.join(UNITS, name)]
    d = os.path.join(UNITS, name + ".d")
    if os.path.isdir(d):
        files += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".conf")]
    if not os.path.exists(files[0]):
        sys.exit("Unit %s not found." % name)
    u = {"ExecStart": [], "ReadWritePaths": [], "SupplementaryGroups": [], "User": "root", "Group": None,
         "UMask": "0022", "Documentation": []}
    for f in files:
        for line in open(f):
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            if k in ("ExecStart", "ReadWritePaths", "SupplementaryGroups", "Documentation"):
                if v == "":
                    u[k] = []
                elif k == "ExecStart":
                    u[k].append(v)
                else:
                    u[k] += v.split()
            else:
                u[k] = v
    return name, u

def pidfile(name):
    return os.path.join(STATE, name + ".pid")

def running(name):
    try:
        pid = int(open(pidfile(name)).read())
        os.kill(pid, 0)
        # An ended daemon is a zombie until the namespace's init (the test) reaps it.
        return None if open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z" else pid
    except (OSError, ValueError):
        return None

def start(arg):
    name, u = unit(arg)
    if running(name):
        return
    for doc in u["Documentation"]:
        if doc.startswith("file:") and not os.path.exists(doc[5:].lstrip("/").join(["/", ""])):
            sys.exit("%s: Documentation= names %s, which does not exist" % (name, doc))
    rw = []
    for p in u["ReadWritePaths"]:
        optional = p.startswith("-")
        p = p.lstrip("-")
        if not os.path.isdir(p):
            if optional:
                continue
            sys.exit("%s: Failed to set up mount namespacing: %s: No such file or directory" % (name, p))
        rw.append(p)
    if len(u["ExecStart"]) != 1:
        sys.exit("%s: needs exactly one ExecStart=" % name)
    user = pwd.getpwnam(u["User"])
    gid = grp.getgrnam(u["Group"]).gr_gid if u["Group"] else user.pw_gid
    groups = [gid] + [grp.getgrnam(g).gr_gid for g in u["SupplementaryGroups"]]
    keep = " ".join(rw)
    script = "set -e\n"
    script += "".join("mount --bind '%s' '%s'\n" % (p, p) for p in rw)
    script += ("for m in $(awk '{print $2}' /proc/self/mounts | sort -u); do\n"
               "  case \" %s \" in *\" $m \"*) continue ;; esac\n"
               "  case $m in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac\n"
               "  mount -o remount,bind,ro \"$m\"\n"
               "done\n" % keep)
    script += "mount -t tmpfs tmpfs /tmp\n"
    script += "umask %s\n" % u["UMask"]
    script += "exec setpriv --reuid %d --regid %d --groups %s --inh-caps=-all -- %s\n" % (
        user.pw_uid, gid, ",".join(str(g) for g in groups), u["ExecStart"][0].lstrip("-@"))
    log = open(os.path.join(STATE, name + ".log"), "ab")
    p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    open(pidfile(name), "w").write(str(p.pid))

def stop(arg):
    name, _ = unit(arg)
    pid = running(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(600):
            if not running(name):
                break
            time.sleep(0.05)

args = [a for a in sys.argv[1:] if not a.startswith("-")]
now = "--now" in sys.argv
if not args:
    sys.exit("systemctl stand-in: no command")
cmd, units = args[0], args[1:]
if cmd == "daemon-reload":
    pass
elif cmd == "enable":
    for u in units:
        unit(u)
        open(os.path.join(STATE, "enabled"), "a").write(u + "\n")
        if now:
            start(u)
elif cmd in ("start", "restart"):
    for u in units:
        if cmd == "restart":
            stop(u)
        start(u)
elif cmd == "stop":
    for u in units:
        stop(u)
elif cmd == "reload":
    for u in units:
        pid = running(unit(u)[0])
        if not pid:
            sys.exit("%s is not active" % u)
        os.kill(pid, signal.SIGHUP)
elif cmd == "is-active":
    sys.exit(0 if all(running(unit(u)[0]) for u in units) else 3)
else:
    sys.exit("systemctl stand-in: %s is not supported" % cmd)
'''

# The site's MDA, for the mailbox_command recipe: appends the message to ~/Maildir/new.
FAKE_LDA = r'''#!/bin/sh
mkdir -p "$HOME/Maildir/new" || exit 75
f="$HOME/Maildir/new/$(date +%s).$$.lda"
cat > "$f" || exit 75
echo "$*" > "$f.args"
'''


# ---------------------------------------------------------------------------
# a milter that refuses at RCPT every recipient in the members' domain (the site's spam filter)


class RejectingMilter:
    def __init__(self, domain):
        self.domain = domain.lower()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.rejected = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def session(self, conn):
        def reply(code, data=b""):
            conn.sendall(struct.pack("!I", 1 + len(data)) + code + data)
        try:
            with conn:
                while True:
                    (length,) = struct.unpack("!I", self.recv_exact(conn, 4))
                    packet = self.recv_exact(conn, length)
                    cmd, data = packet[:1], packet[1:]
                    if cmd == b"O":  # option negotiation: version 6, no actions, every step
                        reply(b"O", struct.pack("!III", 6, 0, 0))
                    elif cmd in (b"D", b"A"):
                        continue
                    elif cmd == b"Q":
                        return
                    elif cmd == b"R":
                        rcpt = data.split(b"\0")[0].decode(errors="replace").strip("<>").lower()
                        if rcpt.endswith("@" + self.domain):
                            self.rejected.append(rcpt)
                            reply(b"y", b"550 5.7.1 rejected by the site's spam filter\0")
                        else:
                            reply(b"c")
                    else:
                        reply(b"c")
        except (EOFError, OSError):
            pass


# ---------------------------------------------------------------------------


def sh(script, *, cwd, env=None, check=True, timeout=300, name="block"):
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=full, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("doc block %r failed (exit %d)\n--- script:\n%s\n--- stdout:\n%s\n--- stderr:\n%s" %
                             (name, p.returncode, script, p.stdout.decode(errors="replace")[-3000:],
                              p.stderr.decode(errors="replace")[-3000:]))
    return p


class OperatorTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.blocks = doc_blocks()
        cls.names = [n for n, _ in cls.blocks]
        cls.work = harness.tempdir("operator")
        cls.state = os.path.join(cls.work, "state")
        os.makedirs(cls.state)
        cls.bin = os.path.join(cls.work, "bin")
        os.makedirs(cls.bin)
        harness.write(os.path.join(cls.bin, "systemctl"), SYSTEMCTL)
        os.chmod(os.path.join(cls.bin, "systemctl"), 0o755)
        cls.env = {"PATH": cls.bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "OPERATOR_TEST_STATE": cls.state, "HOME": "/root"}
        cls.make_namespace_filesystem()
        cls.make_source_tree()
        cls.milter = RejectingMilter("example.org")
        cls.start_site_postfix()

    # -- the machine
    @classmethod
    def make_namespace_filesystem(cls):
        harness.run(["ip", "link", "set", "lo", "up"])
        for d in ("etc", "var", "usr", "root"):
            upper, workdir = os.path.join(cls.work, "ov", d, "u"), os.path.join(cls.work, "ov", d, "w")
            os.makedirs(upper)
            os.makedirs(workdir)
            harness.run(["mount", "-t", "overlay", "overlay", "-o",
                         "lowerdir=/%s,upperdir=%s,workdir=%s" % (d, upper, workdir), "/" + d])
        with open("/etc/hosts", "a") as f:
            for name, addr in HOSTS.items():
                f.write("%s %s\n" % (addr, name))
        # Nothing of blindlist may exist yet: the doc starts from an empty host.
        for p in ("/etc/blindlist", "/var/lib/blindlist-groupd", "/var/spool/blindlist", "/usr/bin/blindlist"):
            assert not os.path.exists(p), p
        for u in ("blindlist-groupd", "blindlist-certd", "blindlist-listd"):
            try:
                pwd.getpwnam(u)
                raise AssertionError("user %s exists before the doc creates it" % u)
            except KeyError:
                pass
        os.makedirs("/usr/lib/dovecot", exist_ok=True)
        harness.write("/usr/lib/dovecot/dovecot-lda", FAKE_LDA)
        os.chmod("/usr/lib/dovecot/dovecot-lda", 0o755)

    @classmethod
    def make_source_tree(cls):
        """The doc's commands run from the source tree: build/ holds the binaries ctest built."""
        cls.src = os.path.join(cls.work, "src")
        for rel, name in (("build/cli/blindlist", "blindlist"), ("build/daemons/groupd/blindlist-groupd", "groupd"),
                          ("build/daemons/certd/blindlist-certd", "certd"),
                          ("build/daemons/listd/blindlist-listd", "listd")):
            os.makedirs(os.path.dirname(os.path.join(cls.src, rel)), exist_ok=True)
            os.symlink(harness.BINARIES[name], os.path.join(cls.src, rel))
        # `blindlist` hands all but the envelope commands to the full command, built beside it.
        full = os.path.normpath(os.path.join(os.path.dirname(harness.BINARIES["blindlist"]),
                                             "../libexec/blindlist/blindlist-full"))
        os.makedirs(os.path.join(cls.src, "build/libexec/blindlist"), exist_ok=True)
        os.symlink(full, os.path.join(cls.src, "build/libexec/blindlist/blindlist-full"))
        for d in ("deploy", "docs"):
            os.symlink(os.path.join(SOURCE, d), os.path.join(cls.src, d))

    @classmethod
    def start_site_postfix(cls):
        """The site's Postfix before blindlist: its own maps, relay domain, SMTPUTF8 and milter."""
        nobody = pwd.getpwnam("nobody")
        os.makedirs("/var/mail/vhosts", exist_ok=True)
        os.chown("/var/mail/vhosts", nobody.pw_uid, nobody.pw_gid)
        main = "\n".join([
            "compatibility_level = 3.6",
            "myhostname = mx.example.org",
            "mydomain = example.org",
            "myorigin = $myhostname",
            "mydestination = localhost",
            "inet_interfaces = all",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.1/32",
            "relay_domains = legacy.example.net",
            "transport_maps = hash:/etc/postfix/transport",
            "smtputf8_enable = yes",
            "smtpd_milters = inet:127.0.0.1:%d" % cls.milter.port,
            "non_smtpd_milters = inet:127.0.0.1:%d" % cls.milter.port,
            "milter_default_action = tempfail",
            "virtual_mailbox_domains = example.org",
            "virtual_mailbox_base = /var/mail/vhosts",
            "virtual_mailbox_maps = hash:/etc/postfix/vmailbox",
            "virtual_uid_maps = static:%d" % nobody.pw_uid,
            "virtual_gid_maps = static:%d" % nobody.pw_gid,
            "virtual_minimum_uid = 100",
            "alias_maps =",
            "alias_database =",
            "default_transport = error:no outside mail from this test",
            "relay_transport = error:no outside mail from this test",
            "smtp_host_lookup = native",
            "lmtp_host_lookup = native",
            "smtpd_tls_security_level = none",
            "smtp_tls_security_level = none",
            "maillog_file = /var/log/postfix-operator.log",
            "queue_run_delay = 5s",
            "minimal_backoff_time = 5s",
            "maximal_backoff_time = 10s",
            "",
        ])
        harness.write("/etc/postfix/main.cf", main)
        out = []
        has_postlog = False
        for line in harness.read("/etc/postfix/master.cf", "r").splitlines():
            fields = line.split()
            if line.strip() and not line.lstrip().startswith("#") and line[:1] not in (" ", "\t") and len(fields) >= 8:
                fields[4] = "n"  # no chroot: the queue directory has no copy of /etc
                has_postlog = has_postlog or fields[0] == "postlog"
                line = " ".join(fields)
            out.append(line)
        if not has_postlog:
            out.append("postlog unix-dgram n - n - 1 postlogd")
        harness.write("/etc/postfix/master.cf", "\n".join(out) + "\n")
        harness.write("/etc/postfix/transport", "legacy.example.net error:legacy route kept\n")
        harness.write("/etc/postfix/vmailbox", "".join("%s@example.org example.org/%s/\n" % (m, m)
                                                       for m in MEMBERS + ("carol",)))
        for m in ("transport", "vmailbox"):
            harness.run(["postmap", "hash:/etc/postfix/" + m])
        harness.run(["postfix", "check"])
        harness.run(["postfix", "start"], timeout=120)
        lh.wait_for(lambda: cls.smtp_banner("127.0.0.4", 25), 60, "the site's Postfix on port 25")

    @staticmethod
    def smtp_banner(host, port):
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    # -- running the doc
    def block(self, name):
        found = [t for n, t in self.blocks if n == name]
        self.assertEqual(len(found), 1, "docs/operations.md has %d blocks marked %r" % (len(found), name))
        return found[0]

    def run_block(self, name, *, cwd=None, env=None, prelude=""):
        e = dict(self.env)
        e.update(env or {})
        return sh(prelude + self.block(name), cwd=cwd or self.src, env=e, name=name)

    def maildir(self, member):
        return sorted(glob.glob("/var/mail/vhosts/example.org/%s/new/*" % member), key=os.path.getmtime)

    def postfix_log(self):
        try:
            return harness.read("/var/log/postfix-operator.log").decode(errors="replace")
        except OSError:
            return ""

    def member_home(self, member):
        home = os.path.join(self.work, "home", member)
        os.makedirs(os.path.join(home, ".blindlist"), exist_ok=True)
        return home

    # -- the test: one method, because every step builds on the one before
    def test_operations_md_as_written(self):
        try:
            self.install()
            self.create_list_and_post()
            self.read_by_every_method()
            self.mailbox_command_recipe()
            self.start_up_refusals()
        except BaseException:
            for f in sorted(glob.glob(os.path.join(self.state, "*.log"))):
                sys.stderr.write("\n===== %s =====\n%s" % (f, harness.read(f).decode(errors="replace")[-6000:]))
            sys.stderr.write("\n===== Postfix log =====\n" + self.postfix_log()[-8000:])
            raise

    def install(self):
        order = ["programs", "users", "directories-groupd", "directories-listd", "tls-ca", "groupd-certificate",
                 "certd-certificate", "deployment-ca", "exploder-certificate", "configuration", "metrics-tokens",
                 "membership-ca", "admin-token", "postfix-transport", "postfix-main", "postfix-master",
                 "postfix-reload", "units-groupd", "units-listd", "health", "metrics"]
        # Step 7 of the install sends the reader to the Postfix section and back: that is the order here.
        for name in order:
            self.block(name)
        for name in order:
            if name == "health":
                lh.wait_for(lambda: self.smtp_banner("127.0.0.1", 10026), 60, "the fan-out listener")
            p = self.run_block(name)
            if name == "admin-token":
                self.admin_token = p.stdout.decode().strip()
                self.assertRegex(self.admin_token, r"^bla_\S+$")
            if name == "health":
                out = p.stdout.decode()
                self.assertEqual(out.count('"status":"ok"'), 3, out)
            if name == "metrics":
                # With the token groupd's metrics; without it 401 (the samples turn the token on).
                count, status = p.stdout.decode().split()
                self.assertGreater(int(count), 0)
                self.assertEqual(status, "401")
        # What the doc promised about the files and the site's Postfix.
        for path, owner, mode in (("/etc/blindlist/master.key", "blindlist-groupd", 0o400),
                                  ("/etc/blindlist/groupd.key", "blindlist-groupd", 0o600),
                                  ("/etc/blindlist/certd.key", "blindlist-certd", 0o600),
                                  ("/etc/blindlist/ca.key", "blindlist-groupd", 0o600),
                                  ("/etc/blindlist/exploder.key", "blindlist-listd", 0o600),
                                  ("/etc/blindlist/membership-ca.key", "blindlist-certd", 0o600),
                                  ("/etc/blindlist/metrics-groupd.token", "blindlist-groupd", 0o600),
                                  ("/etc/blindlist/metrics-listd.token", "blindlist-listd", 0o600)):
            st = os.stat(path)
            self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, st.st_mode & 0o777), (owner, mode), path)
        san = harness.cert_text("/etc/blindlist/groupd.crt")
        self.assertIn("DNS:groupd.example.org", san)
        crt = harness.cert_text("/etc/blindlist/membership-ca.crt")
        self.assertIn("CA:TRUE", crt)
        postconf = lambda k: harness.run(["postconf", "-h", k]).stdout.decode().strip()  # noqa: E731
        self.assertEqual(postconf("transport_maps"),
                         "hash:/etc/postfix/blindlist_transport, hash:/etc/postfix/transport")
        self.assertEqual(postconf("relay_domains"), "legacy.example.net, lists.example.org")
        self.assertEqual(postconf("smtputf8_enable"), "yes")
        # Running the merge again changes nothing.
        self.run_block("postfix-main")
        self.assertEqual(postconf("transport_maps"),
                         "hash:/etc/postfix/blindlist_transport, hash:/etc/postfix/transport")
        self.assertEqual(postconf("relay_domains"), "legacy.example.net, lists.example.org")
        # Each daemon runs as its own user.
        for unit, user in (("blindlist-groupd", "blindlist-groupd"), ("blindlist-certd", "blindlist-certd"),
                           ("blindlist-listd", "blindlist-listd")):
            pid = int(harness.read(os.path.join(self.state, unit + ".service.pid"), "r"))
            uid = os.stat("/proc/%d" % pid).st_uid
            self.assertEqual(pwd.getpwuid(uid).pw_name, user)

    def create_list_and_post(self):
        admin = os.path.join(self.work, "admin")
        os.makedirs(admin)
        # alice's own S/MIME certificate (RSA, from her organisation's CA), registered for path E.
        pki = harness.Pki(os.path.join(self.work, "member-pki"))
        pki.make_ca("member-ca", "Example member CA")
        alice_crt = pki.member("alice", "member-ca", "rsa2048", "alice@example.org")
        shutil.copy(alice_crt, os.path.join(admin, "alice.crt"))
        env = {"BLINDLIST_TOKEN": self.admin_token}
        prelude = self.block("admin-commands")
        self.run_block("group-create", cwd=admin, env=env, prelude=prelude)
        out = self.run_block("roster", cwd=admin, env=env, prelude=prelude).stdout.decode()
        tokens = re.findall(r"\bblt_[A-Za-z0-9_-]+", out)
        self.assertEqual(len(tokens), 2, out)
        self.tokens = dict(zip(MEMBERS, tokens))
        self.run_block("exploder-set", cwd=admin, env=env, prelude=prelude)
        self.run_block("list-create", cwd=admin, env=env, prelude=prelude)
        self.run_block("delivery-list", cwd=admin, env=env, prelude=prelude)
        self.admin_dir, self.admin_prelude, self.admin_env = admin, prelude, env

        for m in MEMBERS:
            home = self.member_home(m)
            shutil.copy("/etc/blindlist/tls-ca.crt", os.path.join(home, ".blindlist", "tls-ca.crt"))
            harness.write(os.path.join(home, ".blindlist", "token"), self.tokens[m] + "\n")
        shutil.copy(alice_crt, os.path.join(self.member_home("alice"), ".blindlist", "me.crt"))
        shutil.copy(pki.key("alice"), os.path.join(self.member_home("alice"), ".blindlist", "me.key"))

        self.body = "Operator test post %s" % os.urandom(6).hex()
        sender = self.member_home("alice")
        harness.write(os.path.join(sender, "body.txt"), self.body + "\n")
        self.run_block("post", cwd=sender, env={"HOME": sender})
        self.posts = {}
        for m in MEMBERS:
            self.posts[m] = lh.wait_for(lambda m=m: self.maildir(m), WAIT, "the post in %s's Maildir" % m)[0]
        log = self.postfix_log()
        self.assertRegex(log, r"to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:2526, .*status=sent" % re.escape(LIST))
        # The site's spam filter is still on the public port: it refuses a member there ...
        _, out = self.swaks_direct("bob@example.org")
        self.assertIn("550 5.7.1 rejected by the site's spam filter", out)
        # ... and the site's own route and relay domain still work: Postfix answers for
        # legacy.example.net from the site's transport map (its error: route's text), not
        # "Relay access denied" (relay_domains replaced) or relay_transport's text (map replaced).
        _, out = self.swaks_direct("someone@legacy.example.net")
        self.assertIn("Recipient address rejected: legacy route kept", out)

    def swaks_direct(self, to):
        p = harness.run(["swaks", "--server", "127.0.0.4:25", "--from", "bob@example.org", "--to", to,
                         "--body", "hello"], check=False)
        return p.returncode, p.stdout.decode(errors="replace")

    def read_as(self, member, name, post):
        home = self.member_home(member)
        shutil.copy(post, os.path.join(home, "post.eml"))
        out = os.path.join(home, "post.txt")
        if os.path.exists(out):
            os.unlink(out)
        self.run_block(name, cwd=home, env={"HOME": home})
        text = harness.read(out).decode(errors="replace")
        self.assertIn(self.body, text, "%s could not read the post by %s" % (member, name))

    def read_by_every_method(self):
        alice, bob = self.posts["alice"], self.posts["bob"]
        self.read_as("bob", "read-F", bob)
        self.read_as("alice", "read-E", alice)
        self.read_as("bob", "read-G", bob)
        self.read_as("alice", "read-S", alice)
        self.read_as("bob", "read-blind", bob)
        self.run_block("export-key", cwd=self.admin_dir, env=self.admin_env, prelude=self.admin_prelude)
        for f in ("team.p12", "team-p12.pass"):
            shutil.copy(os.path.join(self.admin_dir, f), os.path.join(self.member_home("alice"), ".blindlist", f))
        self.read_as("alice", "read-C", alice)

    def mailbox_command_recipe(self):
        marked = [n for n in self.names if n.startswith("file ")]
        self.assertEqual(marked, ["file /usr/local/bin/blindlist-mailbox"])
        path = marked[0][5:]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        harness.write(path, self.block(marked[0]))
        os.chmod(path, 0o755)
        # carol does not use blindlist: her mail is delivered even with groupd down and /tmp unusable.
        sh("systemctl stop blindlist-groupd", cwd=self.src, env=self.env)
        carol = self.member_home("carol")
        shutil.rmtree(os.path.join(carol, ".blindlist"))
        p = subprocess.run([path], input=harness.read(self.posts["bob"]), cwd=carol, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120,
                           env=dict(self.env, HOME=carol, SENDER="x@legacy.example.net",
                                    RECIPIENT="carol@example.org", TMPDIR="/nonexistent"))
        self.assertEqual(p.returncode, 0, p.stderr)
        got = glob.glob(os.path.join(carol, "Maildir", "new", "*.lda"))
        self.assertEqual(len(got), 1)
        self.assertEqual(harness.read(got[0]), harness.read(self.posts["bob"]))
        sh("systemctl start blindlist-groupd", cwd=self.src, env=self.env)
        lh.wait_for(lambda: sh("curl -sf --cacert /etc/blindlist/tls-ca.crt "
                               "https://groupd.example.org:8443/healthz", cwd=self.src, env=self.env,
                               check=False).returncode == 0, 60, "groupd back")
        # alice uses it: the post arrives spliced, ordinary S/MIME for her own key.
        alice = self.member_home("alice")
        harness.write(os.path.join(alice, ".blindlist", "group"), LIST + "\n")
        p = subprocess.run([path], input=harness.read(self.posts["alice"]), cwd=alice, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120,
                           env=dict(self.env, HOME=alice, SENDER="team-bounces@lists.example.org",
                                    RECIPIENT="alice@example.org"))
        self.assertEqual(p.returncode, 0, p.stderr)
        got = glob.glob(os.path.join(alice, "Maildir", "new", "*.lda"))
        self.assertEqual(len(got), 1)
        plain = harness.osl_decrypt(got[0], os.path.join(alice, ".blindlist", "me.key"),
                                    os.path.join(alice, ".blindlist", "me.crt"))
        self.assertIn(self.body.encode(), plain)

    def start_up_refusals(self):
        """A loopback CRL URL, a missing [store] url, starttls = required without ca: each stops its daemon."""
        def refused(binary, config, words):
            p = harness.run([binary, "--config", config], check=False, timeout=60)
            self.assertEqual(p.returncode, 1, p.stderr)
            for w in words:
                self.assertIn(w, p.stderr.decode())
        certd = harness.read("/etc/blindlist/certd.toml", "r")
        bad = harness.write(os.path.join(self.work, "certd-loopback.toml"),
                            certd.replace("https://certd.example.org:8444/v1/crl", "https://127.0.0.1:8444/v1/crl"))
        refused("/usr/bin/blindlist-certd", bad, ["crl_url", "points at loopback"])
        groupd = harness.read("/etc/blindlist/groupd.toml", "r")
        bad = harness.write(os.path.join(self.work, "groupd-nostore.toml"),
                            re.sub(r'(?m)^url = "sqlite:.*"$', "", groupd))
        refused("/usr/bin/blindlist-groupd", bad, ["[store] url is required"])
        listd = harness.read("/etc/blindlist/listd.toml", "r")
        bad = harness.write(os.path.join(self.work, "listd-starttls.toml"),
                            listd.replace('starttls = "if-offered"', 'starttls = "required"'))
        refused("/usr/bin/blindlist-listd", bad, ['starttls = "required" needs ca'])


def outer():
    """Re-runs this script as root in new mount, network and PID namespaces."""
    if os.geteuid() != 0:
        harness.peer_missing("the operator test runs the doc's commands as root")
    for tool in ("unshare", "setpriv", "postfix", "postmap", "swaks", "curl", "ip"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            harness.peer_missing("%s is not installed (scripts/setup installs it)" % tool)
    env = dict(os.environ, **{INNER: "1"})
    p = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc",
                        "--propagation", "private", sys.executable] + sys.argv, env=env)
    return p.returncode


class OuterTest(harness.TestCase):
    def test_in_namespaces(self):
        self.assertEqual(outer(), 0, "the operator test failed inside its namespaces (its output is above)")


if __name__ == "__main__":
    if os.environ.get(INNER) != "1":
        # Only the wrapper runs here; the real test runs in the namespaces.
        del OperatorTest
    else:
        del OuterTest
    harness.main()
