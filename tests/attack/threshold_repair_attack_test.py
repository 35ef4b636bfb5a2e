#!/usr/bin/env python3
"""Attack: share repair (`admin group replace-node`) of a threshold group, as its operator or a
member would drive it by hand, against k = 2 of n = 3 real groupd nodes and a fourth, empty one.

Usage: threshold_repair_attack_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

Whoever runs replace-node picks the node that receives f(j) (docs/threat-model.md: that is a
trust, not a check). What the nodes do check, and this test holds them to:
  - an index above n (growing the group past its dealing) is refused by every helper
    (`400 bad-helpers`) and by the new node when it is handed an enrollment for it;
  - a helper's own index (a second holder of a live helper's share through this round) and
    index 0 (the key) are refused by every helper (`400 malformed-request`);
  - a member, whatever its credentials, cannot start a repair or an enrollment at any node.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

GROUP = "repair-atk@example.org"
# The P-256 base point, compressed: a valid point for "new_key" (the helpers check the shape).
G_COMPRESSED = bytes.fromhex("036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296")


class RepairAttack(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nodes, cls.admin_cert, pki = harness.groupd_nodes("repatk", 4, "repair admin")
        first = cls.nodes[0]
        cls.urls = [d.g.url() for d in cls.nodes]
        p = first.bl("admin", "--server", cls.urls[0], "--ca", pki.crt("tls-ca"), "--client-cert",
                     cls.admin_cert[0], "--client-key", cls.admin_cert[1], "--json", "group", "create", GROUP,
                     "--key-type", "p256-threshold", "--threshold", "2", "--nodes", ",".join(cls.urls[:3]))
        cls.created = json.loads(p.stdout)
        cls.alice = (pki.member("repatk-alice", "tls-ca", "ec", "alice@example.org"), pki.key("repatk-alice"))
        for d in cls.nodes[:3]:
            d.bl("admin", "--server", d.g.url(), "--ca", pki.crt("tls-ca"), "--client-cert", cls.admin_cert[0],
                 "--client-key", cls.admin_cert[1], "--json", "member", "add", GROUP, "alice@example.org",
                 "--cert", cls.alice[0])

    @classmethod
    def tearDownClass(cls):
        for d in getattr(cls, "nodes", []):
            d.stop()

    def body(self, index, helpers=(1, 2)):
        return {"round": "cd" * 16, "index": index, "helpers": list(helpers),
                "new_key": harness.b64(G_COMPRESSED)}

    def repair_key(self, n, body, cred=None):
        return self.nodes[n].g.post("/v1/groups/%s/threshold/repair/key" % harness.quote(GROUP), body,
                                    **(cred or {"cert": self.admin_cert}))

    def test_a_index_above_n(self):
        for n in (0, 1):
            with self.subTest(helper=n + 1):
                r = self.repair_key(n, self.body(4))
                self.assertRefused(r, 400, "bad-helpers")
                self.assertNotIn("signature", r.json)
        # The new node, handed an enrollment for index 4 of a 2-of-3 group.
        shown = self.nodes[0].g.get("/v1/groups/%s" % harness.quote(GROUP), cert=self.admin_cert)
        self.assertEqual(shown.status, 200, shown)
        state = shown.json["keys"][0]["threshold"]
        enroll = self.nodes[3].g.post("/v1/threshold/enroll", {"name": GROUP, "round": "cd" * 16, "index": 4,
                                                               "helpers": [1, 2]}, cert=self.admin_cert)
        self.assertEqual(enroll.status, 200, enroll)
        r = self.nodes[3].g.post("/v1/groups", {
            "name": GROUP, "key_type": "p256-threshold", "commitments": state["commitments"],
            "certificate": self.created["certificate"],
            "enrollment": dict(self.body(4), new_key=enroll.json["key"], state=enroll.json["state"], threshold=2,
                               nodes=3, keys=[], sums=[])}, cert=self.admin_cert)
        self.assertRefused(r, 400, "bad-helpers")
        self.assertEqual(self.nodes[3].g.get("/v1/groups/%s" % harness.quote(GROUP), cert=self.admin_cert).status,
                         404)

    def test_b_a_helpers_own_index_and_the_key(self):
        for n in (0, 1):
            for index in (1, 2, 0):
                with self.subTest(helper=n + 1, index=index):
                    r = self.repair_key(n, self.body(index))
                    self.assertRefused(r, 400, "malformed-request")
                    self.assertNotIn("signature", r.json)

    def test_c_a_member_cannot_drive_a_repair(self):
        for n in (0, 1):
            with self.subTest(node=n + 1):
                r = self.repair_key(n, self.body(3), {"cert": self.alice})
                self.assertIn(r.status, (401, 403), r)
                self.assertNotIn("signature", r.json)
        r = self.nodes[3].g.post("/v1/threshold/enroll", {"name": GROUP, "round": "ef" * 16, "index": 3,
                                                          "helpers": [1, 2]}, cert=self.alice)
        self.assertIn(r.status, (401, 403), r)
        self.assertNotIn("state", r.json)


if __name__ == "__main__":
    harness.main()
