#!/usr/bin/env python3
"""Threshold node replacement (share repair) and group deletion (docs/threshold.md).

Usage: threshold_replace_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

k = 2 of n = 3 groupd nodes, each with its own store and master key, and a fourth, empty groupd
(its own store and master key) that replaces node 3. Checked, in this order:
  1. the helpers refuse what would leak or break a share: index 0 (the key itself), a round key
     not signed by its helper's share, a piece changed in transit, commitments other than theirs;
     the new node refuses a sum changed in transit and stores nothing; the command refuses fewer
     than k helpers and a new node that holds the group already;
  2. `admin group replace-node` gives the new node f(3): it serves the unchanged group
     certificate, it and node 1 (or node 2) open a post made by `openssl cms -encrypt` with
     node 3 stopped; the command's transcript (every request and answer it relayed) holds
     neither f(3) nor any helper's d_i nor lambda_i·d_i (computed here from the nodes' stores
     and master keys), in any encoding;
  3. `admin group delete` cleans up after a creation that failed at its last node (the failure
     message names the nodes and the command): the rows go, the deletion is audited, the name can
     be created again; without --yes, and for a member, it is refused.
"""

import base64
import binascii
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

GROUP = "replace@example.org"
SPARE = "spare@example.org"
Q = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of P-256


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lagrange(indices, i, x):
    num, den = 1, 1
    for j in indices:
        if j != i:
            num = num * (j - x) % Q
            den = den * (j - i) % Q
    return num * pow(den, -1, Q) % Q


