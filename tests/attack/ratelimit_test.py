#!/usr/bin/env python3
"""Rate limits cannot be dodged, and unauthenticated callers cannot grow the store
(issue 11, item 3), against the real groupd and certd on loopback.

Usage: ratelimit_test.py BLINDLIST GROUPD CERTD [LISTD] [unittest args]

Each attack runs against a groupd (or certd) with a small bucket (rate_burst 5,
rate_per_second 0.01: nothing refills during a test) and from its own loopback
source address (127.0.0.N), so the tests do not share address buckets. Every
assertion counts answers, rows or metric values; none times anything.

- Made-up bearer tokens on the endpoints that never check tokens (the public
  group certificate, path B rewrap/exploder with the exploder's certificate, path G
  rewrap/certificate with a valid membership certificate, certd's /v1/crl) are
  limited exactly like requests without a token: the bucket is the credential the
  daemon verified, else the peer address, never a token it did not check.
- A bulk call of N blind items (N private-key operations) costs N units: a second
  one is refused with 429 before any work; one larger than the bucket is 413.
- A flood of refused requests (429s and 413s the HTTPS layer answers) adds a bounded
  number of audit rows, whose counts add up to the refusals.
- The audit pages backwards (?before=ID) and by time, so old records stay in view.
- 429s and transport refusals show in /metrics.
"""

import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

R = "rl-rsa@example.org"  # RSA-3072
BURST = 5
SMALL = {"max_body_bytes": 65536, "rate_per_second": 0.01, "rate_burst": BURST,
         "address_rate_factor": 4, "refusal_audit_seconds": 0.5}


