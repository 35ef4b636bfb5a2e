#!/usr/bin/env python3
"""A removed member is refused on every path, on the very next request, by every groupd node.

Usage: removed_member_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]
Store: SQLite (two groupd processes on one database file) or, with
BLINDLIST_TEST_STORE=postgres, the PostgreSQL test server (the scale-out set-up of
tests/integration/multinode_test.py: groupd A and B on one database), plus certd.

Each member holds a token, a registered certificate (mTLS) and a membership
certificate from certd, and reads through both nodes. Removed through one node,
the member is refused by the other node on the very next request, then on every
path of both: F, E, S, blind, bulk, secrets (token: 401 bad-token; certificate:
403 not-a-member), path G with the membership certificate issued before the
removal (403 revoked-certificate, single and bulk), certd issuance. Re-added,
the member's old token and old membership certificate stay dead. Every refusal is
counted in each node's /metrics and audited in the shared store; a member who was
not removed reads on, on both nodes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_lib as al  # noqa: E402
from attack_lib import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

GROUP = "atk-removed@example.org"
D = None
W = {}


def setUpModule():
    global D
    D = harness.Deployment("attack-removed").start()
    W["b_daemon"], W["B"] = D.extra_groupd("node-b", None)
    W["A"] = D.g
    expected_store = "postgresql" if harness.store_kind() == "postgres" else "sqlite"
    for name in ("A", "B"):
        r = W[name].get("/healthz")
        assert r.status == 200 and r.json.get("store") == expected_store, (name, r)
    assert W["A"].port != W["B"].port
    p = D.pki
    W["tmp"] = harness.tempdir("attack-removed-work")
    p.make_ca("member-ca", "Attack member CA")
    D.create_group(GROUP, "p256")
    W["members"] = {}
    for who in ("mallory", "trudy", "alice"):
        address = "%s@example.org" % who
        cert = (p.member(who, "member-ca", "ec", address), p.key(who))
        token = D.admin("member", "add", GROUP, address, "--cert", cert[0], "--token")["token"]
        W["members"][who] = {"address": address, "cert": cert, "token": token}
    cert = os.path.join(W["tmp"], "group.crt")
    D.public_certificate(GROUP, cert)
    entity = harness.write(os.path.join(W["tmp"], "entity.txt"), harness.entity("For members only."))
    W["ri"] = harness.recipient_infos(harness.cms_of(harness.osl_encrypt(entity, os.path.join(W["tmp"], "p.smime"),
                                                                         cert)))[0]
    for who, m in W["members"].items():
        key = al.ec_key_file(os.path.join(W["tmp"], "m-%s.key" % who))
        r = D.c.post("/v1/groups/%s/certificates" % quote(GROUP), {"csr": al.csr_pem(key)}, token=m["token"])
        assert r.status == 201, r
        m["mcert"] = (r.json["certificate"], key)
        m["serial"] = r.json["serial"]


def member_requests(m):
    """(name, method, path, body, credentials) of every member path, with the token and with mTLS."""
    q = quote(GROUP)
    ri = b64(W["ri"])
    ops = [("F", "POST", "/v1/groups/%s/unwrap" % q, {"recipient_info": ri}),
           ("E", "POST", "/v1/groups/%s/rewrap" % q, {"recipient_info": ri}),
           ("S", "POST", "/v1/groups/%s/rewrap/secret" % q, {"recipient_info": ri}),
           ("blind", "POST", "/v1/groups/%s/blind" % q, {"recipient_info": ri, "blinded": b64(al.valid_point())}),
           ("bulk", "POST", "/v1/groups/%s/bulk" % q,
            {"requests": [{"operation": "unwrap", "recipient_info": ri}, {"operation": "rewrap-secret",
                                                                          "recipient_info": ri}]}),
           ("secrets", "GET", "/v1/groups/%s/secrets" % q, None)]
    out = []
    for name, method, path, body in ops:
        out.append((name + "/token", method, path, body, {"token": m["token"]}))
        out.append((name + "/mtls", method, path, body, {"cert": m["cert"]}))
    return out


def path_g_requests(m):
    pem, key = m["mcert"]
    return [("G", lambda ep: al.path_g(ep, GROUP, pem, {"recipient_info": b64(W["ri"])}, key=key)),
            ("G-bulk", lambda ep: al.path_g(ep, GROUP, pem, [{"recipient_info": b64(W["ri"])}], key=key))]


class RemovedMember(harness.TestCase):
    def reads_everywhere(self, who):
        m = W["members"][who]
        for node in ("A", "B"):
            ep = W[node]
            for name, method, path, body, cred in member_requests(m):
                with self.subTest(member=who, node=node, path=name):
                    r = ep.request(method, path, body, **cred)
                    self.assertEqual(r.status, 200, r)
                    if name.startswith("bulk"):
                        self.assertEqual([x["status"] for x in r.json["responses"]], [200, 200])
            for name, fn in path_g_requests(m):
                with self.subTest(member=who, node=node, path=name):
                    self.assertEqual(fn(ep).status, 200)

    def refused_everywhere(self, who, first_node):
        """Every path of the removed member, on both nodes, starting with `first_node`; returns the
        expected refusal counts per node."""
        m = W["members"][who]
        counts = {"A": {}, "B": {}}
        nodes = [first_node, "B" if first_node == "A" else "A"]
        for node in nodes:
            ep = W[node]
            for name, method, path, body, cred in member_requests(m):
                status, code = (401, "bad-token") if "token" in cred else (403, "not-a-member")
                with self.subTest(member=who, node=node, path=name):
                    self.assertRefused(ep.request(method, path, body, **cred), status, code)
                counts[node][code] = counts[node].get(code, 0) + 1
            for name, fn in path_g_requests(m):
                with self.subTest(member=who, node=node, path=name):
                    self.assertRefused(fn(ep), 403, "revoked-certificate")
                counts[node]["revoked-certificate"] = counts[node].get("revoked-certificate", 0) + 1
        # certd: no new membership certificate, by token or certificate.
        key = al.ec_key_file(os.path.join(W["tmp"], "after-%s.key" % who))
        for cred, status, code in (({"token": m["token"]}, 401, "bad-token"),
                                   ({"cert": m["cert"]}, 403, "not-a-member")):
            with self.subTest(member=who, path="certd-issue", cred=list(cred)[0]):
                r = D.c.post("/v1/groups/%s/certificates" % quote(GROUP), {"csr": al.csr_pem(key)}, **cred)
                self.assertRefused(r, status, code)
        return counts

    def remove_through(self, node, who):
        r = W[node].request("DELETE", "/v1/groups/%s/members/%s" % (quote(GROUP), quote(W["members"][who]["address"])),
                            token=D.admin_token)
        self.assertEqual(r.status, 200, r)

    def test_removed_member_is_refused_on_every_path_and_node(self):
        for who in ("mallory", "trudy", "alice"):
            self.reads_everywhere(who)
        before = {n: al.by_result(al.request_counts(W[n], "groupd_requests_total")) for n in ("A", "B")}
        expected = {"A": {}, "B": {}}
        for who, remove_at, first_ask in (("mallory", "A", "B"), ("trudy", "B", "A")):
            self.remove_through(remove_at, who)
            # The very next request, on the other node: the token, then the certificate.
            m = W["members"][who]
            r = W[first_ask].post("/v1/groups/%s/unwrap" % quote(GROUP), {"recipient_info": b64(W["ri"])},
                                  token=m["token"])
            self.assertRefused(r, 401, "bad-token")
            expected[first_ask]["bad-token"] = expected[first_ask].get("bad-token", 0) + 1
            for node, c in self.refused_everywhere(who, first_ask).items():
                for code, n in c.items():
                    expected[node][code] = expected[node].get(code, 0) + n
        # The member nobody removed reads on, on both nodes.
        self.reads_everywhere("alice")
        for node in ("A", "B"):
            after = al.by_result(al.request_counts(W[node], "groupd_requests_total"))
            for code, n in sorted(expected[node].items()):
                with self.subTest(node=node, metric=code):
                    self.assertEqual(after.get(code, 0) - before[node].get(code, 0), n)
        records = D.audit(GROUP, limit=10000)
        self.assertAudited(D, GROUP, "unwrap", "bad-token", records=records)
        self.assertAudited(D, GROUP, "unwrap", "not-a-member", records=records)
        self.assertAudited(D, GROUP, "rewrap-certificate", "revoked-certificate",
                           caller="cert:" + W["members"]["mallory"]["serial"], records=records)
        self.assertAudited(D, GROUP, "member-remove", "ok", records=records)

    def test_zz_readded_member_keeps_old_credentials_dead(self):
        m = W["members"]["mallory"]
        r = W["B"].get("/v1/groups/%s/members" % quote(GROUP), token=D.admin_token)
        if m["address"] in [x["address"] for x in r.json["members"]]:
            self.remove_through("A", "mallory")
        new_token = D.admin("member", "add", GROUP, m["address"], "--cert", m["cert"][0], "--token")["token"]
        for node in ("A", "B"):
            ep = W[node]
            with self.subTest(node=node, what="old token"):
                r = ep.post("/v1/groups/%s/unwrap" % quote(GROUP), {"recipient_info": b64(W["ri"])}, token=m["token"])
                self.assertRefused(r, 401, "bad-token")
            with self.subTest(node=node, what="old membership certificate"):
                for name, fn in path_g_requests(m):
                    self.assertRefused(fn(ep), 403, "revoked-certificate")
            with self.subTest(node=node, what="new token"):
                r = ep.post("/v1/groups/%s/unwrap" % quote(GROUP), {"recipient_info": b64(W["ri"])}, token=new_token)
                self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    harness.main()
