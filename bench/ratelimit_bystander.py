#!/usr/bin/env python3
"""The bystander under a member's bulk flood (issue 11, item 3), measured.

Usage: ratelimit_bystander.py BLINDLIST GROUPD CERTD [--seconds S] [--items N] [--threads T]

Starts groupd on loopback with the default limits (rate_per_second 50,
rate_burst 100), one RSA-3072 group and one member token. T threads (default 4)
send `bulk` calls of N `blind` items (default 500; if groupd answers 413, the
largest size it names) with that one token for S seconds (default 30), while
another thread, from another loopback address, asks /healthz every 50 ms.
Prints one JSON object: the private-key operations done (items answered 200),
their rate, the answers by status, and the /healthz latency (median, p99, max).
Compare a build before and after: docs/benchmarks.md.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

G = "bench-rsa@example.org"


def post(ep, path, body, token, source="127.0.0.1"):
    conn = http.client.HTTPSConnection("127.0.0.1", ep.port, context=ep.context(), timeout=300,
                                       source_address=(source, 0))
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs=3)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    for name, path in zip(("blindlist", "groupd", "certd"), a.binaries):
        harness.BINARIES[name] = os.path.abspath(path)
    limits = {"max_body_bytes": 1048576, "rate_per_second": 50, "rate_burst": 100}
    d = harness.Deployment("bystander", with_certd=False, limits=limits).start()
    try:
        tmp = harness.tempdir("bystander-work")
        d.create_group(G, "rsa3072")
        token = d.admin("member", "add", G, "flood@example.org", "--token")["token"]
        cert = harness.write(os.path.join(tmp, "g.crt"), d.g.get("/v1/groups/%s/certificate" % quote(G)).body)
        msg = harness.write(os.path.join(tmp, "m.eml"), harness.rfc5322("bench", "bystander"))
        out = os.path.join(tmp, "p.eml")
        d.bl("encrypt", "--to", cert, "-i", msg, "-o", out)
        ri = b64(harness.recipient_infos(harness.cms_of(out))[0])
        path = "/v1/groups/%s/bulk" % quote(G)
        items = a.items
        status, body = post(d.g, path, {"requests": []}, token)
        probe = [{"operation": "blind", "recipient_info": ri, "blinded": b64(b"\x01" + os.urandom(383))}
                 for _ in range(items)]
        status, body = post(d.g, path, {"requests": probe}, token)
        if status == 413:
            m = re.search(rb"at most (\d+)", body)
            items = int(m.group(1)) if m else 100
        time.sleep(3)  # let the bucket refill after the probe

        stop = time.monotonic() + a.seconds
        lock = threading.Lock()
        counts = {"ops": 0, "statuses": {}}
        latencies = []

        def flood():
            while time.monotonic() < stop:
                reqs = [{"operation": "blind", "recipient_info": ri, "blinded": b64(b"\x01" + os.urandom(383))}
                        for _ in range(items)]
                st, b = post(d.g, path, {"requests": reqs}, token)
                with lock:
                    counts["statuses"][st] = counts["statuses"].get(st, 0) + 1
                    if st == 200:
                        counts["ops"] += sum(1 for x in json.loads(b)["responses"] if x["status"] == 200)

        def bystander():
            while time.monotonic() < stop:
                t0 = time.monotonic()
                conn = http.client.HTTPSConnection("127.0.0.1", d.g.port, context=d.g.context(), timeout=300,
                                                   source_address=("127.0.0.2", 0))
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                latencies.append(time.monotonic() - t0)
                time.sleep(0.05)

        started = time.monotonic()
        threads = [threading.Thread(target=flood) for _ in range(a.threads)] + [threading.Thread(target=bystander)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        lat = sorted(latencies)
        print(json.dumps({
            "seconds": round(elapsed, 1), "threads": a.threads, "items_per_bulk": items,
            "private_key_ops": counts["ops"], "ops_per_second": round(counts["ops"] / elapsed, 1),
            "bulk_answers": counts["statuses"],
            "healthz": {"n": len(lat), "median_ms": round(statistics.median(lat) * 1000, 1),
                        "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1), "max_ms": round(lat[-1] * 1000, 1)},
        }, indent=2))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
