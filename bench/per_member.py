#!/usr/bin/env python3
"""Per-member reading against the direct path (docs/benchmarks.md, "Per-member reading").

For each member key kind (P-256, RSA-2048) and each N, in one run: groupd (SQLite) with a P-256
group and N members each with a registered certificate of that kind, and one listd (SQLite,
Maildir delivery, spool and Maildirs under --dir, /dev/shm by default) with two lists on the same
group and the same N members: `direct` (forwards the post as it came) and `per-member`. A 100 KB
post made by `openssl cms -encrypt -aes-256-cbc` goes in by SMTP (swaks) to the direct list, then
to the per-member list; each is timed from the start of the SMTP submission to the Nth file in
the members' Maildirs. Each post is sent --posts times (3 by default; the figures are the
medians, the first of each pays for cold caches and connections). groupd's CPU time (the
scheduler's per-thread time from /proc, utime + stime without the 10 ms ticks) over each
per-member post, divided by N, is set against `openssl speed` for the primitive of one re-wrap
(ecdhp256: one ECDH derive, what a P-256 member costs now that a request's members share one
ephemeral key; rsa2048: the public-key operation; OpenSSL 3.0 reports it as `verify`), measured
in the same run, before and after the cases: the faster of the two counts. Because the load of a
shared machine moves within a run, the primitive is also measured for one second right after
each per-member post, and each post's CPU is set against that figure too (the median of the
three is `groupd_share_of_adjacent_primitive`). RSA members are wrapped
with OAEP (`rsa2048`) or, on a list whose members read with NSS, PKCS#1 v1.5 (`rsa2048-pkcs1`).

The members share one certificate per kind (the wrap costs the same; groupd caches parsed
certificates by fingerprint either way) and are written straight into groupd's store, since
registering 10,000 certificates through the admin API would dominate the run.

Usage: bench/per_member.py BUILD_DIR [--n 500 10000] [--kinds p256 rsa2048 rsa2048-pkcs1] [--posts 3]
                            [--out DIR] [--dir DIR] [--perf] [--quick]
"""

import argparse
import hashlib
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

GROUP = "bench@example.org"
PM = "bench-pm@example.org"


def cpu_seconds(pid):
    """The process's CPU time: utime + stime (clock ticks, so 10 ms steps)."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_fine(pid):
    """The same from the scheduler (nanoseconds), summed over the live threads: groupd's threads
    live as long as it does, so over one post this is the utime + stime above without the ticks."""
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            total += int(open("/proc/%d/task/%s/schedstat" % (pid, t)).read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def count_delivered(root):
    n = 0
    try:
        with os.scandir(root) as it:
            for d in it:
                try:
                    n += len(os.listdir(os.path.join(d.path, "new")))
                except FileNotFoundError:
                    pass
    except FileNotFoundError:
        pass
    return n


def openssl_speed(seconds=3, which=("ecdhp256", "rsa2048")):
    out = {}
    if "ecdhp256" in which:
        p = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "ecdhp256"], capture_output=True,
                           text=True)
        out["ecdhp256_raw"] = p.stdout
        m = re.search(r"256 bits ecdh \(nistp256\)\s+([\d.]+)s\s+([\d.]+)", p.stdout)
        out["ecdhp256_ops"] = float(m.group(2)) if m else None
    if "rsa2048" not in which:
        return out
    p = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "rsa2048"], capture_output=True, text=True)
    out["rsa2048_raw"] = p.stdout
    # OpenSSL 3: "rsa 2048 bits 0.000608s 0.000018s 0.000019s 0.000598s 1645.2 55128.4 ..." (sign
    # verify encrypt decrypt, then the same per second): encrypt/s is the public-key operation.
    m = re.search(r"rsa\s+2048 bits\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)",
                  p.stdout)
    if m:
        out["rsa2048_public_ops"] = float(m.group(7))
    else:
        m = re.search(r"rsa\s+2048 bits\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)\s+([\d.]+)", p.stdout)
        out["rsa2048_public_ops"] = float(m.group(4)) if m else None
    return out


def member_key(kind):
    """The member certificate's key of a kind: rsa2048-pkcs1 is RSA-2048 members on a list whose
    members read with NSS (--member-clients nss), so groupd wraps with PKCS#1 v1.5, not OAEP."""
    return {"p256": "ec", "rsa2048": "rsa2048", "rsa2048-pkcs1": "rsa2048"}[kind]


