#!/usr/bin/env python3
"""End to end: does groupd's answer time over HTTPS depend on the RSA padding?

Usage: bench/oracle_timing_e2e.py BLINDLIST GROUPD CERTD [--rounds N] [--pool P]

Starts a real groupd (and certd) on loopback with tests/integration/harness.py, makes an
RSA-3072 group with a member and an exploder, and times, over one keep-alive TLS 1.3 connection
per caller, interleaved requests of the padding classes of tests/attack/oracle_test.py:
  a  valid PKCS#1 v1.5, 32-byte key    b  valid padding, 5- or 47-byte message
  c  invalid padding (block type 03)   d  a random integer below n    e  OAEP garbage
to POST .../unwrap (a member's token) and POST .../rewrap/exploder (the exploder's mTLS).
Each round sends one request of every class in a fresh random order. Per class: the status
and body lengths seen, median, p10, p90 of the round-trip time, and Welch's t against class a
(all samples, and with the pooled top 5% dropped). The round trip includes TLS, HTTP parsing,
the audit record's commit and the private-key operation, so it resolves far less than
bench_oracle_timing; it checks that nothing on the way adds a padding-dependent step.
"""

import http.client
import json
import math
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "attack"))
import harness  # noqa: E402
from harness import b64, quote  # noqa: E402
from oracle_test import RsaGroupKey, ktri, ktri_parts, pkcs1_type2  # noqa: E402

GROUP = "oracle-e2e@example.org"


def welch(x, y, trim):
    if trim:
        cut = sorted(x + y)[int(0.95 * (len(x) + len(y) - 1))]
        x = [v for v in x if v <= cut]
        y = [v for v in y if v <= cut]
    mx, my = statistics.fmean(x), statistics.fmean(y)
    vx, vy = statistics.variance(x), statistics.variance(y)
    return (mx - my) / math.sqrt(vx / len(x) + vy / len(y))


def quantile(v, q):
    s = sorted(v)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Caller:
    """One keep-alive HTTPS connection."""

    def __init__(self, endpoint, token=None, cert=None):
        self.conn = http.client.HTTPSConnection("127.0.0.1", endpoint.port, context=endpoint.context(cert),
                                                timeout=120)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token

    def post(self, path, body):
        data = json.dumps(body).encode()
        t0 = time.perf_counter_ns()
        self.conn.request("POST", path, body=data, headers=self.headers)
        r = self.conn.getresponse()
        payload = r.read()
        t1 = time.perf_counter_ns()
        return r.status, payload, t1 - t0


def main():
    args = sys.argv[1:]
    rounds, pool = 1000, 32
    rest = []
    while args:
        a = args.pop(0)
        if a == "--rounds":
            rounds = int(args.pop(0))
        elif a == "--pool":
            pool = int(args.pop(0))
        else:
            rest.append(a)
    for name, path in zip(["blindlist", "groupd", "certd"], rest):
        harness.BINARIES[name] = os.path.abspath(path)

    d = harness.Deployment("oracle-e2e", limits={"rate_per_second": 100000, "rate_burst": 100000}).start()
    try:
        p = d.pki
        p.make_ca("member-ca", "Bench member CA")
        exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        d.create_group(GROUP, "rsa3072")
        token = d.admin("member", "add", GROUP, "m@example.org", "--token")["token"]
        d.admin("exploder", "set", GROUP, "--cert", exploder[0])
        cert = d.f("group.crt")
        d.public_certificate(GROUP, cert)
        key = RsaGroupKey(harness.read(cert))
        k = key.k
        ent = harness.write(d.f("e.txt"), harness.entity("e2e"))
        post = harness.osl_encrypt(ent, d.f("post.smime"), cert)
        rid, alg = ktri_parts(harness.recipient_infos(harness.cms_of(post))[0])
        oaep_alg = bytes.fromhex("300b06092a864886f70d010107")  # RSAES-OAEP, default parameters
        v15 = lambda em: b64(ktri(rid, alg, key.raw_encrypt(em)))  # noqa: E731
        classes = {
            "a": [v15(pkcs1_type2(k, os.urandom(32))) for _ in range(pool)],
            "b": [v15(pkcs1_type2(k, os.urandom(5 if i % 2 else 47))) for i in range(pool)],
            "c": [v15(pkcs1_type2(k, os.urandom(32), block_type=3)) for _ in range(pool)],
            "d": [b64(ktri(rid, alg, key.random_below_n())) for _ in range(pool)],
            "e": [b64(ktri(rid, oaep_alg, key.random_below_n())) for _ in range(pool)],
        }
        targets = {
            "unwrap (member token)": (Caller(d.g, token=token), "/v1/groups/%s/unwrap" % quote(GROUP)),
            "rewrap/exploder (mTLS)": (Caller(d.g, cert=exploder), "/v1/groups/%s/rewrap/exploder" % quote(GROUP)),
        }
        print("oracle_timing_e2e: groupd over HTTPS, RSA-3072, %d interleaved rounds, pool %d" % (rounds, pool))
        for title, (caller, path) in targets.items():
            samples = {c: [] for c in classes}
            shapes = {c: set() for c in classes}
            for r in range(20):  # warm-up
                for c, ris in classes.items():
                    caller.post(path, {"recipient_info": ris[r % pool]})
            order = list(classes)
            for r in range(rounds):
                random.shuffle(order)
                for c in order:
                    status, payload, ns = caller.post(path, {"recipient_info": classes[c][r % pool]})
                    samples[c].append(ns / 1000.0)
                    shapes[c].add((status, tuple(sorted(json.loads(payload))), len(payload)))
            print("\n%s: round trip per request (microseconds)" % title)
            print("%-3s %6s %8s %8s %8s %8s %8s  %s" % ("cls", "n", "median", "p10", "p90", "t vs a", "t trim",
                                                       "statuses; JSON keys; body lengths"))
            for c, v in samples.items():
                st = sorted({s for s, _, _ in shapes[c]})
                keys = sorted({",".join(kk) for _, kk, _ in shapes[c]})
                lens = sorted({ln for _, _, ln in shapes[c]})
                print("%-3s %6d %8.0f %8.0f %8.0f %8.2f %8.2f  %s; %s; %s" % (
                    c, len(v), quantile(v, 0.5), quantile(v, 0.1), quantile(v, 0.9),
                    0.0 if c == "a" else welch(v, samples["a"], False),
                    0.0 if c == "a" else welch(v, samples["a"], True), st, " ".join(keys), lens))
            sys.stdout.flush()
    finally:
        d.stop()


if __name__ == "__main__":
    main()
