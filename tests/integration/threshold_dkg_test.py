#!/usr/bin/env python3
"""Threshold groups made without a dealer: distributed key generation (docs/threshold.md).

Usage: threshold_dkg_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Three groupd nodes with [threshold] node_ca_certificate (each its own store and master key) and a
fourth without it. Checked, in this order:
  1. `admin group create --dkg` makes a k = 2 of n = 3 group: every node serves one certificate
     whose key is d·G for the d interpolated from two nodes' stores (computed here, from the
     stores and master keys); a post made by `openssl cms -encrypt` opens with any two nodes and
     not with one; the command's transcript holds neither d nor any share nor any piece f_i(j)
     (the pieces computed here from the sealed states and the master keys), in any encoding, and
     no node's store holds d or a share in the clear; every round is audited at every node;
  2. the rounds refuse what would leak or break a share: a node without a node CA (409
     no-node-ca, and the command names it), a relay that swaps a node's round key
     (bad-signature naming that node), a state from another round or an expired one
     (bad-state), a node that deals a bad piece (bad-share naming it at check; its round then fails; nothing is stored), one
     node listed twice under two spellings of its URL (bad-signature), two nodes on one host,
     a group certificate for the right key from another CA (wrong-certificate);
  3. share refresh and node replacement work on the group made without a dealer;
  4.-6. a certificate naming another node's host, one view per round (a stuck round named whole
     and cancelled with `group dkg-cancel`), node URLs;
  7. a relay and one colluding node cannot choose the key: no node stores without every node's
     signed accept, and the honest node given a bad piece never accepts (n - 1 accepts, an accept
     from a node outside the view or over another view: refused; nothing stored anywhere);
  8. a node accusing an honest dealer: the command names both, says one of the two is faulty,
     and nothing is stored.
"""

import base64
import binascii
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkg_points as E  # noqa: E402
import harness  # noqa: E402

GROUP = "dkg@example.org"
Q = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of P-256


def lagrange_at_zero(indices, i):
    num, den = 1, 1
    for j in indices:
        if j != i:
            num = num * j % Q
            den = den * (j - i) % Q
    return num * pow(den, -1, Q) % Q


class DkgNode(harness.Deployment):
    """A groupd node that may take part in a key generation: it trusts the TLS CA for its peers."""

    def __init__(self, name, node_ca, **kw):
        super().__init__(name, **kw)
        self.node_ca = node_ca

    def groupd_config(self, limits=None):
        config = super().groupd_config(limits)
        if self.node_ca:
            config["threshold"] = {"node_ca_certificate": self.pki.crt("tls-ca")}
        return config