class ThresholdReplace(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nodes, cls.admin_cert, pki = harness.groupd_nodes("rep", 4, "replace admin")
        first = cls.nodes[0]
        cls.pki = pki
        cls.urls = [d.g.url() for d in cls.nodes]
        p = first.bl("admin", *cls.admin_args(cls.urls[0]), "group", "create", GROUP, "--key-type",
                     "p256-threshold", "--threshold", "2", "--nodes", ",".join(cls.urls[:3]))
        cls.created = json.loads(p.stdout)
        cls.alice = (pki.member("alice", "tls-ca", "ec", "alice@example.org"), pki.key("alice"))
        for d in cls.nodes[:3]:
            cls.admin_at(d, "member", "add", GROUP, "alice@example.org", "--cert", cls.alice[0])
        cls.cert_file = first.f("group.crt")
        harness.write(cls.cert_file, cls.created["certificate"])
        ent = first.f("entity.txt")
        harness.write(ent, harness.entity("the replaced node's secret"))
        cls.post = first.f("post.eml")
        harness.osl_encrypt(ent, cls.post, cls.cert_file)

    @classmethod
    def admin_args(cls, server):
        return ["--server", server, "--ca", cls.pki.crt("tls-ca"), "--client-cert", cls.admin_cert[0],
                "--client-key", cls.admin_cert[1], "--json"]

    @classmethod
    def admin_at(cls, d, *args, check=True):
        p = d.bl("admin", *cls.admin_args(d.g.url()), *args, check=check)
        return json.loads(p.stdout) if check and p.stdout.strip() else p

    def admin(self, *args):
        return self.nodes[0].bl("admin", *self.admin_args(self.urls[0]), *args, check=False)

    def post_admin(self, n, path, body):
        return self.nodes[n].g.post(path, body, cert=self.admin_cert)

    def read(self, servers):
        args = ["open"]
        for s in servers:
            args += ["--server", s]
        args += ["--ca", self.pki.crt("tls-ca"), "--client-cert", self.alice[0], "--client-key",
                 self.alice[1], "--group", GROUP, "--method", "threshold", "-i", self.post]
        return self.nodes[0].bl(*args, check=False)

    def store_query(self, d, sql):
        if d.store_url.startswith("sqlite:"):
            con = sqlite3.connect("file:%s?mode=ro" % d.store_url[len("sqlite:"):], uri=True)
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = subprocess.run(["psql", d.store_url, "-At", "-F", "\t", "-c", sql], check=True,
                             capture_output=True).stdout.decode()
        return [tuple(line.split("\t")) for line in out.splitlines() if line]

    def share_of(self, d, group=GROUP):
        """Node d's (index, scalar), read from its store and unsealed with its master key."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # a missing module fails
        rows = self.store_query(d, "SELECT %s FROM group_keys k JOIN groups g ON g.id = k.group_id "
                                   "WHERE g.name = '%s' AND k.version = 1" % (
                                       "k.sealed_private_key" if d.store_url.startswith("sqlite:")
                                       else "encode(k.sealed_private_key, 'hex')", group))
        sealed = rows[0][0] if isinstance(rows[0][0], bytes) else bytes.fromhex(rows[0][0])
        master = bytes.fromhex(harness.read(d.f("master.key")).decode().strip())
        context = ("blindlist threshold-share %s v1" % group).encode()
        plain = AESGCM(master).decrypt(sealed[1:13], sealed[13:], context)
        return plain[1], int.from_bytes(plain[4:36], "big")

    def show(self, n):
        return self.admin_at(self.nodes[n], "group", "show", GROUP)["keys"][0]["threshold"]

    def round_body(self, new_key, index=3, helpers=(1, 2), rnd="ab" * 16):
        return {"round": rnd, "index": index, "helpers": list(helpers), "new_key": new_key}

    # 1
    def test_1_refusals(self):
        g = harness.quote(GROUP)
        enroll = self.post_admin(3, "/v1/threshold/enroll",
                                 {"name": GROUP, "round": "ab" * 16, "index": 3, "helpers": [1, 2]})
        self.assertEqual(enroll.status, 200, enroll)
        new_key = enroll.json["key"]
        # Index 0 is the key itself: refused at every helper, as is a helper set short of k.
        for n in (0, 1):
            r = self.post_admin(n, "/v1/groups/%s/threshold/repair/key" % g,
                                self.round_body(new_key, index=0))
            self.assertRefused(r, 400, "malformed-request")
            self.assertIn("never 0", r.json["message"])
        r = self.post_admin(0, "/v1/groups/%s/threshold/repair/key" % g,
                            self.round_body(new_key, helpers=(1,)))
        self.assertRefused(r, 400, "malformed-request")
        r = self.post_admin(0, "/v1/groups/%s/threshold/repair/key" % g,
                            self.round_body(new_key, helpers=(1, 3)))
        self.assertRefused(r, 400, "malformed-request")
        self.assertAuditedSoon(self.nodes[0], GROUP, "threshold-repair-key", "malformed-request")
        # A round run by hand: the round keys, signed by each helper's share.
        body = self.round_body(new_key)
        keys, states = [], []
        for n in (0, 1):
            r = self.post_admin(n, "/v1/groups/%s/threshold/repair/key" % g, body)
            self.assertEqual(r.status, 200, r)
            keys.append({k: r.json[k] for k in ("index", "key", "signature")})
            states.append(r.json["state"])
        commitments = self.show(0)["commitments"]
        split = dict(body, keys=keys, commitments=commitments)
        # A relay that puts its own key (here: helper 1's) in helper 2's place is caught.
        forged = [keys[0], dict(keys[1], key=keys[0]["key"])]
        r = self.post_admin(0, "/v1/groups/%s/threshold/repair/split" % g,
                            dict(split, keys=forged, state=states[0]))
        self.assertRefused(r, 400, "bad-signature")
        # Commitments other than the helper's own: 409.
        other = base64.b64encode(bytes(reversed(base64.b64decode(commitments)))).decode()
        r = self.post_admin(0, "/v1/groups/%s/threshold/repair/split" % g,
                            dict(split, commitments=other, state=states[0]))
        self.assertRefused(r, 409, "conflict")
        # Another helper's state does not open.
        r = self.post_admin(0, "/v1/groups/%s/threshold/repair/split" % g, dict(split, state=states[1]))
        self.assertRefused(r, 400, "bad-state")
        pieces_to = {1: [], 2: []}
        for n in (0, 1):
            r = self.post_admin(n, "/v1/groups/%s/threshold/repair/split" % g,
                                dict(split, state=states[n]))
            self.assertEqual(r.status, 200, r)
            for p in r.json["pieces"]:
                pieces_to[p["to"]].append({"from": r.json["index"], "piece": p["piece"]})
        # A piece changed in transit does not verify; neither does a piece sent to another helper.
        tampered = [dict(p) for p in pieces_to[2]]
        raw = bytearray(base64.b64decode(tampered[0]["piece"]))
        raw[-1] ^= 1
        tampered[0]["piece"] = base64.b64encode(bytes(raw)).decode()
        r = self.post_admin(1, "/v1/groups/%s/threshold/repair/sum" % g,
                            dict(split, state=states[1], pieces=tampered))
        self.assertRefused(r, 400, "bad-piece")
        r = self.post_admin(1, "/v1/groups/%s/threshold/repair/sum" % g,
                            dict(split, state=states[1], pieces=pieces_to[1]))
        self.assertRefused(r, 400, "bad-piece")
        sums = []
        for n in (0, 1):
            r = self.post_admin(n, "/v1/groups/%s/threshold/repair/sum" % g,
                                dict(split, state=states[n], pieces=pieces_to[n + 1]))
            self.assertEqual(r.status, 200, r)
            sums.append({"from": r.json["index"], "sum": r.json["sum"]})
        # The new node: a sum changed in transit, or one missing, and nothing is stored.
        bad = [dict(s) for s in sums]
        raw = bytearray(base64.b64decode(bad[1]["sum"]))
        raw[40] ^= 1
        bad[1]["sum"] = base64.b64encode(bytes(raw)).decode()
        enrollment = dict(body, keys=keys, state=enroll.json["state"], threshold=2, nodes=3)
        for sums_given, code in ((bad, "bad-piece"), (sums[:1], "malformed-request")):
            r = self.post_admin(3, "/v1/groups", {"name": GROUP, "key_type": "p256-threshold",
                                                  "certificate": self.created["certificate"],
                                                  "commitments": commitments,
                                                  "enrollment": dict(enrollment, sums=sums_given)})
            self.assertRefused(r, 400, code)
        self.assertRefused(self.nodes[3].g.get("/v1/groups/%s/certificate" % g), 404, "unknown-group")
        # The command: fewer than k helpers; a new node that holds the group already.
        p = self.admin("group", "replace-node", GROUP, "--nodes", self.urls[0], "--index", "3",
                       "--new", self.urls[3])
        self.assertCliRefused(p, "needs k = 2 helpers", "1 given")
        p = self.admin("group", "replace-node", GROUP, "--nodes", ",".join(self.urls[:2]), "--index",
                       "3", "--new", self.urls[1])
        self.assertCliRefused(p, "holds the group already")
        p = self.admin("group", "replace-node", GROUP, "--nodes", ",".join(self.urls[:3]), "--index",
                       "3", "--new", self.urls[3])
        self.assertCliRefused(p, "holds index 3 itself")

    # 2
    def test_2_replace_node_three(self):
        old_three = self.share_of(self.nodes[2])
        transcript = self.nodes[0].f("transcript.json")
        p = self.admin("group", "replace-node", GROUP, "--nodes", ",".join(self.urls[:2]), "--index",
                       "3", "--new", self.urls[3], "--transcript", transcript)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual((out["index"], out["helpers"]), (3, [1, 2]))
        # The new node: index 3, the same commitments, the same certificate, f(3) itself.
        self.assertEqual(self.show(3)["index"], 3)
        self.assertEqual(self.show(3)["commitments"], self.show(0)["commitments"])
        r = self.nodes[3].g.get("/v1/groups/%s/certificate" % harness.quote(GROUP))
        self.assertEqual(harness.cert_der(r.body.decode()), harness.cert_der(self.created["certificate"]))
        new_three = self.share_of(self.nodes[3])
        self.assertEqual(new_three, old_three)
        self.assertAuditedSoon(self.nodes[0], GROUP, "threshold-repair-sum", "ok")
        # Reading with the new node, node 3 stopped.
        self.admin_at(self.nodes[3], "member", "add", GROUP, "alice@example.org", "--cert", self.alice[0])
        self.assertEqual(self.nodes[2].groupd.stop(), 0)
        for pair in ([3, 0], [1, 3]):
            p = self.read([self.urls[i] for i in pair])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"the replaced node's secret", p.stdout)
        p = self.read([self.urls[3]])
        self.assertNotEqual(p.returncode, 0)
        # What the command relayed holds no share, no lambda_i·d_i, and no f(3).
        (i1, d1), (i2, d2) = self.share_of(self.nodes[0]), self.share_of(self.nodes[1])
        secrets = {"f(3)": new_three[1], "d_1": d1, "d_2": d2,
                   "lambda_1·d_1": lagrange([1, 2], 1, 3) * d1 % Q,
                   "lambda_2·d_2": lagrange([1, 2], 2, 3) * d2 % Q}
        self.assertEqual((secrets["lambda_1·d_1"] + secrets["lambda_2·d_2"]) % Q, new_three[1],
                         "the secrets searched for are the right ones")
        text = harness.read(transcript).decode()
        relayed = json.loads(text)
        self.assertGreaterEqual(len(relayed), 8, "enroll, 3 steps at 2 helpers, the enrollment")
        blobs = [text.encode()]
        for s in re.findall(r'"([A-Za-z0-9+/=]{16,})"', text):
            try:
                blobs.append(base64.b64decode(s, validate=True))
            except (binascii.Error, ValueError):
                pass
        for name, value in secrets.items():
            raw = value.to_bytes(32, "big")
            for form in (raw, raw.hex().encode(), raw.hex().upper().encode(), str(value).encode(),
                         base64.b64encode(raw).rstrip(b"=")[:40]):
                for blob in blobs:
                    self.assertNotIn(form, blob, "%s appears in the transcript" % name)

    # 3
    def test_3_delete_after_a_failed_creation(self):
        dead = "https://127.0.0.1:%d" % unused_port()
        p = self.admin("group", "create", SPARE, "--key-type", "p256-threshold", "--threshold", "2",
                       "--nodes", ",".join([self.urls[0], self.urls[1], dead]))
        err = self.assertCliRefused(p, "node 3 (%s)" % dead, "the group exists on %s, %s only" % (
            self.urls[0], self.urls[1]), "admin group delete " + SPARE)
        self.assertIsNotNone(err)
        p = self.admin("group", "delete", SPARE)
        self.assertCliRefused(p, "--yes")
        r = self.nodes[0].g.request("DELETE", "/v1/groups/%s" % harness.quote(SPARE), cert=self.alice)
        self.assertIn(r.status, (401, 403), r)
        for n in (0, 1):
            self.assertTrue(self.store_query(self.nodes[n], "SELECT k.version FROM group_keys k JOIN "
                                             "groups g ON g.id = k.group_id WHERE g.name = '%s'" % SPARE))
            p = self.nodes[n].bl("admin", *self.admin_args(self.urls[n]), "group", "delete", SPARE,
                                 "--yes", check=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(self.store_query(self.nodes[n], "SELECT id FROM groups WHERE name = '%s'"
                                              % SPARE), [])
            self.assertEqual(self.store_query(self.nodes[n], "SELECT COUNT(*) FROM group_keys k LEFT "
                                              "JOIN groups g ON g.id = k.group_id WHERE g.id IS NULL")[0][0]
                             in (0, "0"), True)
            audit = self.store_query(self.nodes[n], "SELECT operation, result FROM audit_log WHERE "
                                     "group_name = '%s' AND operation = 'group-delete'" % SPARE)
            self.assertEqual([tuple(a) for a in audit], [("group-delete", "ok")])
            self.assertRefused(self.nodes[n].g.get("/v1/groups/%s/certificate" % harness.quote(SPARE)),
                               404, "unknown-group")
        p = self.admin("group", "create", SPARE, "--key-type", "p256-threshold", "--threshold", "2",
                       "--nodes", ",".join([self.urls[0], self.urls[1], self.urls[3]]))
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    harness.main()
