#!/usr/bin/env python3
"""Attack: per-member reading (issue 13), POST /v1/groups/{g}/rewrap/members, as an outsider, a
member and a malicious exploder would, against the real groupd.

Usage: per_member_attack_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

The trust split rests on the exploder holding no key that any RecipientInfo is wrapped to. One
certificate that is both the exploder's and a member's breaks it: the exploder (listd) asks for
that member's copy, gets a RecipientInfo wrapped to its own key and reads the post; and the same
client certificate authenticates as that member on path F (the raw message key). Checked:
  - the exploder's certificate cannot be registered as a member's (member add, set-cert), in its
    own group or any other: 409 certificate-in-use;
  - a member's registered certificate cannot become an exploder's (exploder set), of its own
    group or any other: 409 certificate-in-use;
  - who may call rewrap/members at all: only the group's registered exploder by mTLS (no
    credentials, a member's certificate or token, an administrator's token, another group's
    exploder: refused, nothing wrapped);
  - statuses: a non-member and a member without a certificate are told apart only as documented,
    and an address of another case is the same member; a threshold group is refused;
  - a malformed or foreign RecipientInfo gives the refusals of every other unwrap, and a damaged
    wrapped key an answer of the same shape and size as a sound one (implicit rejection).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_lib as al  # noqa: E402,F401
from attack_lib import harness  # noqa: E402
from harness import b64, unb64, quote  # noqa: E402

GROUP = "pm-atk@example.org"
OTHER = "pm-other@example.org"
RSA = "pm-rsa@example.org"

D = None
W = {}


def setUpModule():
    global D
    D = harness.Deployment("per-member-attack").start()
    p = D.pki
    W["tmp"] = harness.tempdir("per-member-attack-work")
    p.make_ca("member-ca", "Attack member CA")
    W["alice"] = (p.member("alice", "member-ca", "rsa2048", "alice@example.org"), p.key("alice"))
    W["bob"] = (p.member("bob", "member-ca", "ec", "bob@example.org"), p.key("bob"))
    W["dora"] = (p.member("dora", "member-ca", "ec", "dora@example.org"), p.key("dora"))
    # listd's client certificate: an S/MIME-capable one, as an operator might make for it.
    W["exploder"] = (p.member("exploder", "member-ca", "ec", "listd@lists.example.org"), p.key("exploder"))
    W["exploder-other"] = (p.client("exploder-other", "member-ca", "other exploder"), p.key("exploder-other"))
    D.create_group(GROUP, "p256")
    D.create_group(OTHER, "p256")
    D.create_group(RSA, "rsa3072")
    for g in (GROUP, OTHER, RSA):
        D.admin("member", "add", g, "alice@example.org", "--cert", W["alice"][0])
        D.admin("member", "add", g, "carol@example.org")
    r = D.admin("member", "add", GROUP, "bob@example.org", "--cert", W["bob"][0], "--token")
    W["bob-token"] = r["token"]
    D.admin("exploder", "set", GROUP, "--cert", W["exploder"][0])
    D.admin("exploder", "set", OTHER, "--cert", W["exploder-other"][0])
    D.admin("exploder", "set", RSA, "--cert", W["exploder"][0])
    for g, tag in ((GROUP, "ec"), (RSA, "rsa")):
        cert = f("%s-group.crt" % tag)
        D.public_certificate(g, cert)
        ent = harness.write(f("%s-entity.txt" % tag), harness.entity("per-member secret %s" % tag))
        W["plain-" + tag] = harness.read(ent)
        W["post-" + tag] = harness.osl_encrypt(ent, f("%s-post.smime" % tag), cert)
        W["ri-" + tag] = harness.recipient_infos(harness.cms_of(W["post-" + tag]))[0]


def tearDownModule():
    if D:
        D.stop()


def f(name):
    return os.path.join(W["tmp"], name)


def pem(path):
    return harness.read(path).decode()


def members_path(g):
    return "/v1/groups/%s/rewrap/members" % quote(g)


class ExploderMemberCertificate(harness.TestCase):
    """One certificate for the exploder and a member: the exploder would read that member's copy."""

    def exploder_reads(self, address, ri):
        """What the exploder gets for `address`: (status, plaintext or None) of its own decryption."""
        r = D.g.post(members_path(GROUP), {"recipient_info": b64(ri), "members": [address]}, cert=W["exploder"])
        self.assertEqual(r.status, 200, r)
        entry = r.json["members"][0]
        if entry["status"] != "ok":
            return entry["status"], None
        copy = harness.write(f("copy-%s.der" % address),
                             harness.replace_recipient(harness.cms_of(W["post-ec"]), 0,
                                                       unb64(entry["recipient_info"])))
        p = harness.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", copy, "-inkey", W["exploder"][1],
                         "-recip", W["exploder"][0]], check=False)
        return entry["status"], (p.stdout if p.returncode == 0 else None)

    def test_a_exploders_certificate_as_a_new_member_is_refused(self):
        for g in (GROUP, OTHER):
            with self.subTest(group=g):
                r = D.g.post("/v1/groups/%s/members" % quote(g),
                             {"address": "listd@lists.example.org", "certificate": pem(W["exploder"][0])},
                             token=D.admin_token)
                if r.status == 201 and g == GROUP:
                    status, plain = self.exploder_reads("listd@lists.example.org", W["ri-ec"])
                    unwrap = D.g.post("/v1/groups/%s/unwrap" % quote(g), {"recipient_info": b64(W["ri-ec"])},
                                      cert=W["exploder"])
                    D.g.request("DELETE", "/v1/groups/%s/members/%s" % (quote(g), quote("listd@lists.example.org")),
                                token=D.admin_token)
                    self.fail("the exploder's certificate was registered as a member's: rewrap/members "
                              "answered %s and the exploder's own key decrypts the copy (%r); path F "
                              "with the exploder's client certificate answered %d" %
                              (status, plain, unwrap.status))
                if r.status == 201:
                    D.g.request("DELETE", "/v1/groups/%s/members/%s" % (quote(g), quote("listd@lists.example.org")),
                                token=D.admin_token)
                self.assertRefused(r, 409, "certificate-in-use")
                self.assertIn("exploder", r.json["message"])
                members = D.g.get("/v1/groups/%s/members" % quote(g), token=D.admin_token).json["members"]
                self.assertNotIn("listd@lists.example.org", [m["address"] for m in members])

    def test_b_member_certificate_changed_to_the_exploders_is_refused(self):
        for g in (GROUP, OTHER):
            with self.subTest(group=g):
                before = D.g.get("/v1/groups/%s/members" % quote(g), token=D.admin_token).json["members"]
                r = D.g.request("PUT", "/v1/groups/%s/members/%s/certificate" % (quote(g), quote("carol@example.org")),
                                {"certificate": pem(W["exploder"][0])}, token=D.admin_token)
                if r.status == 200 and g == GROUP:
                    status, plain = self.exploder_reads("carol@example.org", W["ri-ec"])
                    D.g.post("/v1/groups/%s/members/%s/token" % (quote(g), quote("carol@example.org")), {},
                             token=D.admin_token)
                    self.fail("carol's certificate was replaced by the exploder's: rewrap/members answered %s "
                              "and the exploder's own key decrypts carol's copy (%r)" % (status, plain))
                self.assertRefused(r, 409, "certificate-in-use")
                after = D.g.get("/v1/groups/%s/members" % quote(g), token=D.admin_token).json["members"]
                self.assertEqual(before, after)

    def test_c_a_members_certificate_as_the_exploder_is_refused(self):
        # alice's registered certificate as GROUP's exploder (and as OTHER's: alice is on GROUP's
        # roster there too): whoever holds that key would be exploder and member at once.
        for g in (GROUP, OTHER):
            with self.subTest(group=g):
                shown = D.g.get("/v1/groups/%s" % quote(g), token=D.admin_token).json["exploder"]
                r = D.g.request("PUT", "/v1/groups/%s/exploder" % quote(g), {"certificate": pem(W["alice"][0])},
                                token=D.admin_token)
                if r.status == 200:
                    got = D.g.post(members_path(g), {"recipient_info": b64(W["ri-ec"]),
                                                      "members": ["alice@example.org"]}, cert=W["alice"])
                    put_back = W["exploder"] if g == GROUP else W["exploder-other"]
                    D.g.request("PUT", "/v1/groups/%s/exploder" % quote(g), {"certificate": pem(put_back[0])},
                                token=D.admin_token)
                    self.fail("a member's certificate became the exploder's; rewrap/members with it answered "
                              "%d %s" % (got.status, got.json))
                self.assertRefused(r, 409, "certificate-in-use")
                self.assertEqual(D.g.get("/v1/groups/%s" % quote(g), token=D.admin_token).json["exploder"], shown)
        # bob is a member of GROUP only: his certificate is refused as OTHER's exploder all the same
        # (one listd serves many lists; its key must open no member's copy anywhere).
        r = D.g.request("PUT", "/v1/groups/%s/exploder" % quote(OTHER), {"certificate": pem(W["bob"][0])},
                        token=D.admin_token)
        if r.status == 200:
            D.g.request("PUT", "/v1/groups/%s/exploder" % quote(OTHER), {"certificate": pem(W["exploder-other"][0])},
                        token=D.admin_token)
        self.assertRefused(r, 409, "certificate-in-use")

    def test_d_an_unrelated_certificate_is_still_taken(self):
        # The refusal is about this one certificate, not every change: dora's is new everywhere.
        r = D.g.post("/v1/groups/%s/members" % quote(GROUP),
                     {"address": "dora@example.org", "certificate": pem(W["dora"][0])}, token=D.admin_token)
        self.assertEqual(r.status, 201, r)
        status, plain = self.exploder_reads("dora@example.org", W["ri-ec"])
        self.assertEqual(status, "ok")
        self.assertIsNone(plain, "the exploder's key must not open a member's copy")
        copy = harness.write(f("dora-copy.der"), harness.replace_recipient(
            harness.cms_of(W["post-ec"]), 0, unb64(D.g.post(members_path(GROUP), {
                "recipient_info": b64(W["ri-ec"]), "members": ["dora@example.org"]},
                cert=W["exploder"]).json["members"][0]["recipient_info"])))
        self.assertEqual(harness.osl_decrypt(copy, W["dora"][1], W["dora"][0], inform="DER"), W["plain-ec"])
        r = D.g.request("DELETE", "/v1/groups/%s/members/%s" % (quote(GROUP), quote("dora@example.org")),
                        token=D.admin_token)
        self.assertEqual(r.status, 200, r)