class ThresholdDkg(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401 (fails early)
        # Each node on a loopback address of its own, with a certificate naming only that one: a
        # key generation refuses two nodes on one host (a certificate names no port).
        first = DkgNode("dkg1", True, with_certd=False)
        first._make_pki()
        pki = first.pki
        cls.admin_cert = (pki.client("dkg-admin", "tls-ca", "dkg admin"), pki.key("dkg-admin"))
        fingerprint = hashlib.sha256(harness.cert_der(cls.admin_cert[0])).hexdigest()
        first.admin_fingerprints = [fingerprint]
        cls.nodes = [first] + [DkgNode("dkg%d" % i, i != 4, with_certd=False, pki=pki,
                                       admin_fingerprints=[fingerprint], host="127.0.0.%d" % i)
                               for i in (2, 3, 4)]
        for d in cls.nodes:
            d.start()
        cls.pki = pki
        cls.urls = [d.g.url() for d in cls.nodes]
        cls.alice = (pki.member("alice", "tls-ca", "ec", "alice@example.org"), pki.key("alice"))

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

    def read(self, servers, post):
        args = ["open"]
        for s in servers:
            args += ["--server", s]
        args += ["--ca", self.pki.crt("tls-ca"), "--client-cert", self.alice[0], "--client-key",
                 self.alice[1], "--group", GROUP, "--method", "threshold", "-i", post]
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

    def store_bytes(self, d):
        """Everything node d's store holds, as bytes (the SQLite files, or a dump of PostgreSQL)."""
        if d.store_url.startswith("sqlite:"):
            path = d.store_url[len("sqlite:"):]
            return b"".join(harness.read(p) for p in (path, path + "-wal") if os.path.exists(p))
        return subprocess.run(["pg_dump", "--data-only", d.store_url], check=True,
                              capture_output=True).stdout

    def audited(self, d, group, operation, result):
        """The reason of node d's audit record (read from its store: the group may not exist)."""
        rows = self.store_query(d, "SELECT reason FROM audit_log WHERE group_name = '%s' AND "
                                   "operation = '%s' AND result = '%s'" % (group, operation, result))
        self.assertTrue(rows, "no audit record %s %s of %s" % (operation, result, group))
        return rows[0][0]

    def master(self, d):
        return bytes.fromhex(harness.read(d.f("master.key")).decode().strip())

    def share_of(self, d, group=GROUP):
        """Node d's (index, scalar), read from its store and unsealed with its master key."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        rows = self.store_query(d, "SELECT %s FROM group_keys k JOIN groups g ON g.id = k.group_id "
                                   "WHERE g.name = '%s' AND k.version = 1" % (
                                       "k.sealed_private_key" if d.store_url.startswith("sqlite:")
                                       else "encode(k.sealed_private_key, 'hex')", group))
        sealed = rows[0][0] if isinstance(rows[0][0], bytes) else bytes.fromhex(rows[0][0])
        context = ("blindlist threshold-share %s v1" % group).encode()
        plain = AESGCM(self.master(d)).decrypt(sealed[1:13], sealed[13:], context)
        return plain[1], int.from_bytes(plain[4:36], "big")

    @staticmethod
    def state_context(group, rnd, k, urls, index):
        return ("blindlist threshold-dkg-state v1 group=%s round=%s k=%d n=%d index=%d nodes=%s" % (
            group, rnd, k, len(urls), index, ",".join(urls))).encode()

    def open_state(self, d, state_b64, context):
        """(expiry, round scalar, [f_i(1), ..., f_i(n)]) from a start round's sealed state."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        sealed = base64.b64decode(state_b64)
        plain = AESGCM(self.master(d)).decrypt(sealed[1:13], sealed[13:], context)
        self.assertEqual(plain[0], 1)
        scalars = [int.from_bytes(plain[i:i + 32], "big") for i in range(9, len(plain), 32)]
        return int.from_bytes(plain[1:9], "big"), scalars[0], scalars[1:]

    def reseal_state(self, d, context, expiry, scalar, pieces):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        plain = bytes([1]) + expiry.to_bytes(8, "big") + b"".join(
            v.to_bytes(32, "big") for v in [scalar] + pieces)
        nonce = os.urandom(12)
        return base64.b64encode(bytes([1]) + nonce + AESGCM(self.master(d)).encrypt(
            nonce, plain, context)).decode()

    def show(self, n, group=GROUP):
        return self.admin_at(self.nodes[n], "group", "show", group)["keys"][0]["threshold"]

    def assertNoSecretIn(self, secrets, text_or_bytes, where):
        blobs = [text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode()]
        text = blobs[0].decode(errors="replace")
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
                    self.assertNotIn(form, blob, "%s appears in %s" % (name, where))

    # 1
    def test_1_create_without_a_dealer(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        transcript = self.nodes[0].f("transcript.json")
        p = self.admin("group", "create", GROUP, "--key-type", "p256-threshold", "--threshold", "2",
                       "--nodes", ",".join(self.urls[:3]), "--dkg", "--transcript", transcript)
        self.assertEqual(p.returncode, 0, p.stderr)
        created = json.loads(p.stdout)
        self.assertEqual([n["index"] for n in created["nodes"]], [1, 2, 3])
        for n in range(3):
            t = self.show(n)
            self.assertEqual((t["index"], t["k"], t["n"]), (n + 1, 2, 3))
            self.assertEqual(t["commitments"], created["commitments"])
            r = self.nodes[n].g.get("/v1/groups/%s/certificate" % harness.quote(GROUP))
            self.assertEqual(harness.cert_der(r.body.decode()), harness.cert_der(created["certificate"]))
            for op in ("threshold-dkg-start", "threshold-dkg-deal", "threshold-dkg-check",
                       "threshold-dkg-finish"):
                rec = self.assertAudited(self.nodes[n], GROUP, op, "ok")
                self.assertIn("index:%d" % (n + 1), rec["reason"])
            # The one round the group was made in, as every node keeps it (no prune reaches it).
            rounds = self.admin_at(self.nodes[n], "group", "show", GROUP)["dkg_rounds"]
            self.assertEqual([r["round"] for r in rounds], [rec["reason"].split()[0][len("round:"):]])
            self.assertEqual((rounds[0]["finished"], rounds[0]["current"]), (True, True))
            self.assertGreater(rounds[0]["started_at"], time.time() - 600)
        # d from two stores and master keys: d·G is the certificate's key; a third share agrees.
        shares = dict(self.share_of(self.nodes[n]) for n in range(3))
        self.assertEqual(sorted(shares), [1, 2, 3])
        d = sum(lagrange_at_zero([1, 2], i) * shares[i] for i in (1, 2)) % Q
        self.assertEqual(d, sum(lagrange_at_zero([2, 3], i) * shares[i] for i in (2, 3)) % Q)
        cert = x509.load_pem_x509_certificate(created["certificate"].encode())
        point = serialization.PublicFormat.UncompressedPoint
        self.assertEqual(ec.derive_private_key(d, ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.X962, point),
            cert.public_key().public_bytes(serialization.Encoding.X962, point))
        # A post made by openssl to the certificate: any two nodes open it, one does not.
        for n in range(3):
            self.admin_at(self.nodes[n], "member", "add", GROUP, "alice@example.org", "--cert",
                          self.alice[0])
        cert_file = self.nodes[0].f("group.crt")
        harness.write(cert_file, created["certificate"])
        ent = self.nodes[0].f("entity.txt")
        harness.write(ent, harness.entity("made without a dealer"))
        post = self.nodes[0].f("post.eml")
        harness.osl_encrypt(ent, post, cert_file)
        for pair in ([0, 1], [1, 2], [2, 0]):
            p = self.read([self.urls[i] for i in pair], post)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"made without a dealer", p.stdout)
        for one in range(3):
            p = self.read([self.urls[one]], post)
            self.assertNotEqual(p.returncode, 0)
            self.assertNotIn(b"made without a dealer", p.stdout)
        # The transcript: no d, no share, no piece. The pieces come from the sealed states it
        # carries, opened here with the master keys (which the command never had).
        text = harness.read(transcript).decode()
        relayed = json.loads(text)
        self.assertEqual(len(relayed), 12, "four rounds at three nodes")
        secrets = {"d": d}
        secrets.update({"d_%d" % i: v for i, v in shares.items()})
        starts = [e for e in relayed if e["path"].endswith("/dkg/start")]
        for e in starts:
            i = e["request"]["index"]
            context = self.state_context(GROUP, e["request"]["round"], 2, self.urls[:3], i)
            expiry, scalar, pieces = self.open_state(self.nodes[i - 1], e["answer"]["state"], context)
            self.assertGreater(expiry, time.time())
            secrets["r_%d" % i] = scalar
            secrets.update({"f_%d(%d)" % (i, j + 1): v for j, v in enumerate(pieces)})
        self.assertEqual(sum(secrets["f_%d(1)" % i] for i in (1, 2, 3)) % Q, shares[1],
                         "the pieces searched for are the right ones")
        self.assertNoSecretIn(secrets, text, "the transcript")
        for n in range(3):
            self.assertNoSecretIn({"d": d, "d_%d" % (n + 1): shares[n + 1]},
                                  self.store_bytes(self.nodes[n]), "the store of node %d" % (n + 1))

    def manual_round(self, group, rnd, nodes=(0, 1, 2)):
        urls = [self.urls[n] for n in nodes]
        base = {"round": rnd, "threshold": 2, "nodes": urls}
        starts, states = [], []
        for i, n in enumerate(nodes):
            r = self.post_admin(n, "/v1/groups/%s/threshold/dkg/start" % harness.quote(group),
                                dict(base, index=i + 1))
            self.assertEqual(r.status, 200, r)
            states.append(r.json.pop("state"))
            starts.append(r.json)
        return dict(base, starts=starts), states

    def deal_and_check(self, group, body, states, nodes=(0, 1, 2)):
        """Every node deals on `body`'s view and checks its pieces: `body` with deals and accepts."""
        path = "/v1/groups/%s/threshold/dkg/" % harness.quote(group)
        pieces_to = {i + 1: [] for i in range(len(nodes))}
        deals = []
        for i, n in enumerate(nodes):
            r = self.post_admin(n, path + "deal", dict(body, index=i + 1, state=states[i]))
            self.assertEqual(r.status, 200, r)
            deals.append({"index": i + 1, "signature": r.json["signature"]})
            for p in r.json["pieces"]:
                pieces_to[p["to"]].append({"from": i + 1, "piece": p["piece"]})
        body = dict(body, deals=deals)
        accepts = []
        for i, n in enumerate(nodes):
            r = self.post_admin(n, path + "check", dict(body, index=i + 1, state=states[i],
                                                        pieces=pieces_to[i + 1]))
            self.assertEqual(r.status, 200, r)
            accepts.append({"index": i + 1, "signature": r.json["signature"]})
        return {k: v for k, v in dict(body, accepts=accepts).items() if k != "deals"}

    def assertStoredNowhere(self, group, nodes=(0, 1, 2)):
        for n in nodes:
            self.assertRefused(self.nodes[n].g.get("/v1/groups/%s/certificate" % harness.quote(group)),
                               404, "unknown-group")

    # 2
    def test_2_refusals(self):
        group = "manual@example.org"
        g = harness.quote(group)
        path = "/v1/groups/%s/threshold/dkg/" % g
        # A node without a node CA takes part in none; the command names it, and nothing is stored.
        base = {"round": "cd" * 16, "threshold": 2, "nodes": [self.urls[3], self.urls[0], self.urls[1]],
                "index": 1}
        self.assertRefused(self.post_admin(3, path + "start", base), 409, "no-node-ca")
        r = self.nodes[0].g.post(path + "start", dict(base, nodes=self.urls[:3]),
                                 token=self.nodes[0].admin_token)
        self.assertRefused(r, 403, "not-admin")
        p = self.admin("group", "create", group, "--key-type", "p256-threshold", "--threshold", "2",
                       "--nodes", ",".join(self.urls[:2] + [self.urls[3]]), "--dkg")
        self.assertCliRefused(p, "dkg start at %s" % self.urls[3], "node_ca_certificate",
                              "no node stored the group",
                              "round cancelled at %s, %s" % (self.urls[0], self.urls[1]))
        # A URL the node's certificate does not name; a malformed round.
        wrong = self.urls[0].replace("127.0.0.1", "localhost.invalid")
        self.assertRefused(self.post_admin(0, path + "start", dict(base, nodes=[wrong] + self.urls[1:3])),
                           400, "wrong-url")
        # Fewer than 2k - 1 nodes: k - 1 colluders could fit their commitments to a key they chose.
        r = self.post_admin(0, path + "start", dict(base, nodes=self.urls[:3], threshold=3))
        self.assertIn("2 * threshold - 1", self.assertRefused(r, 400, "malformed-request")["message"])
        self.assertRefused(self.post_admin(0, path + "start", dict(base, nodes=[self.urls[1]] * 2)),
                           400, "malformed-request")
        self.assertRefused(self.post_admin(0, path + "start", dict(base, round="xyz")), 400,
                           "malformed-request")
        # A relay that puts another key in node 2's place (here node 3's): refused, naming node 2.
        body, states = self.manual_round(group, "ef" * 16)
        forged = [dict(s) for s in body["starts"]]
        forged[1]["key"] = forged[2]["key"]
        r = self.post_admin(0, path + "deal", dict(body, starts=forged, index=1, state=states[0]))
        self.assertIn("node 2", self.assertRefused(r, 400, "bad-signature")["message"])
        self.assertIn("index:1", self.audited(self.nodes[0], group, "threshold-dkg-deal",
                                              "bad-signature"))
        # Node 2's start relayed as node 3's (the same CA, the same host): its index is signed.
        swapped = [body["starts"][0], body["starts"][1], dict(body["starts"][1], index=3)]
        r = self.post_admin(0, path + "deal", dict(body, starts=swapped, index=1, state=states[0]))
        self.assertIn("node 3", self.assertRefused(r, 400, "bad-signature")["message"])
        # Two nodes on one host (their certificates cannot tell their ports apart): refused.
        same_host = "https://127.0.0.1:%d" % (int(self.urls[0].rsplit(":", 1)[1]) % 60000 + 1)
        r = self.post_admin(0, path + "start", dict(base, nodes=[self.urls[0], same_host]))
        self.assertIn("one host twice", self.assertRefused(r, 400, "malformed-request")["message"])
        for bad in ("/x", "?q=1", "#f", ":", ":0", ":99999"):
            host = self.urls[1] if bad.startswith(("/", "?", "#")) else self.urls[1].rsplit(":", 1)[0]
            r = self.post_admin(0, path + "start", dict(base, nodes=[self.urls[0], host + bad]))
            self.assertRefused(r, 400, "malformed-request")
        # One node under two spellings of its URL (its certificate names both) would take two
        # indices, so two shares: every other node refuses the round.
        # A node keeps one round per group and starts a round id once: the relay cannot get both
        # starts from it, even by cancelling the first in between. The node itself (its TLS key)
        # can sign a second start, which every other node refuses.
        alias = self.urls[0].replace("127.0.0.1", "localhost")
        twice = {"round": "ab" * 16, "threshold": 2, "nodes": [self.urls[0], alias, self.urls[1]]}
        twice_group = "twice@example.org"
        twice_path = "/v1/groups/%s/threshold/dkg/" % harness.quote(twice_group)
        starts = []
        for i, n in ((1, 0), (2, 0), (3, 1)):
            if i == 2:
                self.assertRefused(self.post_admin(n, twice_path + "start", dict(twice, index=i)),
                                   409, "dkg-round-differs")
                r = self.post_admin(n, twice_path + "cancel", dict(twice, index=1))
                self.assertEqual(r.status, 200, r)
                self.assertRefused(self.post_admin(n, twice_path + "start", dict(twice, index=i)),
                                   409, "dkg-round-used")
                key2 = E.enc(E.mul(E.rand()))
                commit2 = E.enc(E.mul(E.rand())) + E.enc(E.mul(E.rand()))
                signed = E.sign(self.pki.key("groupd-dkg1"), E.start_message(
                    twice_group, twice["round"], 2, 3, 2, alias, key2, commit2))
                starts.append({"index": 2, "key": E.b64(key2), "commitments": E.b64(commit2),
                               "signature": E.b64(signed), "certificate": starts[0]["certificate"]})
                continue
            r = self.post_admin(n, twice_path + "start", dict(twice, index=i))
            self.assertEqual(r.status, 200, r)
            if i == 3:
                own_state = r.json["state"]
            starts.append({k: v for k, v in r.json.items() if k != "state"})
        r = self.post_admin(1, twice_path + "deal", dict(twice, starts=starts, index=3, state=own_state))
        self.assertIn("one node cannot hold two indices", self.assertRefused(r, 400, "bad-signature")["message"])
        # Another node's state, a state from another round, an expired state.
        r = self.post_admin(0, path + "deal", dict(body, index=1, state=states[1]))
        self.assertRefused(r, 400, "bad-state")
        other, other_states = self.manual_round("other@example.org", "0f" * 16)
        r = self.post_admin(0, path + "deal", dict(body, index=1, state=other_states[0]))
        self.assertRefused(r, 400, "bad-state")
        context = self.state_context(group, body["round"], 2, self.urls[:3], 1)
        _, scalar, pieces = self.open_state(self.nodes[0], states[0], context)
        expired = self.reseal_state(self.nodes[0], context, int(time.time()) - 1, scalar, pieces)
        r = self.post_admin(0, path + "deal", dict(body, index=1, state=expired))
        self.assertIn("expired", self.assertRefused(r, 400, "bad-state")["message"])
        # Node 2 deals a bad piece to node 3 (its state changed with its master key): node 3
        # names node 2 and stores nothing.
        context2 = self.state_context(group, body["round"], 2, self.urls[:3], 2)
        expiry, scalar2, pieces2 = self.open_state(self.nodes[1], states[1], context2)
        pieces2[2] = (pieces2[2] + 1) % Q
        bad_state = self.reseal_state(self.nodes[1], context2, expiry, scalar2, pieces2)
        pieces_to = {1: [], 2: [], 3: []}
        deals = []
        for i in (1, 2, 3):
            state = bad_state if i == 2 else states[i - 1]
            r = self.post_admin(i - 1, path + "deal", dict(body, index=i, state=state))
            self.assertEqual(r.status, 200, r)
            deals.append({"index": i, "signature": r.json["signature"]})
            for p in r.json["pieces"]:
                pieces_to[p["to"]].append({"from": i, "piece": p["piece"]})
        body = dict(body, deals=deals)
        r = self.post_admin(2, path + "check", dict(body, index=3, state=states[2],
                                                    pieces=pieces_to[3]))
        self.assertIn("node 2", self.assertRefused(r, 400, "bad-share")["message"])
        self.audited(self.nodes[2], group, "threshold-dkg-check", "bad-share")
        # Node 3's round has failed: it never accepts nor stores for it, whatever it is given.
        r = self.post_admin(2, path + "check", dict(body, index=3, state=states[2],
                                                    pieces=pieces_to[3]))
        self.assertRefused(r, 409, "dkg-failed")
        # A piece changed in transit does not open; the honest pieces are accepted at node 1.
        tampered = [dict(p) for p in pieces_to[1]]
        raw = bytearray(base64.b64decode(tampered[0]["piece"]))
        raw[-1] ^= 1
        tampered[0]["piece"] = base64.b64encode(bytes(raw)).decode()
        r = self.post_admin(0, path + "check", dict(body, index=1, state=states[0], pieces=tampered))
        self.assertRefused(r, 400, "bad-piece")
        accepts = []
        for i in (1, 2):
            r = self.post_admin(i - 1, path + "check", dict(body, index=i, state=states[i - 1],
                                                            pieces=pieces_to[i]))
            self.assertEqual(r.status, 200, r)
            accepts.append({"index": i, "signature": r.json["signature"]})
        # Without node 3's accept nobody stores: two accepts, or node 1's in node 3's place.
        finish = {k: v for k, v in body.items() if k != "deals"}
        r = self.post_admin(0, path + "finish", dict(finish, index=1, accepts=accepts))
        self.assertRefused(r, 400, "malformed-request")
        r = self.post_admin(0, path + "finish", dict(finish, index=1, accepts=accepts + [
            dict(accepts[0], index=3)]))
        self.assertIn("node 3", self.assertRefused(r, 400, "bad-signature")["message"])
        self.assertStoredNowhere(group)
        for n in range(3):
            self.assertEqual(self.post_admin(n, path + "cancel", dict(body, index=n + 1)).status, 200)
        # A round where every node accepts: node 1 stores and issues the certificate.
        body, states = self.manual_round(group, "e1" * 16)
        body = self.deal_and_check(group, body, states)
        r = self.post_admin(0, path + "finish", dict(body, index=1))
        self.assertEqual(r.status, 201, r)
        # Node 1's certificate re-signed by a CA of the relay's (the same key C0, the same names):
        # node 2 refuses it, and takes node 1's own.
        real = self.nodes[0].g.get("/v1/groups/%s/certificate" % g).body
        real_path = os.path.join(self.pki.dir, "manual-group.crt")
        harness.write(real_path, real)
        self.pki.make_ca("relay-ca", "A relay's CA")
        forged_path = os.path.join(self.pki.dir, "manual-forged.crt")
        pub = harness.openssl("x509", "-in", real_path, "-pubkey", "-noout").stdout
        harness.write(os.path.join(self.pki.dir, "manual-c0.pem"), pub)
        self.pki.gen_key("manual-any", "ec")
        harness.openssl("req", "-new", "-key", self.pki.key("manual-any"), "-subj", "/CN=%s" % group,
                        "-addext", "subjectAltName=email:%s" % group,
                        "-out", os.path.join(self.pki.dir, "manual-any.csr"))
        harness.openssl("x509", "-req", "-in", os.path.join(self.pki.dir, "manual-any.csr"),
                        "-force_pubkey", os.path.join(self.pki.dir, "manual-c0.pem"), "-copy_extensions",
                        "copy", "-CA", self.pki.crt("relay-ca"), "-CAkey", self.pki.key("relay-ca"),
                        "-set_serial", "7", "-days", "30", "-out", forged_path)
        r = self.post_admin(1, path + "finish", dict(body, index=2,
                                                     certificate=harness.read(forged_path).decode()))
        self.assertRefused(r, 400, "wrong-certificate")
        # The real certificate with a second PEM block behind it (served by no check): refused.
        r = self.post_admin(1, path + "finish", dict(body, index=2, certificate=real.decode() +
                                                     harness.read(forged_path).decode()))
        self.assertIn("one PEM block", self.assertRefused(r, 400, "malformed-request")["message"])
        r = self.post_admin(1, path + "finish", dict(body, index=2, certificate=real.decode()))
        self.assertEqual(r.status, 201, r)
        # The group exists there now: every round refuses it.
        self.assertRefused(self.post_admin(0, path + "start", dict(other, index=1)), 409, "exists")

    # 3
    def test_3_refresh_and_replace(self):
        p = self.admin("group", "refresh-shares", GROUP, "--nodes", ",".join(self.urls[:3]))
        self.assertEqual(p.returncode, 0, p.stderr)
        post = self.nodes[0].f("post.eml")
        p = self.read([self.urls[0], self.urls[2]], post)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"made without a dealer", p.stdout)
        p = self.admin("group", "replace-node", GROUP, "--nodes", ",".join(self.urls[:2]), "--index",
                       "3", "--new", self.urls[3])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.show(3)["index"], 3)
        self.admin_at(self.nodes[3], "member", "add", GROUP, "alice@example.org", "--cert",
                      self.alice[0])
        p = self.read([self.urls[3], self.urls[1]], post)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"made without a dealer", p.stdout)


    # 4
    def test_4_a_certificate_naming_another_nodes_host(self):
        """A node whose certificate (from the node CA) also names node 2's host could answer for
        node 2's index: every other node refuses the round, naming both."""

        class Greedy(DkgNode):
            def _make_pki(self):
                super()._make_pki()
                self.pki.issue("groupd-%s" % self.name, "tls-ca", "ec", self.host, key_usage="digitalSignature",
                               ext_key_usage="serverAuth", san="IP:%s,IP:127.0.0.2" % self.host)

        greedy = Greedy("dkg5", True, with_certd=False, pki=self.pki,
                        admin_fingerprints=self.nodes[0].admin_fingerprints, host="127.0.0.5").start()
        group = "greedy@example.org"
        path = "/v1/groups/%s/threshold/dkg/" % harness.quote(group)
        base = {"round": "5a" * 16, "threshold": 2, "nodes": [self.urls[0], self.urls[1], greedy.g.url()]}
        starts, states = [], []
        for i, ep in ((1, self.nodes[0].g), (2, self.nodes[1].g), (3, greedy.g)):
            r = ep.post(path + "start", dict(base, index=i), cert=self.admin_cert)
            self.assertEqual(r.status, 200, r)
            states.append(r.json.pop("state"))
            starts.append(r.json)
        r = self.post_admin(0, path + "deal", dict(base, starts=starts, index=1, state=states[0]))
        body = self.assertRefused(r, 400, "bad-signature")
        self.assertIn("node 3", body["message"])
        self.assertIn("also names the host of node 2", body["message"])


    # 5
    def test_5_one_view_per_round(self):
        """A node keeps its round: one start answer, one deal on one view, a finish only on that
        view with every dealer's signature over it. A relay can no longer leave honest nodes on
        different group keys."""
        group = "views@example.org"
        path = "/v1/groups/%s/threshold/dkg/" % harness.quote(group)
        base = {"round": "7e" * 16, "threshold": 2, "nodes": self.urls[:3]}
        # (a) A start asked twice: the same signed answer, never new coefficients.
        first = self.post_admin(0, path + "start", dict(base, index=1))
        self.assertEqual(first.status, 200, first)
        again = self.post_admin(0, path + "start", dict(base, index=1))
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json, first.json)
        # No second round for the group while this one lasts (no starts to pick from), and not
        # the same round with another node list.
        r = self.post_admin(0, path + "start", dict(base, round="7f" * 16, index=1))
        # The whole round id, and how to cancel it: an operator can end a stuck round.
        message = self.assertRefused(r, 409, "dkg-in-progress")["message"]
        self.assertIn("round %s" % base["round"], message)
        # The whole command, with the round's own threshold and node list, as an operator runs it.
        self.assertTrue(message.endswith(": blindlist admin group dkg-cancel %s --round %s --threshold 2 "
                                         "--nodes %s" % (group, base["round"], ",".join(self.urls[:3]))),
                        message)
        other_order = [self.urls[0], self.urls[2], self.urls[1]]
        self.assertRefused(self.post_admin(0, path + "start", dict(base, nodes=other_order, index=1)),
                           409, "dkg-round-differs")
        body, states = self.manual_round(group, base["round"])
        for field in ("key", "commitments", "signature"):
            self.assertEqual(body["starts"][0][field], first.json[field])
        # A start whose certificate field holds two PEM blocks is refused.
        doubled = [dict(x) for x in body["starts"]]
        doubled[2]["certificate"] += doubled[2]["certificate"]
        r = self.post_admin(0, path + "deal", dict(body, starts=doubled, index=1, state=states[0]))
        self.assertIn("one PEM block", self.assertRefused(r, 400, "malformed-request")["message"])
        # (b) Node 1 deals on view A; the same view again gets the same answer.
        deal_a = self.post_admin(0, path + "deal", dict(body, index=1, state=states[0]))
        self.assertEqual(deal_a.status, 200, deal_a)
        self.assertEqual(self.post_admin(0, path + "deal", dict(body, index=1, state=states[0])).json,
                         deal_a.json)
        # A round cancelled at one node cannot start there again under its id, at once or after
        # it would have expired: a relay alone cannot draw that node new coefficients until the
        # summed key pleases it. Only a whole new round (a new id, at every node) starts.
        r = self.post_admin(2, path + "cancel", dict(base, index=3))
        self.assertEqual(r.status, 200, r)
        for _ in range(2):
            r = self.post_admin(2, path + "start", dict(base, index=3))
            self.assertIn(base["round"], self.assertRefused(r, 409, "dkg-round-used")["message"])
        self.audited(self.nodes[2], group, "threshold-dkg-start", "dkg-round-used")
        # View B: node 3 itself (its TLS key: a colluding node) signs a second start of the round.
        rnd = base["round"]
        tls3 = self.pki.key("groupd-dkg3")
        r3, coefficients = E.rand(), [E.rand(), E.rand()]
        key3, commit3 = E.enc(E.mul(r3)), b"".join(E.enc(E.mul(c)) for c in coefficients)
        start3 = {"index": 3, "key": E.b64(key3), "commitments": E.b64(commit3),
                  "signature": E.b64(E.sign(tls3, E.start_message(group, rnd, 2, 3, 3, self.urls[2],
                                                                  key3, commit3))),
                  "certificate": body["starts"][2]["certificate"]}
        view_b = dict(body, starts=body["starts"][:2] + [start3])
        r = self.post_admin(0, path + "deal", dict(view_b, index=1, state=states[0]))
        self.assertIn(base["round"], self.assertRefused(r, 409, "dkg-other-view")["message"])
        # (c) The different-keys attack: nodes 2 and 3 deal on view B, node 1 dealt on view A.
        pieces = {1: [], 2: [], 3: []}
        deals = [{"index": 1, "signature": deal_a.json["signature"]}]
        for p in deal_a.json["pieces"]:
            pieces[p["to"]].append({"from": 1, "piece": p["piece"]})
        r = self.post_admin(1, path + "deal", dict(view_b, index=2, state=states[1]))
        self.assertEqual(r.status, 200, r)
        deals.append({"index": 2, "signature": r.json["signature"]})
        view_b_digest = E.unb64(r.json["view"])
        for p in r.json["pieces"]:
            pieces[p["to"]].append({"from": 2, "piece": p["piece"]})
        deals.append({"index": 3, "signature": E.b64(E.sign(tls3, E.deal_message(group, rnd, 3,
                                                                                  view_b_digest)))})
        for to in (1, 2):
            value = sum(c * pow(to, t, E.Q) for t, c in enumerate(coefficients)) % E.Q
            pieces[to].append({"from": 3, "piece": E.b64(E.seal_between(
                r3, E.dec(E.unb64(view_b["starts"][to - 1]["key"])),
                E.piece_context(group, rnd, 3, to, view_b_digest), E.encode_share(to, 2, 3, value)))})
        # Each check is refused: node 2 on view B (node 1 did not sign it), node 1 on view A
        # (node 2 did not sign it), node 2 shown view A (not the one it dealt on).
        r = self.post_admin(1, path + "check", dict(view_b, index=2, state=states[1],
                                                    pieces=pieces[2], deals=deals))
        self.assertIn("node 1", self.assertRefused(r, 400, "bad-signature")["message"])
        r = self.post_admin(0, path + "check", dict(body, index=1, state=states[0],
                                                    pieces=pieces[1], deals=deals))
        self.assertIn("node 2", self.assertRefused(r, 400, "bad-signature")["message"])
        r = self.post_admin(1, path + "check", dict(body, index=2, state=states[1],
                                                    pieces=pieces[2], deals=deals))
        self.assertRefused(r, 400, "dkg-view")
        for n in range(3):
            self.assertRefused(self.nodes[n].g.get("/v1/groups/%s/certificate" % harness.quote(group)),
                               404, "unknown-group")
        # The command meets the unfinished round and says how it goes; cancelled, it runs.
        create = ("group", "create", group, "--key-type", "p256-threshold", "--threshold", "2",
                  "--nodes", ",".join(self.urls[:3]), "--dkg")
        self.assertCliRefused(self.admin(*create), "dkg start at %s" % self.urls[0],
                              "another key generation round", "expires")
        # The cancel names the round as it was started: another node list is refused.
        p = self.admin("group", "dkg-cancel", group, "--round", base["round"], "--threshold", "2",
                       "--nodes", ",".join([self.urls[1], self.urls[0], self.urls[2]]))
        self.assertCliRefused(p, "not cancelled everywhere", "another node list, threshold or index")
        # As threshold.md shows it: no --server (the nodes are --nodes), connection options last.
        p = self.nodes[0].bl("admin", "group", "dkg-cancel", group, "--round", base["round"],
                             "--threshold", "2", "--nodes", ",".join(self.urls[:3]),
                             *self.admin_args(self.urls[0])[2:-1], check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        # Nodes 1 and 2 keep the round; node 3's was cancelled above.
        self.assertEqual(p.stdout.decode().count(": cancelled"), 2, p.stdout)
        self.assertIn("%s: dkg cancel at %s: server refused (409 dkg-no-round)" % (self.urls[2], self.urls[2]),
                      p.stdout.decode())
        transcript = self.nodes[0].f("views.json")
        p = self.admin(*create, "--transcript", transcript)
        self.assertEqual(p.returncode, 0, p.stderr)
        created = json.loads(p.stdout)
        # Every node lists both rounds it started for the group, the thrown-away one first, even
        # once the audit is pruned: an operator sees a round was run again.
        new_round = json.loads(harness.read(transcript))[0]["request"]["round"]
        for n in range(3):
            self.assertEqual(self.post_admin(n, "/v1/audit/prune", {"before": int(time.time())}).status, 200)
            rounds = self.admin_at(self.nodes[n], "group", "show", group)["dkg_rounds"]
            self.assertEqual([r["round"] for r in rounds], [base["round"], new_round])
        text = self.nodes[2].bl("admin", *self.admin_args(self.urls[2])[:-1], "group", "show", group).stdout.decode()
        self.assertRegex(text, r"key generation rounds started here \(every spelling, oldest first\):\n"
                               r"  %s  [-0-9: ]+UTC  ended without a group \(cancelled, failed or expired\)\n"
                               r"  %s  [-0-9: ]+UTC  this group was stored from it\n" % (base["round"], new_round))
        # (d) A finish replayed is refused: the group is there; deleted, the round is gone too.
        finish = [e for e in json.loads(harness.read(transcript)) if e["path"].endswith("/dkg/finish")]
        replay = finish[1]["request"]
        self.assertRefused(self.post_admin(1, path + "finish", replay), 409, "exists")
        self.admin_at(self.nodes[1], "group", "delete", group, "--yes")
        self.assertRefused(self.post_admin(1, path + "finish", replay), 409, "dkg-no-round")
        self.assertRefused(self.nodes[1].g.get("/v1/groups/%s/certificate" % harness.quote(group)),
                           404, "unknown-group")
        # Nodes 1 and 3 read what is posted to the new group.
        for n in (0, 2):
            self.admin_at(self.nodes[n], "member", "add", group, "alice@example.org", "--cert",
                          self.alice[0])
        cert_file = self.nodes[0].f("views.crt")
        harness.write(cert_file, created["certificate"])
        ent = self.nodes[0].f("views.txt")
        harness.write(ent, harness.entity("one view, one key"))
        post = self.nodes[0].f("views.eml")
        harness.osl_encrypt(ent, post, cert_file)
        args = ["open", "--server", self.urls[0], "--server", self.urls[2], "--ca",
                self.pki.crt("tls-ca"), "--client-cert", self.alice[0], "--client-key", self.alice[1],
                "--group", group, "--method", "threshold", "-i", post]
        p = self.nodes[0].bl(*args, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"one view, one key", p.stdout)

    # 6
    def test_6_node_urls(self):
        """Hosts compared with a trailing dot and IPv4-mapped IPv6 folded; a URL is
        https://HOST[:PORT] only, at the node and in the command."""
        path = "/v1/groups/%s/threshold/dkg/start" % harness.quote("urls@example.org")
        base = {"round": "9a" * 16, "threshold": 2, "index": 1}
        port2 = int(self.urls[1].rsplit(":", 1)[1])
        for alias in ("https://127.0.0.1.:%d" % port2, "https://[::ffff:127.0.0.1]:%d" % port2,
                      "https://[::FFFF:7f00:1]:%d" % port2):
            r = self.post_admin(0, path, dict(base, nodes=[self.urls[0], alias, self.urls[2]]))
            self.assertIn("one host twice", self.assertRefused(r, 400, "malformed-request")["message"])
        for bad in (self.urls[1] + "/", self.urls[1] + "/v1", "https://$(touch${IFS}pwned)",
                    "https://x;true", "https://a`b`", "https://[::1;x]:443"):
            r = self.post_admin(0, path, dict(base, nodes=[self.urls[0], bad, self.urls[2]]))
            self.assertRefused(r, 400, "malformed-request")
        # A non-ASCII address (the Kelvin sign folds to "k" in some lower()s): refused at once.
        r = self.post_admin(0, "/v1/groups/%s/threshold/dkg/start" % harness.quote("\u212aelvin@example.org"),
                            dict(base, nodes=self.urls[:3]))
        self.assertIn("ASCII", self.assertRefused(r, 400, "bad-address")["message"])
        # A group name a shell would read: the 409's command quotes it, word by word.
        odd = "a$b'c;d`e@example.org"
        odd_path = "/v1/groups/%s/threshold/dkg/start" % harness.quote(odd)
        odd_base = dict(base, nodes=self.urls[:3])
        self.assertEqual(self.post_admin(0, odd_path, odd_base).status, 200)
        r = self.post_admin(0, odd_path, dict(odd_base, round="9b" * 16))
        message = self.assertRefused(r, 409, "dkg-in-progress")["message"]
        command = re.search(r"the rest of this line\): (blindlist admin group dkg-cancel .*)$", message).group(1)
        parsed = subprocess.run(["bash", "-c", "set -f; printf '%s\\n' " + command[len("blindlist "):]],
                                capture_output=True, check=True).stdout.decode().splitlines()
        self.assertEqual(parsed, ["admin", "group", "dkg-cancel", odd, "--round", base["round"],
                                  "--threshold", "2", "--nodes", ",".join(self.urls[:3])])
        self.assertEqual(self.post_admin(0, odd_path.replace("/start", "/cancel"), odd_base).status, 200)
        p = self.admin("group", "create", "urls@example.org", "--key-type", "p256-threshold",
                       "--threshold", "2", "--nodes", ",".join([self.urls[0], self.urls[1] + "/",
                                                                self.urls[2]]), "--dkg")
        self.assertCliRefused(p, self.urls[1] + "/", "https://HOST[:PORT]")

    # 7
    def test_7_a_relay_and_one_node_cannot_choose_the_key(self):
        """The relay and node 3 (its TLS key) choose x: node 3 fits its commitments, after seeing
        the honest ones, so that C_0 = x·G and its piece for node 1 is a number it knows; the relay
        then finishes node 1 alone (node 2 would find node 3's piece bad). Node 1 accepts its
        pieces but stores nothing without node 2's accept; node 2 finds the bad piece."""
        group = "rush@example.org"
        path = "/v1/groups/%s/threshold/dkg/" % harness.quote(group)
        rnd = "3c" * 16
        base = {"round": rnd, "threshold": 2, "nodes": self.urls[:3]}
        starts, states = [], {}
        for i in (1, 2):
            r = self.post_admin(i - 1, path + "start", dict(base, index=i))
            self.assertEqual(r.status, 200, r)
            states[i] = r.json.pop("state")
            starts.append(r.json)
        x = E.rand()
        c0 = E.add(E.mul(x), E.neg(E.add(E.dec(E.unb64(starts[0]["commitments"])[:33]),
                                         E.dec(E.unb64(starts[1]["commitments"])[:33]))))
        known = E.rand()  # f_3(1): passes node 1's check
        c1 = E.add(E.mul(known), E.neg(c0))
        r3 = E.rand()
        key3 = E.enc(E.mul(r3))
        commit3 = E.enc(c0) + E.enc(c1)
        tls3 = self.pki.key("groupd-dkg3")
        starts.append({"index": 3, "key": E.b64(key3), "commitments": E.b64(commit3),
                       "signature": E.b64(E.sign(tls3, E.start_message(group, rnd, 2, 3, 3, self.urls[2],
                                                                       key3, commit3))),
                       "certificate": harness.read(self.pki.crt("groupd-dkg3")).decode()})
        deals, pieces_to, view = [], {1: [], 2: []}, None
        for i in (1, 2):
            r = self.post_admin(i - 1, path + "deal", dict(base, index=i, starts=starts, state=states[i]))
            self.assertEqual(r.status, 200, r)
            view = E.unb64(r.json["view"])
            deals.append({"index": i, "signature": r.json["signature"]})
            for p in r.json["pieces"]:
                if p["to"] in pieces_to:
                    pieces_to[p["to"]].append({"from": i, "piece": p["piece"]})
        deals.append({"index": 3, "signature": E.b64(E.sign(tls3, E.deal_message(group, rnd, 3, view)))})
        for to, value in ((1, known), (2, E.rand())):  # f_3(2) is unknown to node 3: a guess
            ctx = E.piece_context(group, rnd, 3, to, view)
            pieces_to[to].append({"from": 3, "piece": E.b64(E.seal_between(
                r3, E.dec(E.unb64(starts[to - 1]["key"])), ctx, E.encode_share(to, 2, 3, value)))})
        body = dict(base, starts=starts, deals=deals)
        r = self.post_admin(0, path + "check", dict(body, index=1, state=states[1], pieces=pieces_to[1]))
        self.assertEqual(r.status, 200, r)
        accept1 = {"index": 1, "signature": r.json["signature"]}
        r = self.post_admin(1, path + "check", dict(body, index=2, state=states[2], pieces=pieces_to[2]))
        self.assertIn("node 3", self.assertRefused(r, 400, "bad-share")["message"])
        # Node 3's accept, signed; node 2's is what the relay cannot make.
        def point(start, m):
            return E.dec(E.unb64(start["commitments"])[33 * m:33 * m + 33])
        summed = b"".join(E.enc(E.add(E.add(point(starts[0], m), point(starts[1], m)), point(starts[2], m)))
                          for m in (0, 1))
        self.assertEqual(summed[:33], E.enc(E.mul(x)), "the key node 3 chose")
        accept3 = {"index": 3, "signature": E.b64(E.sign(tls3, E.accept_message(group, rnd, 3, view, summed)))}
        finish = dict(base, starts=starts, index=1)
        # n - 1 accepts; node 3's in node 2's place; node 2's slot signed by a node outside the
        # view (node 4's TLS key); node 3's accept over another view: all refused at node 1.
        r = self.post_admin(0, path + "finish", dict(finish, accepts=[accept1, accept3]))
        self.assertIn("\"accepts\"", self.assertRefused(r, 400, "malformed-request")["message"])
        r = self.post_admin(0, path + "finish", dict(finish, accepts=[accept1, dict(accept3, index=2), accept3]))
        self.assertIn("node 2", self.assertRefused(r, 400, "bad-signature")["message"])
        outsider = E.b64(E.sign(self.pki.key("groupd-dkg4"), E.accept_message(group, rnd, 2, view, summed)))
        r = self.post_admin(0, path + "finish", dict(finish, accepts=[accept1, {"index": 2, "signature": outsider},
                                                                       accept3]))
        self.assertIn("node 2", self.assertRefused(r, 400, "bad-signature")["message"])
        other_view = E.b64(E.sign(tls3, E.accept_message(group, rnd, 3, bytes(32), summed)))
        forged2 = E.b64(E.sign(tls3, E.accept_message(group, rnd, 2, view, summed)))
        r = self.post_admin(0, path + "finish", dict(finish, accepts=[
            accept1, {"index": 2, "signature": forged2}, {"index": 3, "signature": other_view}]))
        self.assertRefused(r, 400, "bad-signature")
        # Node 2 refuses to finish a round it failed; nothing is stored anywhere.
        r = self.post_admin(1, path + "finish", dict(finish, index=2, certificate="x",
                                                     accepts=[accept1, accept1, accept3]))
        self.assertRefused(r, 409, "dkg-failed")
        self.audited(self.nodes[0], group, "threshold-dkg-finish", "bad-signature")
        self.assertStoredNowhere(group, (0, 1))

    # 8
    def test_8_an_accusation_names_both_nodes(self):
        """A node that answers its check with `400 bad-share` naming an honest dealer: the command
        cannot tell which of the two lies, says so, and nothing is stored."""
        import http.server
        import ssl
        import threading
        polynomials = {}

        class Accuser(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                group = self.path.split("/")[3].replace("%40", "@")
                rnd, k, urls = body["round"], body["threshold"], body["nodes"]
                n, me, tls = len(urls), 3, Accuser.tls_key
                if self.path.endswith("/start"):
                    a, r = [E.rand() for _ in range(k)], E.rand()
                    polynomials[rnd] = (a, r)
                    key, com = E.enc(E.mul(r)), b"".join(E.enc(E.mul(c)) for c in a)
                    sig = E.sign(tls, E.start_message(group, rnd, k, n, me, urls[me - 1], key, com))
                    return self.answer(200, {"index": me, "key": E.b64(key), "commitments": E.b64(com),
                                             "signature": E.b64(sig), "certificate": Accuser.cert_pem,
                                             "state": E.b64(b"\x01" * 40)})
                if self.path.endswith("/deal"):
                    a, r = polynomials[rnd]
                    starts = sorted(body["starts"], key=lambda st: st["index"])
                    msgs = [E.start_message(group, rnd, k, n, st["index"], urls[st["index"] - 1],
                                            E.unb64(st["key"]), E.unb64(st["commitments"])) for st in starts]
                    view = E.view_digest(group, rnd, k, urls, msgs)
                    f = lambda at: sum(c * pow(at, t, E.Q) for t, c in enumerate(a)) % E.Q  # noqa: E731
                    pieces = [{"to": j, "piece": E.b64(E.seal_between(
                        r, E.dec(E.unb64(starts[j - 1]["key"])), E.piece_context(group, rnd, me, j, view),
                        E.encode_share(j, k, n, f(j))))} for j in range(1, n + 1) if j != me]
                    return self.answer(200, {"index": me, "view": E.b64(view), "pieces": pieces,
                                             "signature": E.b64(E.sign(tls, E.deal_message(group, rnd, me, view)))})
                if self.path.endswith("/check"):
                    return self.answer(400, {"error": "bad-share", "message": "node 1 (%s) dealt a piece "
                                             "that does not match its commitments" % urls[0]})
                if self.path.endswith("/cancel"):
                    return self.answer(200, {"cancelled": rnd})
                self.answer(404, {"error": "unknown"})

        host = "127.0.0.13"
        self.pki.server("accuser", "tls-ca", host)
        Accuser.tls_key = self.pki.key("accuser")
        Accuser.cert_pem = harness.read(self.pki.crt("accuser")).decode()
        server = http.server.ThreadingHTTPServer((host, 0), Accuser)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.crt("accuser"), self.pki.key("accuser"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        urls = self.urls[:2] + ["https://%s:%d" % (host, server.server_address[1])]
        group = "accused@example.org"
        p = self.admin("group", "create", group, "--key-type", "p256-threshold", "--threshold", "2",
                       "--nodes", ",".join(urls), "--dkg")
        self.assertCliRefused(p, "node 3 (%s) says node 1 (%s) dealt a piece that does not match its "
                              "commitments: one of the two is faulty" % (urls[2], urls[0]),
                              "no node stored the group", "round cancelled at")
        self.assertStoredNowhere(group, (0, 1))

    # 9
    def test_9_every_spelling_is_one_group(self):
        """Rounds under two spellings of one address are one group's: one round at a time, one
        list of started rounds, kept whole: a group deleted and made again lists the old rounds
        (marked) before the one it was stored from, so finishing and deleting groups cannot hide
        thrown-away rounds."""
        spelled, group = "Spelled@Example.org", "spelled@example.org"
        base = {"threshold": 2, "nodes": self.urls[:3], "index": 1}
        start = "/v1/groups/%s/threshold/dkg/start"
        first = dict(base, round="5e" * 16)
        self.assertEqual(self.post_admin(0, start % harness.quote(spelled), first).status, 200)
        r = self.post_admin(0, start % harness.quote(group), dict(base, round="5f" * 16))
        self.assertRefused(r, 409, "dkg-in-progress")
        # The same round under the other spelling is another round's context: refused.
        r = self.post_admin(0, start % harness.quote(group), first)
        self.assertRefused(r, 409, "dkg-round-differs")
        r = self.post_admin(0, start.replace("/start", "/cancel") % harness.quote(spelled), first)
        self.assertEqual(r.status, 200, r)
        create = ("group", "create", group, "--key-type", "p256-threshold", "--threshold", "2",
                  "--nodes", ",".join(self.urls[:3]), "--dkg")
        p = self.admin(*create)
        self.assertEqual(p.returncode, 0, p.stderr)
        shown = self.admin_at(self.nodes[0], "group", "show", group)["dkg_rounds"]
        self.assertEqual([(x["round"], x["finished"]) for x in shown][0], (first["round"], False))
        self.assertEqual([(x["finished"], x["current"]) for x in shown], [(False, False), (True, True)])
        self.assertEqual([x["round"] for x in self.admin_at(self.nodes[1], "group", "show", group)
                          ["dkg_rounds"]], [shown[1]["round"]])
        # The group exists: no spelling of it takes a new round.
        r = self.post_admin(1, start % harness.quote(spelled), dict(base, round="60" * 16, index=2))
        self.assertIn(group, self.assertRefused(r, 409, "exists")["message"])
        # Deleted everywhere and made again: each node lists the old group's round, marked, before
        # the one this group was stored from (a relay finishing and deleting groups shows so).
        for n in range(3):
            self.admin_at(self.nodes[n], "group", "delete", group, "--yes")
        time.sleep(1.1)  # the new group is created in a later second than the old one finished
        p = self.admin(*create)
        self.assertEqual(p.returncode, 0, p.stderr)
        for n in range(3):
            rounds = self.admin_at(self.nodes[n], "group", "show", group)["dkg_rounds"]
            self.assertEqual([(x["finished"], x["current"]) for x in rounds][-2:],
                             [(True, False), (True, True)], rounds)
            self.assertEqual(rounds[-2]["round"], shown[1]["round"])
            self.assertNotIn(rounds[-1]["round"], (first["round"], shown[1]["round"]))

if __name__ == "__main__":
    harness.main()