def request(ep, method, path, body=None, *, source, token=None, cert=None, timeout=120):
    """One HTTPS request from loopback address `source` (127.0.0.N)."""
    h = {}
    if token:
        h["Authorization"] = "Bearer " + token
    if body is not None:
        body = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    conn = http.client.HTTPSConnection("127.0.0.1", ep.port, context=ep.context(cert), timeout=timeout,
                                       source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return harness.Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def made_up_token():
    return "blt_" + os.urandom(32).hex()


def metric_sum(text, name, **labels):
    """The sum of metric `name` over its series whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})? ([0-9.e+-]+)$" % re.escape(name), line)
        if not m:
            continue
        series = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(series.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


class RateLimits(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        # The main groupd is generous (it sets up); certd is the small one.
        d = cls.d = harness.Deployment("ratelimit", certd_limits=SMALL).start()
        cls.tmp = harness.tempdir("ratelimit-work")
        p = d.pki
        p.make_ca("member-ca", "Rate limit member CA")
        cls.exploder = (p.client("rl-exploder", "member-ca", "exploder"), p.key("rl-exploder"))
        d.create_group(R, "rsa3072")
        d.admin("exploder", "set", R, "--cert", cls.exploder[0])
        cls.tok = {name: d.admin("member", "add", R, "%s@example.org" % name, "--token")["token"]
                   for name in ("g", "bulk", "bulk2", "pager")}
        cls.cert = harness.write(os.path.join(cls.tmp, "r.crt"), d.g.get("/v1/groups/%s/certificate" % quote(R)).body)
        msg = harness.write(os.path.join(cls.tmp, "msg.eml"), harness.rfc5322("rl", "Rate limit body."))
        post = os.path.join(cls.tmp, "r.eml")
        d.bl("encrypt", "--to", cls.cert, "-i", msg, "-o", post)
        cls.ri = harness.recipient_infos(harness.cms_of(post))[0]
        # A membership certificate for path G, issued by certd to a member.
        csr = p.csr("rl-g", "ec", cn="g")
        r = d.c.post("/v1/groups/%s/certificates" % quote(R), {"csr": harness.read(csr, "r")}, token=cls.tok["g"])
        assert r.status == 201, r
        cls.membership_cert = r.json["certificate"]
        cls.membership_key = p.key("rl-g")
        cls.small, cls.ep = d.extra_groupd("small", dict(SMALL))
        cls.next_source = 10

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def source(cls):
        cls.next_source += 1
        return "127.0.0.%d" % cls.next_source

    def statuses(self, n, send):
        return [send(i).status for i in range(n)]

    # -- made-up tokens buy no fresh bucket
    def test_made_up_tokens_on_token_free_endpoints_are_limited_like_no_token(self):
        ri = {"recipient_info": b64(self.ri), "reason": "rl"}
        path_g = dict(ri, certificate=self.membership_cert,
                      proof=harness.possession_proof(R, [ri["recipient_info"]], self.membership_key))
        endpoints = {
            "groupd certificate": (self.ep, "GET", "/v1/groups/%s/certificate" % quote(R), None, None),
            "groupd rewrap/exploder (path B)": (self.ep, "POST", "/v1/groups/%s/rewrap/exploder" % quote(R), ri,
                                                self.exploder),
            "groupd rewrap/certificate (path G)": (self.ep, "POST", "/v1/groups/%s/rewrap/certificate" % quote(R),
                                                   path_g, None),
            "certd crl": (self.d.c, "GET", "/v1/crl", None, None),
        }
        n = 4 * BURST
        for name, (ep, method, path, body, cert) in endpoints.items():
            with self.subTest(endpoint=name):
                # Made-up tokens first, while the credential's bucket (path B: the exploder's) is full.
                src = self.source()
                made_up = self.statuses(n, lambda _: request(ep, method, path, body, source=src, cert=cert,
                                                             token=made_up_token()))
                self.assertNotIn(500, made_up, made_up)
                self.assertLessEqual(n - made_up.count(429), BURST,
                                     "made-up tokens dodged the limit: %r" % made_up)
                # The same without a token, from another address: limited too.
                src = self.source()
                none = self.statuses(n, lambda _: request(ep, method, path, body, source=src, cert=cert))
                self.assertGreaterEqual(none.count(429), n - BURST, none)

    def test_bogus_tokens_on_a_token_endpoint_cost_few_lookups(self):
        # Each 401 is a store lookup; after the burst of failures the address waits (429).
        src = self.source()
        got = self.statuses(40, lambda _: request(self.ep, "POST", "/v1/groups/%s/unwrap" % quote(R),
                                                  {"recipient_info": b64(self.ri)}, source=src,
                                                  token=made_up_token()))
        self.assertLessEqual(got.count(401), BURST, got)
        self.assertEqual(got.count(401) + got.count(429), len(got), got)

    # -- bulk is charged per item
    def blind_items(self, n):
        # RSA blind: any value in 2..n-1 of the modulus length; 0x01 first keeps it below n.
        return [{"operation": "blind", "recipient_info": b64(self.ri), "blinded": b64(b"\x01" + os.urandom(383))}
                for _ in range(n)]

    def bulk(self, token, n, src):
        return request(self.ep, "POST", "/v1/groups/%s/bulk" % quote(R), {"requests": self.blind_items(n)},
                       source=src, token=token)

    def test_bulk_is_charged_one_unit_per_item(self):
        src = self.source()
        r = self.bulk(self.tok["bulk"], BURST, src)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["status"] for x in r.json["responses"]], [200] * BURST, r.json)
        # The bucket is empty now: the next bulk, and even a single item, is refused before any work.
        r = self.bulk(self.tok["bulk"], BURST, src)
        self.assertRefused(r, 429, "rate-limited")
        self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
        r = self.bulk(self.tok["bulk"], 1, src)
        self.assertRefused(r, 429, "rate-limited")
        # Another member has a bucket of its own.
        r = self.bulk(self.tok["bulk2"], 2, self.source())
        self.assertEqual(r.status, 200, r)
        # A bulk larger than a full bucket could never pass: 413, saying how many may.
        r = self.bulk(self.tok["bulk2"], BURST + 1, self.source())
        body = self.assertRefused(r, 413, "too-many")
        self.assertIn(str(BURST), body["message"])

    # -- refusals: counted, audited in aggregate
    def test_refusal_flood_adds_a_bounded_number_of_audit_rows(self):
        # Its own groupd, so that stopping it flushes its tally (the interval is long).
        daemon, ep = self.d.extra_groupd("flood", dict(SMALL, refusal_audit_seconds=3600))
        before = len(self.d.audit_rows_direct())
        # Oversized first: 413s the HTTPS layer answers before groupd sees the request.
        oversized = [ep.oversized("POST", "/v1/groups/%s/rewrap" % quote(R), 70000).status for _ in range(50)]
        self.assertEqual(oversized, [413] * 50)
        src = self.source()
        flood = 300
        got = self.statuses(flood, lambda _: request(ep, "GET", "/v1/groups/%s/certificate" % quote(R), source=src,
                                                     token=made_up_token()))
        # Each naming another group: distinct audit keys, still bounded.
        got += self.statuses(flood, lambda i: request(ep, "GET", "/v1/groups/g%d@example.org/certificate" % i,
                                                      source=src))
        limited = got.count(429)
        self.assertEqual(daemon.stop(), 0)
        # This flood's rows (other daemons on the store flush their own tallies meanwhile).
        rows = [x for x in self.d.audit_rows_direct()[before:] if x["daemon"] == "groupd" and (
            x["caller"] in ("ip:" + src, "*", "anonymous") or (x["caller"] == "ip:127.0.0.1" and x["operation"] == "rewrap"))]
        # Admitted requests (at most the address burst) have a row each; refusals one per
        # (caller, group, operation, result), at most 256 distinct ones and an overflow row.
        self.assertLessEqual(len(rows), 4 * BURST + 257 + 1, "the flood grew the audit by %d rows" % len(rows))
        self.assertGreaterEqual(limited, 2 * flood - 4 * BURST, got)
        counted = {}
        for row in rows:
            m = re.match(r"^count:(\d+)$", row["reason"])
            if m:
                counted[row["result"]] = counted.get(row["result"], 0) + int(m.group(1))
        # "*": the overflow record, once 256 distinct keys are counted.
        self.assertEqual(counted.get("rate-limited", 0) + counted.get("*", 0), limited, rows[:20])
        self.assertEqual(counted.get("body-too-large", 0), 50, rows[:20])
        # The group's own flood is one aggregated record, from the address.
        mine = [x for x in rows if x["group"] == R and x["result"] == "rate-limited"]
        self.assertEqual(len(mine), 1, mine)
        self.assertEqual(mine[0]["caller"], "ip:" + src)

    def test_429s_and_transport_refusals_show_in_metrics(self):
        src = self.source()
        got = self.statuses(3 * BURST, lambda _: request(self.ep, "GET", "/v1/groups/%s/certificate" % quote(R),
                                                         source=src, token=made_up_token()))
        for _ in range(3):
            self.assertEqual(self.ep.oversized("POST", "/v1/groups/%s/unwrap" % quote(R), 70000).status, 413)
        text = self.ep.get("/metrics").body.decode()
        self.assertGreaterEqual(metric_sum(text, "groupd_rate_limited_total"), got.count(429), text[-3000:])
        self.assertGreaterEqual(metric_sum(text, "groupd_refused_total", result="body-too-large"), 3, text[-3000:])
        src = self.source()
        got = self.statuses(3 * BURST, lambda _: request(self.d.c, "GET", "/v1/crl", source=src,
                                                         token=made_up_token()))
        self.assertGreater(got.count(429), 0, got)
        text = self.d.c.get("/metrics").body.decode()
        self.assertGreaterEqual(metric_sum(text, "certd_rate_limited_total"), got.count(429), text[-3000:])

    # -- the audit pages, so old records stay in view
    def test_audit_pages_back_to_the_oldest_record(self):
        d = self.d
        g = "rl-paged@example.org"
        d.create_group(g, "p256")
        oldest = d.audit(g)[-1]
        for _ in range(30):
            r = d.g.get("/v1/groups/%s/members" % quote(g), token=d.admin_token)
            self.assertEqual(r.status, 200, r)
        seen = []
        url = "/v1/groups/%s/audit?limit=7" % quote(g)
        for _ in range(20):
            r = d.g.get(url, token=d.admin_token)
            self.assertEqual(r.status, 200, r)
            seen += r.json["audit"]
            if r.json.get("next_before") is None:
                break
            url = "/v1/groups/%s/audit?limit=7&before=%d" % (quote(g), r.json["next_before"])
        ids = [x["id"] for x in seen]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(len(ids), len(set(ids)))
        self.assertGreaterEqual(len(seen), 31)
        self.assertEqual(seen[-1]["operation"], oldest["operation"])
        self.assertEqual(seen[-1]["id"], oldest["id"])
        # A time window reaches it too: [since, until).
        r = d.g.get("/v1/groups/%s/audit?limit=10000&until=%d" % (quote(g), oldest["time"] + 1), token=d.admin_token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["audit"][-1]["id"], oldest["id"])
        self.assertTrue(all(x["time"] <= oldest["time"] for x in r.json["audit"]), r.json)
        r = d.g.get("/v1/groups/%s/audit?limit=10000&until=%d" % (quote(g), oldest["time"]), token=d.admin_token)
        self.assertEqual(r.json["audit"], [])
        r = d.g.get("/v1/groups/%s/audit?since=%d&limit=10000" % (quote(g), oldest["time"]), token=d.admin_token)
        # (Reading the audit is audited too: the pages read since then are in it as well.)
        self.assertTrue(set(ids) <= {x["id"] for x in r.json["audit"]}, r.json)
        for bad in ("before=abc", "limit=0", "since=-1", "before=1x"):
            r = d.g.get("/v1/groups/%s/audit?%s" % (quote(g), bad), token=d.admin_token)
            self.assertRefused(r, 400, "malformed-request")
        # The command line pages the same way.
        p = d.bl("admin", *d.server_args(token=d.admin_token), "--json", "audit", g, "--limit", "1",
                 "--before", str(seen[-2]["id"]))
        self.assertEqual([x["id"] for x in json.loads(p.stdout)["audit"]], [seen[-1]["id"]])


if __name__ == "__main__":
    harness.main()
