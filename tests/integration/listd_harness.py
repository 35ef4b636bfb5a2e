"""Helpers for listd's integration tests: the real blindlist-listd, a real SMTP
sink (Debian's python3-aiosmtpd, run by /usr/bin/python3), swaks, and posts
made with `openssl cms -encrypt` to a list certificate served by groupd.

The listd binary is the fourth argument of the script (after blindlist, groupd
and certd) or BLINDLIST_LISTD.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SINK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_sink.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # has python3-aiosmtpd; a virtualenv python may not


def listd_bin():
    return harness._binary("listd", "BLINDLIST_LISTD")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout=120, what="condition", interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ds waiting for %s (last: %r)" % (timeout, what, last))


class Sink:
    """The smarthost: aiosmtpd recording every (message, recipient) it accepts."""

    def __init__(self, directory, rejects=None, port=0, xverp=False, data_reply=None, data_reply_match=None,
                 refuse_bare_lf=False, data_reply_echo=False, data_defer_match=None, smtputf8="on"):
        self.dir = directory
        self.rejects = dict(rejects or {})
        self.flags = (["--xverp"] if xverp else []) + (["--data-reply", data_reply] if data_reply else []) + \
            (["--data-reply-match", data_reply_match] if data_reply_match else []) + \
            (["--refuse-bare-lf"] if refuse_bare_lf else []) + \
            (["--data-reply-echo"] if data_reply_echo else []) + \
            (["--data-defer-match", data_defer_match] if data_defer_match else []) + \
            ["--smtputf8", smtputf8]  # refuse_bare_lf: 550 5.6.0 to bare LF or CR
        self.port = port or free_port()
        self.proc = None

    def start(self):
        port_file = os.path.join(self.dir, "sink.port")
        os.makedirs(self.dir, exist_ok=True)
        if os.path.exists(port_file):
            os.unlink(port_file)
        args = [SYSTEM_PYTHON, SINK_SCRIPT, "--dir", self.dir, "--port-file", port_file,
                "--port", str(self.port)]
        for addr, code in self.rejects.items():
            args += ["--reject", "%s=%s" % (addr, code)]
        args += self.flags
        with open(os.path.join(self.dir, "sink.log"), "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(port_file) or self.proc.poll() is not None, 60, "the SMTP sink")
        if self.proc.poll() is not None:
            raise AssertionError("SMTP sink failed:\n" + harness.read(os.path.join(self.dir, "sink.log")).decode())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None

    def deliveries(self):
        path = os.path.join(self.dir, "deliveries.jsonl")
        if not os.path.exists(path):
            return []
        out = []
        for line in harness.read(path, "r").splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def message(self, name):
        return harness.read(os.path.join(self.dir, name))


class Listd:
    """One blindlist-listd with its own config, spool and list database."""

    def __init__(self, dep, name, *, delivery=None, groupd=None, unsafe=None, smtp=None, store_url=None,
                 lmtp=True, smtp_port=0, spool=None):
        self.dep = dep
        self.name = name
        self.dir = harness.tempdir("listd-" + name)
        self.store_url = store_url or "sqlite:" + os.path.join(self.dir, "lists.db")
        self.spool = spool or os.path.join(self.dir, "spool")
        self.smtp_port = smtp_port or free_port()
        self.lmtp = lmtp
        self.sections = {
            "smtp": {"listen": "127.0.0.1:%d" % self.smtp_port, "hostname": "lists.test",
                     "max_message_bytes": 2 * 1024 * 1024},
            "lmtp": {"listen": "127.0.0.1:0" if lmtp else ""},
            "status": {"listen": "127.0.0.1:0"},
            "store": {"url": self.store_url},
            "spool": {"directory": self.spool},
            "delivery": dict({"mode": "maildir", "maildir_root": os.path.join(self.dir, "maildirs"),
                              "retry_initial_seconds": 1, "retry_max_seconds": 2, "max_age_seconds": 3600},
                             **(delivery or {})),
            "groupd": dict(groupd or {}),
            "log": {"level": "info"},
        }
        for k, v in (smtp or {}).items():
            self.sections["smtp"][k] = v
        if unsafe:
            self.sections["unsafe"] = unsafe
        self.config = os.path.join(self.dir, "listd.toml")
        self.log_path = os.path.join(self.dir, "listd.log")
        self.daemon = None
        self.write_config()

    def write_config(self):
        self.dep._write_toml(self.config, self.sections)

    def start(self):
        pf = os.path.join(self.dir, "smtp.port")
        for f in ("lmtp.port", "status.port"):
            if os.path.exists(os.path.join(self.dir, f)):
                os.unlink(os.path.join(self.dir, f))
        argv = [listd_bin(), "--config", self.config, "--port-file", pf,
                "--status-port-file", os.path.join(self.dir, "status.port")]
        if self.lmtp:
            argv += ["--lmtp-port-file", os.path.join(self.dir, "lmtp.port")]
        self.daemon = harness.Daemon("listd-" + self.name, argv, {}, self.log_path, pf)
        self.daemon.start()
        assert self.daemon.port == self.smtp_port, (self.daemon.port, self.smtp_port)
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "status.port")), 60, "status port")
        self.status_port = int(harness.read(os.path.join(self.dir, "status.port"), "r"))
        if self.lmtp:
            wait_for(lambda: os.path.exists(os.path.join(self.dir, "lmtp.port")), 60, "lmtp port")
            self.lmtp_port = int(harness.read(os.path.join(self.dir, "lmtp.port"), "r"))
        self.dep._extra = getattr(self.dep, "_extra", []) + [self.daemon]
        return self

    def kill9(self):
        self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.proc.wait()
        self.daemon.exit_status = "killed"
        self.daemon.log.close()
        self.dep._extra = [d for d in self.dep._extra if d is not self.daemon]

    def stop(self):
        status = self.daemon.stop()
        self.dep._extra = [d for d in self.dep._extra if d is not self.daemon]
        return status

    def http(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def lists(self, *args, check=True, input=None):
        return harness.run([harness.blindlist_bin(), "list", "--store", self.store_url] + list(args),
                           check=check, input=input)

    def pipe(self, list_address, message, sender="alice@example.org"):
        return harness.run([listd_bin(), "deliver", "--config", self.config, "--list", list_address,
                            "--sender", sender], input=message, check=False)

    def log_text(self):
        return harness.read(self.log_path).decode(errors="replace") if os.path.exists(self.log_path) else ""


class ListdTestCase(harness.TestCase):
    """A test class around one listd: set_up_listd (called from setUpClass) starts a deployment
    (groupd, no certd) with one P-256 group `group`, saves its certificate as cls.cert, starts an
    SMTP sink as listd's smarthost (`sink`: the Sink's options; None for none, listd then delivers
    to Maildirs) and configures cls.l (not started) on a store of its own, PostgreSQL when the run
    asks for it. tearDownClass stops all of them."""

    l = None
    sink = None
    drop = None

    @classmethod
    def set_up_listd(cls, name, group, listd_name, *, cert_name="list.crt", sink=None, delivery=None,
                     **listd_options):
        d = cls.d = harness.Deployment(name, with_certd=False).start()
        cls.work = harness.tempdir(name + "-work")
        d.create_group(group, "p256")
        cls.cert = os.path.join(cls.work, cert_name)
        d.public_certificate(group, cls.cert)
        delivery = dict(delivery or {})
        if sink is not None:
            cls.sink = Sink(os.path.join(cls.work, "sink"), **sink).start()
            delivery = dict({"mode": "smtp", "smarthost": "127.0.0.1:%d" % cls.sink.port,
                             "starttls": "never"}, **delivery)
        store_url = None
        if harness.store_kind() == "postgres":
            store_url, cls.drop = harness._postgres_database(name.replace("-", "_"))
        cls.l = Listd(d, listd_name, store_url=store_url, delivery=delivery or None, **listd_options)
        return d

    @classmethod
    def tearDownClass(cls):
        if cls.l is not None and cls.l.daemon:
            cls.l.stop()
        if cls.sink is not None:
            cls.sink.stop()
        if cls.drop:
            cls.drop()


def swaks(port, to, data, *, sender="alice@example.org", protocol=None, extra=()):
    """Runs swaks; returns (exit status, transcript text)."""
    args = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--from", sender or "<>", "--data", "-",
            "--timeout", "120", "--hide-informational"]
    args += ["--to", to if isinstance(to, str) else ",".join(to)]
    if protocol:
        args += ["--protocol", protocol]
    args += list(extra)
    p = harness.run(args, input=data, check=False)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def make_post(work, cert, subject, body, *, sender="alice@example.org", to="list@example.org", cipher="-aes-256-gcm"):
    """An S/MIME post made by `openssl cms -encrypt` to `cert`, CRLF line endings."""
    n = len(os.listdir(work))
    ent = harness.write(os.path.join(work, "ent-%d.txt" % n), harness.entity(body))
    out = os.path.join(work, "post-%d.eml" % n)
    harness.openssl("cms", "-encrypt", "-binary", "-in", ent, "-out", out, "-from", sender, "-to", to,
                    "-subject", subject, cipher, cert)
    return harness.crlf(harness.read(out))


def smime_body(message):
    """The base64 body of an S/MIME message, joined (to compare ciphertexts)."""
    m = message.replace(b"\r\n", b"\n")
    head, _, body = m.partition(b"\n\n")
    return b"".join(body.split())
