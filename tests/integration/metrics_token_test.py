#!/usr/bin/env python3
"""/metrics behind a bearer token (`[metrics] token_file`) in groupd, certd and listd.

Usage: metrics_token_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Checked on each daemon, with the token file set: the right token gets 200 and the
metrics; no token, a wrong token, another scheme and wrong tokens of many lengths all
get 401 with the same JSON body (the same length), `WWW-Authenticate: Bearer`
(error="invalid_token" only when a token was sent, as RFC 6750 asks), and no metric;
/healthz stays open. SIGHUP re-reads the file: the new token works and the old one no
longer does; a reload with an unusable file keeps the token in force. At start-up a
token file readable by others, a missing one or a short token stops the daemon with a
one-line error naming the file.
"""

import http.client
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@example.org"
WRONG = ["x", "A" * 31, "B" * 64, "C" * 65, "0" * 200, "Z" * 1500]


def write_token(path, token, mode=0o600):
    harness.write(path, token + "\n")
    os.chmod(path, mode)


class TokenDeployment(harness.Deployment):
    """groupd and certd with [metrics] token_file, the rest as the harness makes them."""

    def __init__(self, name, token_file):
        super().__init__(name)
        self.token_file = token_file

    def _write_toml(self, path, sections):
        if os.path.basename(path) in ("groupd.toml", "certd.toml"):
            sections = dict(sections, metrics={"token_file": self.token_file})
        return super()._write_toml(path, sections)


class MetricsTokenTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.tempdir("metrics-token-work")
        cls.token = "t0k3n-" + os.urandom(24).hex()
        cls.token_file = os.path.join(cls.work, "metrics.token")
        write_token(cls.token_file, cls.token, 0o640)
        d = cls.d = TokenDeployment("metricstoken", cls.token_file).start()
        d.create_group(LIST, "p256")
        cls.l = lh.Listd(d, "metricstoken")
        cls.l.sections["metrics"] = {"token_file": cls.token_file}
        cls.l.write_config()
        cls.l.start()

    # -- one GET /metrics per daemon: (status, headers, body)
    def groupd(self, headers=None):
        r = self.d.g.get("/metrics", headers=headers)
        return r.status, r.headers, r.body

    def certd(self, headers=None):
        r = self.d.c.get("/metrics", headers=headers)
        return r.status, r.headers, r.body

    def listd(self, headers=None, path="/metrics"):
        c = http.client.HTTPConnection("127.0.0.1", self.l.status_port, timeout=30)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def daemons(self):
        return (("groupd", self.groupd), ("certd", self.certd), ("listd", self.listd))

    @staticmethod
    def bearer(token):
        return {"Authorization": "Bearer " + token}

    def assert_refused(self, answer, name, *, sent_token):
        status, headers, body = answer
        self.assertEqual(status, 401, (name, body))
        self.assertEqual(json.loads(body)["error"], "unauthenticated", (name, body))
        self.assertNotIn(b"# TYPE", body, name)
        challenge = headers.get("www-authenticate", "")
        self.assertTrue(challenge.startswith("Bearer "), (name, challenge))
        self.assertEqual('error="invalid_token"' in challenge, sent_token, (name, challenge))
        return body

    def test_right_token_reads_the_metrics(self):
        for name, get in self.daemons():
            status, _, body = get(self.bearer(self.token))
            self.assertEqual(status, 200, (name, body))
            self.assertIn(b"# TYPE ", body, name)

    def test_missing_and_wrong_tokens_get_one_answer(self):
        for name, get in self.daemons():
            missing = self.assert_refused(get(), name, sent_token=False)
            bodies = {missing}
            for wrong in WRONG + [self.token[:-1], self.token + "x", self.token.upper()]:
                bodies.add(self.assert_refused(get(self.bearer(wrong)), name, sent_token=True))
            # Not a bearer token at all: as if none was sent.
            bodies.add(self.assert_refused(get({"Authorization": "Basic " + self.token}), name,
                                           sent_token=False))
            self.assertEqual(len(bodies), 1, (name, bodies))

    def test_healthz_needs_no_token(self):
        self.assertEqual(self.d.g.get("/healthz").status, 200)
        self.assertEqual(self.d.c.get("/healthz").status, 200)
        self.assertEqual(self.listd(path="/healthz")[0], 200)

    def test_reload_reads_the_file_again(self):
        daemons = {"groupd": self.d.groupd, "certd": self.d.certd, "listd": self.l.daemon}
        new = "n3w-" + os.urandom(24).hex()
        try:
            write_token(self.token_file, new, 0o600)
            for d in daemons.values():
                d.proc.send_signal(signal.SIGHUP)
            for name, get in self.daemons():
                lh.wait_for(lambda: get(self.bearer(new))[0] == 200, 30, name + " to take the new token")
                self.assert_refused(get(self.bearer(self.token)), name, sent_token=True)
            # An unusable file on reload: the token in force stays, and the log says why.
            os.chmod(self.token_file, 0o644)
            for d in daemons.values():
                d.proc.send_signal(signal.SIGHUP)
            for name, d in daemons.items():
                lh.wait_for(lambda: "token_file" in d.log_text() and "0644" in d.log_text(), 30,
                            name + " to log the refused token file")
            for name, get in self.daemons():
                self.assertEqual(get(self.bearer(new))[0], 200, name)
        finally:
            write_token(self.token_file, self.token, 0o640)
            for d in daemons.values():
                d.proc.send_signal(signal.SIGHUP)
            for name, get in self.daemons():
                lh.wait_for(lambda: get(self.bearer(self.token))[0] == 200, 30, name + " to take the token back")

    def start_fails(self, argv, config):
        p = subprocess.run(argv + ["--config", config], capture_output=True, timeout=60,
                           env=dict(os.environ, BLINDLIST_CA_PASSPHRASE=self.d.CA_PASSPHRASE))
        self.assertNotEqual(p.returncode, 0, p.stderr)
        return p.stderr.decode(errors="replace")

    def test_a_bad_token_file_stops_the_start(self):
        bad = os.path.join(self.work, "bad.token")
        configs = {}
        for name, src in (("groupd", self.d.groupd_config_file), ("certd", self.d.certd_config),
                          ("listd", self.l.config)):
            text = harness.read(src, "r").replace(json.dumps(self.token_file), json.dumps(bad))
            # Another port, so a start that wrongly succeeds cannot disturb the running daemon.
            text = text.replace('listen = "127.0.0.1:%d"' % self.l.smtp_port,
                                'listen = "127.0.0.1:%d"' % lh.free_port())
            configs[name] = os.path.join(self.work, name + "-bad.toml")
            harness.write(configs[name], text)
        argv = {"groupd": [harness.groupd_bin()], "certd": [harness.certd_bin()], "listd": [lh.listd_bin()]}
        cases = [("readable by others", "T" * 64, 0o644, "0644"),
                 ("group-writable", "T" * 64, 0o660, "0660"),
                 ("too short", "T" * 31, 0o600, "at least 32"),
                 ("not a b64token", "T" * 40 + " x", 0o600, "letters, digits")]
        for what, token, mode, expected in cases:
            write_token(bad, token, mode)
            for name in argv:
                err = self.start_fails(argv[name], configs[name])
                self.assertIn(bad, err, (name, what))
                self.assertIn(expected, err, (name, what))
        os.unlink(bad)
        for name in argv:
            err = self.start_fails(argv[name], configs[name])
            self.assertIn(bad, err, (name, "missing"))


if __name__ == "__main__":
    harness.main()
