#!/usr/bin/env python3
"""The monitoring metrics an operator alerts on, from the real daemons' /metrics.

Usage: monitoring_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Checked, with sane values: certificate expiry gauges (seconds until notAfter) in
groupd (TLS server, deployment CA, membership CA, each group's current certificate,
including a rotated one), certd (TLS server, membership CA) and listd (each list's
current certificate, groupd CA); a configured certificate that cannot be read shows as
*_certificate_unreadable; listd's oldest queued post grows while the smarthost is down
and is 0 once the queue drains; pipe-mode posts (another process) are counted when the
daemon picks them up, apart from SMTP ones.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@example.org"
DAY = 86400


def gauges(text, name):
    """{labels-string: value} for metric `name` in Prometheus text."""
    out = {}
    for m in re.finditer(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


def expiry(text, prefix, kind, name=None):
    for labels, value in gauges(text, prefix + "_certificate_expiry_seconds").items():
        if 'certificate="%s"' % kind in labels and (name is None or 'name="%s"' % name in labels):
            return value
    raise AssertionError("no %s expiry gauge for %s %s in:\n%s" % (prefix, kind, name, text))


class MonitoringTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("monitoring").start()
        cls.work = harness.tempdir("monitoring-work")
        d.create_group(LIST, "p256")
        cls.cert = os.path.join(cls.work, "team.crt")
        d.public_certificate(LIST, cls.cert)
        cls.sink_port = lh.free_port()
        cls.sink = lh.Sink(os.path.join(cls.work, "sink"), port=cls.sink_port)
        cls.l = lh.Listd(d, "monitoring", delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % cls.sink_port,
                                                    "starttls": "never"},
                         groupd={"url": d.g.url(), "ca": d.pki.crt("tls-ca"),
                                 "client_certificate": os.path.join(cls.work, "missing.crt"),
                                 "client_key": os.path.join(cls.work, "missing.key")})
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.cert, "--posting", "open")
        cls.l.lists("member", "add", LIST, "alice@example.org")
        cls.l.start()

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()

    def test_certificate_expiry_in_groupd_and_certd(self):
        text = self.d.g.get("/metrics").body.decode()
        for kind in ("tls-server", "deployment-ca", "membership-ca"):
            v = expiry(text, "groupd", kind)
            self.assertTrue(0 < v <= 3650 * DAY, (kind, v))
        self.assertTrue(29 * DAY < expiry(text, "groupd", "tls-server") <= 30 * DAY)
        self.assertTrue(29 * DAY < expiry(text, "groupd", "group", LIST) <= 30 * DAY)
        text = self.d.c.get("/metrics").body.decode()
        self.assertTrue(29 * DAY < expiry(text, "certd", "tls-server") <= 30 * DAY)
        self.assertTrue(0 < expiry(text, "certd", "membership-ca") <= 3650 * DAY)

    def test_a_rotated_group_shows_its_new_certificate(self):
        rot = "rotated@example.org"
        self.d.create_group(rot, "p256")
        before = self.d.g.get("/metrics").body.decode().count('name="%s"' % rot)
        self.assertEqual(before, 1)
        self.d.admin("group", "rotate", rot)
        text = self.d.g.get("/metrics").body.decode()
        self.assertEqual(text.count('name="%s"' % rot), 1, "one gauge: the current certificate")
        self.assertTrue(29 * DAY < expiry(text, "groupd", "group", rot) <= 30 * DAY)

    def test_listd_certificates_queue_age_and_pipe_posts(self):
        status, body = self.l.http("/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        self.assertTrue(29 * DAY < expiry(text, "listd", "list", LIST) <= 30 * DAY)
        self.assertTrue(0 < expiry(text, "listd", "groupd-ca") <= 30 * DAY)
        unreadable = gauges(text, "listd_certificate_unreadable")
        self.assertEqual([v for k, v in unreadable.items() if 'certificate="groupd-client"' in k], [1.0], text)
        self.assertEqual(gauges(text, "listd_spool_oldest_post_age_seconds"), {"": 0.0})

        # The smarthost is down: posts wait, the oldest one's age grows.
        rc, out = lh.swaks(self.l.smtp_port, LIST, lh.make_post(self.work, self.cert, "smtp-1", "hello", to=LIST))
        self.assertEqual(rc, 0, out)
        p = self.l.pipe(LIST, lh.make_post(self.work, self.cert, "pipe-1", "hello", to=LIST))
        self.assertEqual(p.returncode, 0, p.stderr)
        posted = time.time()

        def received():
            t = self.l.http("/metrics")[1].decode()
            g = gauges(t, "listd_posts_received_total")
            return g if len(g) == 2 else None
        got = lh.wait_for(received, 60, "both posts picked up")
        self.assertEqual(got, {'{intake="pipe"}': 1.0, '{intake="smtp-lmtp"}': 1.0})
        time.sleep(2.5)
        text = self.l.http("/metrics")[1].decode()
        (age,) = gauges(text, "listd_spool_oldest_post_age_seconds").values()
        self.assertTrue(2 <= age <= time.time() - posted + 2, age)

        # The smarthost comes up: the queue drains and the gauge goes back to 0.
        self.sink.start()
        lh.wait_for(lambda: len(self.sink.deliveries()) >= 2, 120, "delivery")
        lh.wait_for(lambda: gauges(self.l.http("/metrics")[1].decode(),
                                   "listd_spool_oldest_post_age_seconds") == {"": 0.0}, 60, "an empty queue")
        # Counted once each, not again at each retry.
        text = self.l.http("/metrics")[1].decode()
        self.assertEqual(gauges(text, "listd_posts_received_total"),
                         {'{intake="pipe"}': 1.0, '{intake="smtp-lmtp"}': 1.0})


if __name__ == "__main__":
    harness.main()