class Callers(harness.TestCase):
    """Only the group's registered exploder, by its client certificate, gets anything."""

    def test_refused_callers(self):
        body = {"recipient_info": b64(W["ri-ec"]), "members": ["alice@example.org", "bob@example.org"]}
        cases = [
            ("nobody", {}, 401, "unauthenticated"),
            ("member certificate", {"cert": W["bob"]}, 403, "not-exploder"),
            ("member token", {"token": W["bob-token"]}, 401, "unauthenticated"),
            ("administrator token", {"token": D.admin_token}, 401, "unauthenticated"),
            ("another group's exploder", {"cert": W["exploder-other"]}, 403, "not-exploder"),
        ]
        for what, cred, status, code in cases:
            with self.subTest(caller=what):
                r = D.g.post(members_path(GROUP), body, **cred)
                self.assertRefused(r, status, code)
                self.assertNotIn(b"recipient_info", r.body)

    def test_statuses_and_case(self):
        r = D.g.post(members_path(GROUP), {"recipient_info": b64(W["ri-ec"]), "members": [
            "alice@Example.ORG", "carol@example.org", "stranger@example.org"]}, cert=W["exploder"])
        self.assertEqual(r.status, 200, r)
        got = r.json["members"]
        self.assertEqual([m["status"] for m in got], ["ok", "no-certificate", "not-member"])
        self.assertEqual(set(got[1]), {"address", "status"})
        self.assertEqual(set(got[2]), {"address", "status"})
        # The re-cased address is alice, wrapped to alice's certificate: only alice's key opens it.
        copy = harness.write(f("alice-case.der"), harness.replace_recipient(
            harness.cms_of(W["post-ec"]), 0, unb64(got[0]["recipient_info"])))
        self.assertEqual(harness.osl_decrypt(copy, W["alice"][1], W["alice"][0], inform="DER"), W["plain-ec"])

    def test_damaged_and_foreign_recipient_infos(self):
        # A damaged RSA encrypted key (implicit rejection): 200, same shape and size as the sound
        # answer; a RecipientInfo of another group's key: 400 unwrap-failed, as every unwrap.
        sound = D.g.post(members_path(RSA), {"recipient_info": b64(W["ri-rsa"]), "members": ["alice@example.org"]},
                         cert=W["exploder"])
        self.assertEqual(sound.status, 200, sound)
        damaged = D.g.post(members_path(RSA), {"recipient_info": b64(harness.flip_last_byte(W["ri-rsa"])),
                                               "members": ["alice@example.org"]}, cert=W["exploder"])
        self.assertEqual(damaged.status, 200, damaged)
        self.assertEqual(set(damaged.json), set(sound.json))
        self.assertEqual(len(damaged.json["members"][0]["recipient_info"]),
                         len(sound.json["members"][0]["recipient_info"]))
        foreign = D.g.post(members_path(RSA), {"recipient_info": b64(W["ri-ec"]), "members": ["alice@example.org"]},
                           cert=W["exploder"])
        self.assertRefused(foreign, 400, "unwrap-failed")

    def test_limits(self):
        ri = b64(W["ri-ec"])
        r = D.g.post(members_path(GROUP), {"recipient_info": ri, "members": []}, cert=W["exploder"])
        self.assertRefused(r, 413, "too-many")
        r = D.g.post(members_path(GROUP), {"recipient_info": ri, "members": ["m%d@example.org" % i for i in range(1001)]},
                     cert=W["exploder"])
        self.assertRefused(r, 413, "too-many")
        r = D.g.post(members_path(GROUP), {"recipient_info": ri, "members": [{"address": "alice@example.org"}]},
                     cert=W["exploder"])
        self.assertRefused(r, 400, "bad-address")
        r = D.g.post(members_path(GROUP), {"recipient_info": ri, "members": ["alice@example.org"],
                                           "rsa_padding": "PKCS1"}, cert=W["exploder"])
        self.assertRefused(r, 400, "malformed-request")
        r = D.g.oversized("POST", members_path(GROUP), 8 * 1024 * 1024, cert=W["exploder"])
        self.assertEqual(r.status, 413, r)
        self.assertTrue(D.g.get("/healthz").status == 200)


if __name__ == "__main__":
    harness.main()
