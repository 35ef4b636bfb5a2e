#!/usr/bin/env python3
"""Threshold groups (docs/threshold.md): k = 2 of n = 3 groupd nodes on loopback.

Usage: threshold_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Three groupd processes, each with its own store (SQLite file, or its own PostgreSQL database)
and its own master key, administered with one admin client certificate that all three list.
`blindlist admin group create --key-type p256-threshold` deals the key; posts are made by
`openssl cms -encrypt` to the group certificate; `blindlist open --method threshold` reads.
Checked:
  1. any 2 of the 3 nodes open the post; 1 node, or 1 node and a dead one, fails clearly,
     naming the nodes and why;
  2. a lying node (a TLS proxy in front of node 3 that answers with node 1's share) is
     detected by its proof, named, and excluded; the read succeeds with 2 honest nodes and
     fails with only 1;
  3. membership: a member removed at every node is refused by every node; removed at one node
     only, the other two still serve k; a member of group A is refused by group B's nodes;
  4. the paths that need one holder of the key (F, E, S, blind, export, rotate) answer
     409 threshold-group at every node;
  5. the shares of k - 1 nodes, read from their stores and unsealed with their master keys, do
     not give a key that opens the post; the shares of k nodes do (the control);
  6. a share refresh keeps the certificate and old posts readable; new shares combine, an old
     share with a new one does not; a refresh from a stale state is refused (409 conflict);
  7. the bulk route answers each point as the single route does (a bad point is that item's
     400), with a proof per point or ("proof": "batch") one proof for the call, refuses more
     points than one bulk call takes and non-members; `open --archive` opens
     an mbox, a Maildir and a single file in one bulk request per node, a lying node (lying in
     its bulk answers) named per post; `--nodes-file` names the nodes, a bad line is refused;
  8. a refresh that fails at the last node (the proxy, which forwards the refresh as a member)
     is rolled back at the nodes already refreshed: every node holds its old share and the
     old commitments again, the command names the failed node and the rolled back ones.
"""

import base64
import http.server
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

GROUP = "threshold@example.org"
OTHER = "other-threshold@example.org"
Q = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of P-256


