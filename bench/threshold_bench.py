#!/usr/bin/env python3
"""Threshold open against the single-node blind open, in the same run (docs/threshold.md).

Usage: threshold_bench.py BLINDLIST GROUPD CERTD LISTD [--posts N]

Five groupd nodes on loopback, each with its own SQLite store and master key. Groups: a P-256
group on node 1 (the single-node blind path), and p256-threshold groups k = 2 of n = 3,
k = 3 of n = 3, k = 2 of n = 5 and k = 3 of n = 5. For each, N posts made by openssl are opened
one after another with `blindlist open` (each answer checked), timed per post (wall clock, the
whole command: process start, TLS to every node asked, the crypto). The member asks exactly k
nodes (the first k), as a reader would who knows which nodes are up. Node CPU per request is
utime + stime of the node processes (from /proc) over the run, divided by the requests they
served; `openssl speed -seconds 3 ecdhp256` is the raw scalar-multiplication rate in the same
run. Prints one table; bench/threshold.sh keeps it under bench/results/<commit>/.
"""

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    args = sys.argv[1:]
    names = ["blindlist", "groupd", "certd", "listd"]
    while args and names and not args[0].startswith("-"):
        harness.BINARIES[names.pop(0)] = os.path.abspath(args.pop(0))
    posts = int(args[args.index("--posts") + 1]) if "--posts" in args else 20

    first = harness.Deployment("bthr1", with_certd=False)
    first._make_pki()
    pki = first.pki
    admin = (pki.client("bthr-admin", "tls-ca", "bench admin"), pki.key("bthr-admin"))
    fp = hashlib.sha256(harness.cert_der(admin[0])).hexdigest()
    first.admin_fingerprints = [fp]
    nodes = [first] + [harness.Deployment("bthr%d" % i, with_certd=False, pki=pki, admin_fingerprints=[fp])
                       for i in range(2, 6)]
    try:
        for d in nodes:
            d.start()
        urls = [d.g.url() for d in nodes]
        member = (pki.member("reader", "tls-ca", "ec", "reader@example.org"), pki.key("reader"))

        def admin_at(url, *a):
            p = first.bl("admin", "--server", url, "--ca", pki.crt("tls-ca"), "--client-cert", admin[0],
                         "--client-key", admin[1], "--json", *a)
            return json.loads(p.stdout)

        setups = [("blind (single node)", "blind@example.org", 1, 1)]
        for k, n in ((2, 3), (3, 3), (2, 5), (3, 5)):
            setups.append(("threshold k=%d n=%d" % (k, n), "t%d%d@example.org" % (k, n), k, n))
        rows = []
        for label, group, k, n in setups:
            if label.startswith("blind"):
                created = admin_at(urls[0], "group", "create", group, "--key-type", "p256")
            else:
                created = admin_at(urls[0], "group", "create", group, "--key-type", "p256-threshold",
                                   "--threshold", str(k), "--nodes", ",".join(urls[:n]))
            for url in urls[:n]:
                admin_at(url, "member", "add", group, "reader@example.org", "--cert", member[0])
            cert = first.f("%s.crt" % group)
            harness.write(cert, created["certificate"])
            files = []
            for i in range(posts):
                ent = first.f("%s-%d.txt" % (group, i))
                harness.write(ent, harness.entity("post %d of %s" % (i, group)))
                files.append(harness.osl_encrypt(ent, first.f("%s-%d.eml" % (group, i)), cert))
            asked = nodes[:k]
            cpu0 = [cpu_seconds(d.groupd.proc.pid) for d in asked]
            times = []
            for i, f in enumerate(files):
                argv = ["open", "--ca", pki.crt("tls-ca"), "--client-cert", member[0], "--client-key", member[1],
                        "--group", group, "--method", "blind" if label.startswith("blind") else "threshold",
                        "-i", f]
                for url in urls[:k]:
                    argv += ["--server", url]
                t0 = time.monotonic()
                p = first.bl(*argv)
                times.append(time.monotonic() - t0)
                assert ("post %d of %s" % (i, group)).encode() in p.stdout, p.stdout[:200]
            cpu = sum(cpu_seconds(d.groupd.proc.pid) - c for d, c in zip(asked, cpu0))
            # Each node answers a certificate GET and one operation per post.
            rows.append((label, k, statistics.median(times), statistics.mean(times),
                         cpu / (posts * len(asked))))
        speed = subprocess.run(["openssl", "speed", "-seconds", "3", "ecdhp256"], capture_output=True,
                               text=True, check=True).stdout
        ecdh_line = [l for l in speed.splitlines() if "ecdh (nistp256)" in l][-1]
        ecdh_rate = float(ecdh_line.split()[-1])
        base = rows[0][2]
        print("posts per configuration: %d; openssl speed ecdhp256: %.0f op/s (%.1f us/op)"
              % (posts, ecdh_rate, 1e6 / ecdh_rate))
        print("| read | nodes asked | median s/post | mean s/post | vs blind (median) | node CPU ms/request"
              " (TLS + HTTP + op) | raw ECDH ops in that CPU |")
        print("|---|---|---|---|---|---|---|")
        for label, k, med, mean, cpu in rows:
            print("| %s | %d | %.3f | %.3f | %.2fx | %.2f | %.1f |"
                  % (label, k, med, mean, med / base, cpu * 1e3, cpu * ecdh_rate))
        print()
        print(speed.strip().splitlines()[-1])
    finally:
        for d in nodes:
            try:
                d.stop()
            except AssertionError as e:
                print("stop: %s" % e, file=sys.stderr)


if __name__ == "__main__":
    main()