def run_case(args, kind, n, work):
    d = harness.Deployment("bench-pm-%s-%d" % (kind, n), with_certd=False,
                           limits={"rate_per_second": 1e6, "rate_burst": 1e6}).start()
    try:
        p = d.pki
        p.make_ca("member-ca", "Bench member CA")
        exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        member_crt = p.member("member-" + kind, "member-ca", member_key(kind), "member@example.org")
        d.create_group(GROUP, "p256")
        d.admin("exploder", "set", GROUP, "--cert", exploder[0])
        cert = os.path.join(work, "group-%s-%d.crt" % (kind, n))
        d.public_certificate(GROUP, cert)
        der = harness.cert_der(member_crt)
        fp = hashlib.sha256(der).hexdigest()
        members = ["m%05d@example.org" % i for i in range(n)]
        db = sqlite3.connect(d.store_url[len("sqlite:"):], timeout=60)
        gid = db.execute("SELECT id FROM groups WHERE name = ?", (GROUP,)).fetchone()[0]
        db.executemany("INSERT INTO members (group_id, address, certificate_der, cert_fingerprint, "
                       "token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       [(gid, m, der, fp, b"", int(time.time())) for m in members])
        db.commit()
        db.close()

        base = os.path.join(args.dir, "bench-pm-%s-%d-%d" % (kind, n, os.getpid()))
        os.makedirs(base)
        groupd = {"url": d.g.url(), "public_url": d.g.url(), "client_certificate": exploder[0],
                  "client_key": exploder[1], "ca": p.crt("tls-ca")}
        l = lh.Listd(d, "bench-%s-%d" % (kind, n), groupd=groupd, spool=os.path.join(base, "spool"),
                     delivery={"maildir_root": os.path.join(base, "maildirs")})
        roster = os.path.join(work, "members-%d.txt" % n)
        harness.write(roster, "\n".join(members) + "\n")
        l.lists("create", GROUP, "--group", GROUP, "--certificate", cert, "--posting", "open")
        # The group's certificate names the direct list's address, not this one's.
        l.lists("create", PM, "--group", GROUP, "--certificate", cert, "--posting", "open",
                "--reading", "per-member", "--force",
                *(["--member-clients", "nss"] if kind == "rsa2048-pkcs1" else []))
        for lst in (GROUP, PM):
            l.lists("member", "import", lst, "--file", roster)
        l.start()
        body = os.path.join(work, "body-100k.txt")
        if not os.path.exists(body):
            line = "x" * 99 + "\n"
            harness.write(body, "Content-Type: text/plain\r\n\r\n" + line * 1000)
        post = os.path.join(work, "post-%s-%d.eml" % (kind, n))
        harness.openssl("cms", "-encrypt", "-binary", "-aes-256-cbc", "-in", body, "-out", post, cert)
        msg = harness.crlf(harness.read(post))
        root = os.path.join(base, "maildirs")
        result = {"kind": kind, "n": n, "post_bytes": len(msg)}
        pid = d.groupd.proc.pid
        delivered = 0
        # The direct post args.posts times, then the per-member post as many times (the first
        # of each pays for cold caches and connections; the medians are the steady figures).
        runs = [("direct", GROUP)] * args.posts + [("per_member", PM)] * args.posts
        for i, (label, lst) in enumerate(runs):
            delivered += n
            target = delivered
            perf = None
            if args.perf and label == "per_member" and i == len(runs) - 1:
                perf = subprocess.Popen(["perf", "record", "-q", "--call-graph", os.environ.get("PERF_CALL_GRAPH", "fp"),
                                         "-F", os.environ.get("PERF_FREQ", "999"), "-p", str(pid), "-o",
                                         os.path.join(args.out or work, "perf-%s-%d.data" % (kind, n))])
                time.sleep(1)  # perf attaches
            cpu0, fine0 = cpu_seconds(pid), cpu_seconds_fine(pid)
            t0 = time.monotonic()
            rc, out = lh.swaks(l.smtp_port, lst, msg)
            if rc != 0:
                raise RuntimeError("swaks to %s: %s" % (lst, out))
            lh.wait_for(lambda: count_delivered(root) >= target or None, 3600, label, interval=0.05)
            result.setdefault(label + "_seconds_each", []).append(time.monotonic() - t0)
            result.setdefault(label + "_groupd_cpu_seconds_each", []).append(cpu_seconds(pid) - cpu0)
            result.setdefault(label + "_groupd_cpu_seconds_fine_each", []).append(cpu_seconds_fine(pid) - fine0)
            if perf:
                perf.send_signal(2)
                perf.wait()
            if label == "per_member":
                # The primitive again, right after this post: on a shared machine the load moves
                # within a run, and this is the figure nearest in time to the post's CPU.
                prim = "ecdhp256" if kind == "p256" else "rsa2048"
                near = openssl_speed(1, (prim,))
                result.setdefault("adjacent_primitive_ops_each", []).append(
                    near["ecdhp256_ops"] if kind == "p256" else near["rsa2048_public_ops"])
        for key in list(result):
            if key.endswith("_each"):
                result[key[:-len("_each")]] = statistics.median(result[key])
        result["ratio"] = result["per_member_seconds"] / result["direct_seconds"]
        result["groupd_cpu_per_member_us"] = result["per_member_groupd_cpu_seconds_fine"] / n * 1e6
        result["first_post_groupd_cpu_per_member_us"] = result["per_member_groupd_cpu_seconds_fine_each"][0] / n * 1e6
        l.stop()
        subprocess.run(["rm", "-rf", base])
        return result
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--n", type=int, nargs="+", default=[500, 10000])
    ap.add_argument("--kinds", nargs="+", default=["p256", "rsa2048", "rsa2048-pkcs1"],
                    choices=["p256", "rsa2048", "rsa2048-pkcs1"])
    ap.add_argument("--quick", action="store_true", help="N = 500 only, 2 posts each (a smoke run)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--posts", type=int, default=3,
                    help="per-member posts per case; the figures are their medians (the first is cold)")
    ap.add_argument("--perf", action="store_true",
                    help="perf record groupd over the last per-member post of each case (perf-KIND-N.data in --out; "
                         "PERF_CALL_GRAPH=dwarf for call graphs through OpenSSL, PERF_FREQ=N samples a second, 999 by "
                         "default)")
    args = ap.parse_args()
    b = os.path.abspath(args.build)
    harness.BINARIES.update({"blindlist": os.path.join(b, "cli", "blindlist"),
                             "groupd": os.path.join(b, "daemons", "groupd", "blindlist-groupd"),
                             "certd": os.path.join(b, "daemons", "certd", "blindlist-certd"),
                             "listd": os.path.join(b, "daemons", "listd", "blindlist-listd")})
    os.environ.setdefault("BLINDLIST_LISTD", harness.BINARIES["listd"])
    work = harness.tempdir("bench-per-member")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    if args.quick:
        args.n, args.posts = [500], 2
    # `openssl speed` before and after the cases; the faster of the two is the primitive (on a
    # shared machine the slower one is the load's, and the faster makes the share the lower).
    speed_before = openssl_speed()
    results = []
    for kind in args.kinds:
        for n in args.n:
            r = run_case(args, kind, n, work)
            print(json.dumps(r), flush=True)
            results.append(r)
    speed_after = openssl_speed()
    faults = []
    for r in results:
        key = "ecdhp256_ops" if r["kind"] == "p256" else "rsa2048_public_ops"
        rates = [s[key] for s in (speed_before, speed_after) if s.get(key)]
        if not rates:
            continue
        prim = max(rates)
        r["primitive_ops_per_second"] = prim
        r["primitive_ops_per_second_before_after"] = [speed_before.get(key), speed_after.get(key)]
        r["groupd_members_per_cpu_second"] = r["n"] / max(r["per_member_groupd_cpu_seconds_fine"], 1e-9)
        r["groupd_share_of_primitive"] = r["groupd_members_per_cpu_second"] / prim
        adjacent = [r["n"] / cpu / near for cpu, near in
                    zip(r["per_member_groupd_cpu_seconds_fine_each"], r.get("adjacent_primitive_ops_each", []))
                    if near]
        if adjacent:
            r["groupd_share_of_adjacent_primitive_each"] = adjacent
            r["groupd_share_of_adjacent_primitive"] = statistics.median(adjacent)
        for name in ("groupd_share_of_primitive", "groupd_share_of_adjacent_primitive"):
            if r.get(name, 0) > 1:
                faults.append("%s N=%d: groupd above the primitive (%s %.0f %%): a measurement fault" %
                              (r["kind"], r["n"], name, 100 * r[name]))
        print("%-14s N=%-6d delivery %.2f s direct, %.2f s per member (%.2fx); groupd %.1f us/member "
              "(first post %.1f), %.0f members/CPU s, primitive %.0f op/s: %.0f %% (against the "
              "primitive after each post: %.0f %%)" %
              (r["kind"], r["n"], r["direct_seconds"], r["per_member_seconds"], r["ratio"],
               r["groupd_cpu_per_member_us"], r["first_post_groupd_cpu_per_member_us"],
               r["groupd_members_per_cpu_second"], prim, 100 * r["groupd_share_of_primitive"],
               100 * r.get("groupd_share_of_adjacent_primitive", float("nan"))),
              flush=True)
    for f in faults:
        print("FAULT: " + f, flush=True)
    out = {"uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
           "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip(),
           "speed": speed_before, "speed_after": speed_after, "faults": faults, "results": results}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        harness.write(os.path.join(args.out, "per_member.json"), json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