class LyingNode:
    """A TLS server in front of a real node: certificates pass through, but every threshold
    answer carries another node's point under this node's index and proof."""

    def __init__(self, pki, real, honest_other, member_cert, admin_cert=None):
        pki.server("liar", "tls-ca")
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # HTTP/1.1 with Content-Length: the client stops at the body, not at a TCP close
            # that Python's TLS socket makes without close_notify.
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def log_error(self, fmt, *args):
                sys.stderr.write("lying node: " + fmt % args + "\n")

            def _reply(self, r):
                self.send_response(r.status)
                for k, v in r.headers.items():
                    if k.lower() in ("content-type",):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.body)))
                self.end_headers()
                self.wfile.write(r.body)

            def do_GET(self):
                # As the administrator when given (a refresh reads each node's state through it).
                self._reply(real.get(self.path, cert=admin_cert) if admin_cert else real.get(self.path))

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                r = real.post(self.path, body, cert=member_cert)
                if r.status == 200 and self.path.endswith("/threshold"):
                    other = honest_other.post(self.path, body, cert=member_cert)
                    forged = r.json
                    forged["result"] = other.json["result"]
                    outer.lies += 1
                    r = harness.Response(200, [("Content-Type", "application/json")],
                                         json.dumps(forged).encode())
                elif r.status == 200 and self.path.endswith("/threshold/bulk"):
                    other = honest_other.post(self.path, body, cert=member_cert)
                    forged = r.json
                    for mine, theirs in zip(forged["results"], other.json["results"]):
                        if "result" in mine:
                            mine["result"] = theirs["result"]
                    outer.lies += 1
                    r = harness.Response(200, [("Content-Type", "application/json")],
                                         json.dumps(forged).encode())
                self._reply(r)

        self.lies = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.crt("liar"), pki.key("liar"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(pki.crt("tls-ca"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "https://127.0.0.1:%d" % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Threshold(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nodes, cls.admin_cert, pki = harness.groupd_nodes("thr", 3, "threshold admin")
        first = cls.nodes[0]
        cls.pki = pki
        cls.urls = [d.g.url() for d in cls.nodes]
        cls.created = cls.create(GROUP)
        cls.create(OTHER)
        cls.members = {}
        for name in ("alice", "erin", "bob"):
            crt = pki.member(name, "tls-ca", "ec", "%s@example.org" % name)
            cls.members[name] = (crt, pki.key(name))
        for d in cls.nodes:
            for name, group in (("alice", GROUP), ("erin", GROUP), ("bob", OTHER)):
                cls.admin_at(d, "member", "add", group, "%s@example.org" % name, "--cert",
                             cls.members[name][0])
        cls.cert_file = os.path.join(first.dir, "group.crt")
        harness.write(cls.cert_file, cls.created["certificate"])
        cls.post = cls.make_post(GROUP, cls.cert_file, "the threshold secret")
        cls.liar = LyingNode(pki, cls.nodes[2].g, cls.nodes[0].g, cls.members["alice"],
                             admin_cert=cls.admin_cert)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "liar", None):
            cls.liar.stop()

    @classmethod
    def admin_args(cls, server):
        return ["--server", server, "--ca", cls.pki.crt("tls-ca"), "--client-cert", cls.admin_cert[0],
                "--client-key", cls.admin_cert[1], "--json"]

    @classmethod
    def admin_at(cls, d, *args, check=True):
        p = d.bl("admin", *cls.admin_args(d.g.url()), *args, check=check)
        return json.loads(p.stdout) if check and p.stdout.strip() else p

    @classmethod
    def create(cls, group):
        p = cls.nodes[0].bl("admin", *cls.admin_args(cls.urls[0]), "group", "create", group,
                            "--key-type", "p256-threshold", "--threshold", "2", "--nodes",
                            ",".join(cls.urls))
        return json.loads(p.stdout)

    @classmethod
    def make_post(cls, group, cert_file, text, name=None):
        d = cls.nodes[0]
        name = name or group
        ent = d.f("entity-%s.txt" % name)
        harness.write(ent, harness.entity(text))
        out = d.f("post-%s.eml" % name)
        harness.osl_encrypt(ent, out, cert_file)
        return out

    def read(self, servers, member="alice", post=None, check=False):
        args = ["open"]
        for s in servers:
            args += ["--server", s]
        crt, key = self.members[member]
        args += ["--ca", self.pki.crt("tls-ca"), "--client-cert", crt, "--client-key", key,
                 "--group", GROUP if member != "bob" else OTHER, "--method", "threshold",
                 "-i", post or self.post]
        return self.nodes[0].bl(*args, check=check)

    def assertOpens(self, p, text=b"the threshold secret"):
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(text, p.stdout)

    def assertFails(self, p, *words):
        self.assertNotEqual(p.returncode, 0, p.stdout)
        err = p.stderr.decode()
        for w in words:
            self.assertIn(w, err)
        return err

    # 1
    def test_creation_gives_each_node_one_share_and_one_certificate(self):
        self.assertEqual(self.created["threshold"], 2)
        self.assertEqual([n["index"] for n in self.created["nodes"]], [1, 2, 3])
        pems = set()
        for d in self.nodes:
            r = d.g.get("/v1/groups/%s/certificate" % harness.quote(GROUP))
            self.assertEqual(r.status, 200, r)
            pems.add(harness.cert_der(r.body.decode()))
            show = self.admin_at(d, "group", "show", GROUP)
            self.assertEqual([k["key_type"] for k in show["keys"]], ["p256-threshold"])
        self.assertEqual(len(pems), 1, "every node serves the same group certificate")
        self.assertIn("Public-Key: (256 bit)", harness.cert_text(self.cert_file))

    def test_any_two_nodes_open_an_openssl_post(self):
        for pair in ([0, 1], [0, 2], [1, 2], [2, 0]):
            with self.subTest(pair=pair):
                self.assertOpens(self.read([self.urls[i] for i in pair]))
        self.assertOpens(self.read(self.urls))

    def test_one_node_is_not_enough(self):
        for i in range(3):
            err = self.assertFails(self.read([self.urls[i]]), "1 valid answer(s), 2 needed")
            self.assertIn("threshold", err)
        dead = "https://127.0.0.1:%d" % unused_port()
        err = self.assertFails(self.read([self.urls[1], dead]), "1 valid answer(s), 2 needed", dead)
        # Two live nodes and a dead one: the read succeeds and names the dead node.
        p = self.read([dead, self.urls[0], self.urls[2]])
        self.assertOpens(p)
        self.assertIn(dead, p.stderr.decode())

    # 2
    def test_a_lying_node_is_detected_and_excluded(self):
        before = self.liar.lies
        p = self.read([self.liar.url(), self.urls[0], self.urls[1]])
        self.assertOpens(p)
        self.assertIn(self.liar.url(), p.stderr.decode())
        self.assertIn("DLEQ proof does not verify", p.stderr.decode())
        self.assertGreater(self.liar.lies, before, "the proxy did lie")
        err = self.assertFails(self.read([self.liar.url(), self.urls[1]]), "threshold read failed",
                               "1 valid answer(s), 2 needed", self.liar.url() + ": lied")
        self.assertIn("DLEQ proof does not verify", err)

    def test_the_node_checks_the_blinded_point(self):
        d = self.nodes[0]
        path = "/v1/groups/%s/threshold" % harness.quote(GROUP)
        for bad in (b"\x00", b"\x04" + b"\x00" * 64, b"\x02" + b"\xff" * 32, b""):
            r = d.g.post(path, {"blinded": harness.b64(bad)}, cert=self.members["alice"])
            self.assertIn(r.status, (400,), r)
            self.assertIn(r.json["error"], ("bad-point", "malformed-request"), r.json)

    # 3
    def test_removal_at_every_node(self):
        self.assertOpens(self.read(self.urls, member="erin"))
        # Removed at one node: the other two still make k.
        self.admin_at(self.nodes[0], "member", "remove", GROUP, "erin@example.org")
        p = self.read(self.urls, member="erin")
        self.assertOpens(p)
        self.assertIn("not-a-member", p.stderr.decode())
        # Removed at every node: refused by each, on the very next request.
        for d in self.nodes[1:]:
            self.admin_at(d, "member", "remove", GROUP, "erin@example.org")
        err = self.assertFails(self.read(self.urls, member="erin"), "0 valid answer(s)")
        summary = [line for line in err.splitlines() if "threshold read failed" in line]
        self.assertEqual(len(summary), 1, err)
        for url in self.urls:
            self.assertIn(url + ": not-a-member", summary[0])
        for d in self.nodes:
            r = d.g.post("/v1/groups/%s/threshold" % harness.quote(GROUP),
                         {"blinded": harness.b64(b"\x02" + b"\x01" * 32)}, cert=self.members["erin"])
            self.assertRefused(r, 403, "not-a-member")

    def test_a_member_of_one_group_is_refused_by_the_other_groups_nodes(self):
        for d in self.nodes:
            r = d.g.post("/v1/groups/%s/threshold" % harness.quote(OTHER),
                         {"blinded": harness.b64(b"\x02" + b"\x01" * 32)}, cert=self.members["alice"])
            self.assertRefused(r, 403, "not-a-member")
        other_cert = os.path.join(self.nodes[0].dir, "other.crt")
        r = self.nodes[0].g.get("/v1/groups/%s/certificate" % harness.quote(OTHER))
        harness.write(other_cert, r.body)
        post = self.make_post(OTHER, other_cert, "for the other group")
        self.assertOpens(self.read(self.urls, member="bob", post=post), b"for the other group")
        args = ["open"]
        for s in self.urls:
            args += ["--server", s]
        args += ["--ca", self.pki.crt("tls-ca"), "--client-cert", self.members["alice"][0],
                 "--client-key", self.members["alice"][1], "--group", OTHER, "--method",
                 "threshold", "-i", post]
        p = self.nodes[0].bl(*args, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not-a-member", p.stderr.decode())

    # 4
    def test_single_holder_paths_are_refused(self):
        g = harness.quote(GROUP)
        ri = harness.b64(harness.recipient_infos(harness.cms_of(self.post))[0])
        alice = self.members["alice"]
        for d in self.nodes:
            for path in ("unwrap", "rewrap", "rewrap/secret", "blind"):
                with self.subTest(node=d.name, path=path):
                    r = d.g.post("/v1/groups/%s/%s" % (g, path),
                                 {"recipient_info": ri, "blinded": harness.b64(b"\x02" + b"\x01" * 32)},
                                 cert=alice)
                    body = self.assertRefused(r, 409, "threshold-group")
                    self.assertIn("threshold group", body["message"])
            r = d.g.post("/v1/groups/%s/bulk" % g, {"requests": [{"operation": "unwrap", "recipient_info": ri}]}, cert=alice)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["responses"][0]["error"], "threshold-group", r.json)
            self.assertRefused(d.g.get("/v1/groups/%s/secrets" % g, cert=alice), 409, "threshold-group")
            p = self.admin_at(d, "group", "export-key", GROUP, "--passphrase-file", self.cert_file,
                              "-o", d.f("group.p12"), check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("threshold-group", p.stderr.decode())
            p = self.admin_at(d, "group", "rotate", GROUP, check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("threshold-group", p.stderr.decode())

    # 6
    def test_refresh_keeps_the_key_and_retires_old_shares(self):
        before = [self.sealed_share(d) for d in self.nodes]
        show = self.admin_at(self.nodes[0], "group", "show", GROUP)
        previous = show["keys"][0]["threshold"]["commitments"]
        r = self.nodes[0].bl("admin", *self.admin_args(self.urls[0]), "group", "refresh-shares", GROUP,
                             "--nodes", ",".join(self.urls))
        self.assertEqual(json.loads(r.stdout)["refreshed"], self.urls)
        after = [self.sealed_share(d) for d in self.nodes]
        for (i, old), (j, new) in zip(before, after):
            self.assertEqual(i, j)
            self.assertNotEqual(old, new)
        # The same certificate everywhere, and the post made before the refresh still opens.
        for d in self.nodes:
            r = d.g.get("/v1/groups/%s/certificate" % harness.quote(GROUP))
            self.assertEqual(harness.cert_der(r.body.decode()), harness.cert_der(self.created["certificate"]))
        for pair in ([0, 1], [1, 2]):
            self.assertOpens(self.read([self.urls[i] for i in pair]))
        # New shares combine; an old share with a new one does not.
        key = self.key_file(self.interpolate(after[:2]), "refreshed-two")
        self.assertIn(b"the threshold secret", harness.osl_decrypt(self.post, key))
        for mixed in ([before[0], after[1]], [after[0], before[2]]):
            key = self.key_file(self.interpolate(mixed), "mixed")
            with self.assertRaises(harness.CommandFailed):
                harness.osl_decrypt(self.post, key)
        # A refresh from a stale state is refused, and changes nothing.
        r = self.nodes[1].g.post("/v1/groups/%s/threshold/refresh" % harness.quote(GROUP),
                                 {"share": harness.b64(b"\x01" * 36), "previous": previous,
                                  "commitments": previous}, cert=self.admin_cert)
        self.assertRefused(r, 409, "conflict")
        self.assertEqual(self.sealed_share(self.nodes[1]), after[1])

    # 7
    def test_bulk_route_answers_each_point_like_the_single_route(self):
        d = self.nodes[1]
        g = harness.quote(GROUP)
        alice = self.members["alice"]
        points = [self.some_point(d, n) for n in range(3)]
        bad = harness.b64(b"\x02" + b"\xff" * 32)
        r = d.g.post("/v1/groups/%s/threshold/bulk" % g, {"points": points[:2] + [bad, points[2]]},
                     cert=alice)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["index"], 2)
        self.assertEqual([x["status"] for x in r.json["results"]], [200, 200, 400, 200])
        self.assertEqual(r.json["results"][2]["error"], "bad-point")
        for item, point in zip([r.json["results"][i] for i in (0, 1, 3)], points):
            one = d.g.post("/v1/groups/%s/threshold" % g, {"blinded": point}, cert=alice)
            self.assertEqual(one.status, 200, one)
            self.assertEqual(one.json["commitments"], r.json["commitments"])
            self.assertEqual(one.json["result"], item["result"], "Z = d_i·B is deterministic")
            self.assertEqual(len(base64.b64decode(item["proof"])), 64)
        # "proof": "batch": the same points, no proof per item, one proof for the call.
        batch = d.g.post("/v1/groups/%s/threshold/bulk" % g,
                         {"points": points[:2] + [bad, points[2]], "proof": "batch"}, cert=alice)
        self.assertEqual(batch.status, 200, batch)
        self.assertEqual([x["status"] for x in batch.json["results"]], [200, 200, 400, 200])
        self.assertEqual(batch.json["results"][2]["error"], "bad-point")
        for mine, theirs in zip(batch.json["results"], r.json["results"]):
            self.assertEqual(mine.get("result"), theirs.get("result"))
            self.assertNotIn("proof", mine)
        self.assertEqual(len(base64.b64decode(batch.json["proof"])), 64)
        for body, route in (({"points": points, "proof": "all"}, "/bulk"),
                            ({"blinded": points[0], "proof": "batch"}, "")):
            self.assertRefused(d.g.post("/v1/groups/%s/threshold%s" % (g, route), body, cert=alice),
                               400, "malformed-request")
        for body in ({"points": []}, {"blinded": points[0]}, {}):
            self.assertRefused(d.g.post("/v1/groups/%s/threshold/bulk" % g, body, cert=alice), 400,
                               "malformed-request")
        self.assertRefused(d.g.post("/v1/groups/%s/threshold/bulk" % g, {"points": points * 200},
                                    cert=alice), 413, "too-many")
        self.assertRefused(d.g.post("/v1/groups/%s/threshold/bulk" % harness.quote(OTHER),
                                    {"points": points}, cert=alice), 403, "not-a-member")

    def some_point(self, d, n):
        """A valid P-256 point (compressed, base64): node n's public share, from `group show`."""
        show = self.admin_at(self.nodes[n % 3], "group", "show", GROUP)
        return show["keys"][0]["threshold"]["public_share"]

    def archive_args(self, servers, *extra):
        crt, key = self.members["alice"]
        args = ["open"]
        for s in servers:
            args += ["--server", s]
        return args + ["--ca", self.pki.crt("tls-ca"), "--client-cert", crt, "--client-key", key,
                       "--group", GROUP, "--method", "threshold", *extra]

    def test_archive_opens_mbox_maildir_and_files_in_bulk(self):
        d = self.nodes[0]
        texts = ["archived post %d" % i for i in range(5)]
        posts = [harness.read(self.make_post(GROUP, self.cert_file, t, "archive-%d" % i)).decode()
                 for i, t in enumerate(texts)]
        mbox = d.f("archive.mbox")
        harness.write(mbox, "".join("From list@example.org Fri Dec  4 10:00:00 2026\n" + p.rstrip("\n")
                                    + "\n\n" for p in posts[:3]))
        maildir = d.f("archive-maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        harness.write(os.path.join(maildir, "cur", "1.host:2,S"), posts[3])
        single = d.f("archive-single.eml")
        harness.write(single, posts[4])
        out = d.f("archive-out")
        before = self.liar.lies
        bulk_calls = [len([a for a in n.audit(GROUP, 10000) if a["operation"] == "threshold-bulk"])
                      for n in self.nodes]
        p = d.bl(*self.archive_args([self.urls[0], self.liar.url(), self.urls[1]], "--archive", mbox,
                                    "--archive", maildir, "--archive", single, "--out-dir", out),
                 check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode()
        self.assertIn("5 post(s) opened", err)
        self.assertGreater(self.liar.lies, before, "the proxy lied in its bulk answer")
        for n in range(1, 6):
            self.assertIn("post %d: node %s excluded: lied" % (n, self.liar.url()), err)
        for n, text in enumerate(texts, 1):
            self.assertIn(text.encode(), harness.read(os.path.join(out, "%04d.eml" % n)))
        # The honest nodes' batch proofs verify: one bulk call each. Behind the liar, node 3 is
        # asked again with a proof per point, which names the posts it lied about (node 1 also
        # answers the liar twice: it takes node 1's points to lie with).
        after = [len([a for a in n.audit(GROUP, 10000) if a["operation"] == "threshold-bulk"])
                 for n in self.nodes]
        self.assertEqual([a - b for a, b in zip(after, bulk_calls)], [1 + 2, 1, 2])
        # With one honest node and the liar, no post opens; the error says how many failed.
        p = d.bl(*self.archive_args([self.urls[0], self.liar.url()], "--archive", mbox, "--out-dir",
                                    d.f("archive-out-2")), check=False)
        self.assertNotEqual(p.returncode, 0)
        err = p.stderr.decode()
        self.assertIn("3 of 3 posts not opened", err)
        self.assertIn("1 valid answer(s), 2 needed", err)

    def test_nodes_file(self):
        d = self.nodes[0]
        nodes = d.f("nodes.txt")
        harness.write(nodes, "# the group's nodes\n\n  %s  \n%s\n" % (self.urls[2], self.urls[0]))
        p = d.bl(*self.archive_args([], "--nodes-file", nodes, "-i", self.post), check=False)
        self.assertOpens(p)
        harness.write(nodes, "%s\nnot a url\n" % self.urls[0])
        p = d.bl(*self.archive_args([], "--nodes-file", nodes, "-i", self.post), check=False)
        self.assertFails(p, "nodes.txt:2", "https://")
        harness.write(nodes, "# nothing\n")
        self.assertFails(d.bl(*self.archive_args([], "--nodes-file", nodes, "-i", self.post),
                              check=False), "names no node")
        p = d.bl(*self.archive_args([], "-i", self.post), check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--server", p.stderr.decode())

    # 8
    def test_a_refresh_failing_midway_is_rolled_back(self):
        before = [self.sealed_share(d) for d in self.nodes]
        commitments = [self.admin_at(d, "group", "show", GROUP)["keys"][0]["threshold"]["commitments"]
                       for d in self.nodes]
        self.assertEqual(len(set(commitments)), 1)
        # Nodes 1 and 2 refresh; node 3, reached through the proxy, refuses (403: the proxy
        # forwards as a member), after which 1 and 2 are refreshed back.
        p = self.nodes[0].bl("admin", *self.admin_args(self.urls[0]), "group", "refresh-shares", GROUP,
                             "--nodes", ",".join([self.urls[0], self.urls[1], self.liar.url()]),
                             check=False)
        self.assertNotEqual(p.returncode, 0)
        err = p.stderr.decode()
        self.assertIn(self.liar.url() + ": ", err)
        self.assertIn("rolled back", err)
        self.assertIn("rolled back: " + json.dumps([self.urls[0], self.urls[1]], separators=(",", ":")), err)
        self.assertNotIn("NOT rolled back", err)
        self.assertEqual([self.sealed_share(d) for d in self.nodes], before,
                         "every node holds its old share again")
        for d in self.nodes:
            show = self.admin_at(d, "group", "show", GROUP)
            self.assertEqual(show["keys"][0]["threshold"]["commitments"], commitments[0])
        for pair in ([0, 1], [1, 2], [0, 2]):
            self.assertOpens(self.read([self.urls[i] for i in pair]))

    # 5
    def sealed_share(self, d):
        """Node d's share of GROUP, read from its store and unsealed with its master key."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # a missing module fails
        sql = ("SELECT k.sealed_private_key FROM group_keys k JOIN groups g ON g.id = k.group_id "
               "WHERE g.name = '%s' AND k.version = 1" % GROUP)
        if d.store_url.startswith("sqlite:"):
            con = sqlite3.connect("file:%s?mode=ro" % d.store_url[len("sqlite:"):], uri=True)
            try:
                sealed = con.execute(sql).fetchone()[0]
            finally:
                con.close()
        else:
            out = subprocess.run(["psql", d.store_url, "-At", "-c",
                                  sql.replace("k.sealed_private_key", "encode(k.sealed_private_key, 'hex')")],
                                 check=True, capture_output=True).stdout
            sealed = bytes.fromhex(out.decode().strip())
        master = bytes.fromhex(harness.read(d.f("master.key")).decode().strip())
        context = ("blindlist threshold-share %s v1" % GROUP).encode()
        self.assertEqual(sealed[0], 1)
        plain = AESGCM(master).decrypt(sealed[1:13], sealed[13:], context)
        self.assertEqual(plain[0], 1)
        return plain[1], int.from_bytes(plain[4:36], "big")

    def key_file(self, scalar, name):
        """A P-256 private key (SEC1 DER, no public key: OpenSSL derives it) from a scalar."""
        der = (b"\x30\x31\x02\x01\x01\x04\x20" + scalar.to_bytes(32, "big") +
               b"\xa0\x0a\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07")
        path = self.nodes[0].f(name + ".der")
        harness.write(path, der)
        pem = self.nodes[0].f(name + ".pem")
        harness.openssl("pkey", "-inform", "DER", "-in", path, "-out", pem)
        return pem

    def interpolate(self, shares):
        total = 0
        for i, si in shares:
            num, den = 1, 1
            for j, _ in shares:
                if j != i:
                    num = num * j % Q
                    den = den * (j - i) % Q
            total = (total + si * num * pow(den, -1, Q)) % Q
        return total

    def test_k_minus_one_stores_do_not_open_a_post(self):
        shares = [self.sealed_share(d) for d in self.nodes]
        self.assertEqual(sorted(i for i, _ in shares), [1, 2, 3])
        # The control: two stores with their master keys give the group key.
        key = self.key_file(self.interpolate(shares[:2]), "two-shares")
        self.assertIn(b"the threshold secret", harness.osl_decrypt(self.post, key))
        # One store (k - 1), read as the key itself or interpolated alone, opens nothing.
        for n, (i, s) in enumerate(shares):
            key = self.key_file(s, "one-share-%d" % n)
            with self.assertRaises(harness.CommandFailed):
                harness.osl_decrypt(self.post, key)


if __name__ == "__main__":
    harness.main()
