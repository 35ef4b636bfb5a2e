#!/usr/bin/env python3
"""Attack classes around issue 11's items, against the real groupd (and certd for path G).

Usage: groupd_classes_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

One deployment (harness.Deployment, SQLite): an RSA-3072 group, a P-256 group and
another P-256 group; members with tokens and registered certificates; an exploder
per group; membership certificates from certd; posts made by `openssl cms`.

  TamperedRecipientInfo  any byte of an RSA encryptedKey, invalid PKCS#1 v1.5 or OAEP
                         padding, valid padding around a key of the wrong length, an EC
                         wrapped key that fails the AES key-wrap check: implicit rejection,
                         200 with the shape and length of a genuine answer, on F, E, G, S,
                         B and bulk; the reader's decryption then fails. A RecipientInfo
                         naming no key of the group: 400 unwrap-failed.
  Points                 invalid, off-curve, small-order (other curve), twist and infinity
                         points as `blinded` and as the KARI originator key: 400 bad-point;
                         RSA `blinded` out of range or of the wrong length: 400 out-of-range.
  ForeignCredentials     group A's token, certificate or exploder on group B; the exploder
                         on member paths; a member on the exploder path; tokens across the
                         member/admin line.
  MalformedInput         every endpoint: non-object and deeply nested JSON, wrong field
                         types, bad base64, DER that is no RecipientInfo, bad PEM, oversize
                         bodies (declared and chunked), long headers and paths, unknown
                         methods, malformed HTTP framing. Documented status and JSON error,
                         no 5xx, counted in /metrics, the daemon still healthy.
"""

import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_lib as al  # noqa: E402
from attack_lib import harness  # noqa: E402
from harness import b64, unb64, quote  # noqa: E402

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding as apad  # noqa: E402

RSA = "atk-rsa@example.org"
EC = "atk-ec@example.org"
OTHER = "atk-other@example.org"
SCRATCH = "atk-scratch@example.org"  # admin endpoints that today's code may change on bad input

D = None  # the deployment
W = {}  # everything set up once: credentials, posts, RecipientInfos


def setUpModule():
    global D
    D = harness.Deployment("attack-classes").start()
    p = D.pki
    W["tmp"] = harness.tempdir("attack-classes-work")
    p.make_ca("member-ca", "Attack member CA")
    W["alice"] = (p.member("alice", "member-ca", "rsa2048", "alice@example.org"), p.key("alice"))
    W["bob"] = (p.member("bob", "member-ca", "ec", "bob@example.org"), p.key("bob"))
    W["carol"] = (p.member("carol", "member-ca", "ec", "carol@example.org"), p.key("carol"))
    W["exploder"] = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
    W["exploder-other"] = (p.client("exploder-other", "member-ca", "other exploder"), p.key("exploder-other"))
    D.create_group(RSA, "rsa3072")
    D.create_group(EC, "p256")
    D.create_group(OTHER, "p256")
    D.create_group(SCRATCH, "p256")
    tok = W["tok"] = {}
    for g in (RSA, EC):
        tok[(g, "alice")] = D.admin("member", "add", g, "alice@example.org", "--cert", W["alice"][0],
                                    "--token")["token"]
        tok[(g, "bob")] = D.admin("member", "add", g, "bob@example.org", "--cert", W["bob"][0], "--token")["token"]
        D.admin("exploder", "set", g, "--cert", W["exploder"][0])
    tok[(OTHER, "carol")] = D.admin("member", "add", OTHER, "carol@example.org", "--cert", W["carol"][0],
                                    "--token")["token"]
    D.admin("exploder", "set", OTHER, "--cert", W["exploder-other"][0])
    tok[(SCRATCH, "alice")] = D.admin("member", "add", SCRATCH, "alice@example.org", "--token")["token"]

    W["cert"] = {}
    for g in (RSA, EC, OTHER):
        W["cert"][g] = f("%s.crt" % g.split("@")[0])
        D.public_certificate(g, W["cert"][g])
    entity = harness.write(f("entity.txt"), harness.entity("The plans, in confidence."))
    W["entity"] = harness.read(entity)
    W["post"] = {
        "rsa-v15": harness.osl_encrypt(entity, f("rsa-v15.smime"), W["cert"][RSA]),
        "rsa-oaep": f("rsa-oaep.smime"),
        "ec": harness.osl_encrypt(entity, f("ec.smime"), W["cert"][EC]),
        "other": harness.osl_encrypt(entity, f("other.smime"), W["cert"][OTHER]),
    }
    harness.openssl("cms", "-encrypt", "-binary", "-in", entity, "-out", W["post"]["rsa-oaep"], "-aes-256-gcm",
                    "-recip", W["cert"][RSA], "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256")
    W["cms"] = {k: harness.cms_of(v) for k, v in W["post"].items()}
    W["ri"] = {k: harness.recipient_infos(v)[0] for k, v in W["cms"].items()}
    assert al.ktri_algorithm(W["ri"]["rsa-v15"]) == al.RSA_ENCRYPTION_ALG
    assert al.ktri_algorithm(W["ri"]["rsa-oaep"]) == al.OAEP_SHA256_ALG
    # Membership certificates (path G), one per group, from certd with a member's token.
    W["mcert"] = {}
    for g, who in ((RSA, "alice"), (EC, "bob"), (OTHER, "carol")):
        key = al.ec_key_file(f("m-%s.key" % g.split("@")[0]))
        r = D.c.post("/v1/groups/%s/certificates" % quote(g), {"csr": al.csr_pem(key)}, token=tok[(g, who)])
        assert r.status == 201, r
        W["mcert"][g] = (r.json["certificate"], key)
    W["secret"] = {}
    for g in (RSA, EC):
        r = D.g.get("/v1/groups/%s/secrets" % quote(g), token=tok[(g, "alice")])
        assert r.status == 200, r
        W["secret"][g] = {s["key_id"]: unb64(s["secret"]) for s in r.json["secrets"]}


def f(name):
    return os.path.join(W["tmp"], name)


def group_of(post):
    return RSA if post.startswith("rsa") else EC


# ---------------------------------------------------------------------------
# the reading paths, each as (name, function(group, ri) -> Response)


def call_F(g, ri):
    return D.g.post("/v1/groups/%s/unwrap" % quote(g), {"recipient_info": b64(ri), "reason": "F"},
                    token=W["tok"][(g, "alice")])


def member_for_E(g):
    return W["alice"] if g == RSA else W["bob"]


def call_E(g, ri):
    return D.g.post("/v1/groups/%s/rewrap" % quote(g), {"recipient_info": b64(ri), "reason": "E"},
                    cert=member_for_E(g))


def call_G(g, ri):
    pem, key = W["mcert"][g]
    return al.path_g(D.g, g, pem, {"recipient_info": b64(ri)}, key=key)


def call_S(g, ri):
    return D.g.post("/v1/groups/%s/rewrap/secret" % quote(g), {"recipient_info": b64(ri), "reason": "S"},
                    token=W["tok"][(g, "alice")])


def call_B(g, ri):
    return D.g.post("/v1/groups/%s/rewrap/exploder" % quote(g), {"recipient_info": b64(ri), "reason": "B"},
                    cert=W["exploder"])


PATHS = [("F", call_F), ("E", call_E), ("G", call_G), ("S", call_S), ("B", call_B)]
BULK_OPS = ["unwrap", "rewrap", "rewrap-secret"]


def call_bulk(g, ris):
    """One member bulk call: for each RecipientInfo, an unwrap, a rewrap and a rewrap-secret item."""
    items = [{"operation": op, "recipient_info": b64(ri)} for ri in ris for op in BULK_OPS]
    return D.g.post("/v1/groups/%s/bulk" % quote(g), {"reason": "bulk", "requests": items},
                    token=W["tok"][(g, "alice")])


def call_bulk_G(g, ris):
    pem, key = W["mcert"][g]
    return al.path_g(D.g, g, pem, [{"recipient_info": b64(ri)} for ri in ris], key=key)


def shape(body):
    """What an answer's JSON looks like without its values: its keys and the type of each value.
    Lengths are checked apart (like_genuine): a synthetic key is 16, 24 or 32 bytes, as genuine keys
    of posts made with AES-128, -192 or -256 are, so the length of `cek` or of a RecipientInfo that
    wraps it follows that key."""
    return {k: type(v).__name__ for k, v in body.items()}


def like_genuine(test, got, ref):
    """`got` could be the answer to a genuine RecipientInfo: same keys, and each value of a length
    that a genuine key of 16, 24 or 32 bytes gives."""
    test.assertEqual(shape(got), shape(ref))
    if "cek" in got:
        test.assertIn(len(unb64(got["cek"])), (16, 24, 32), "a key no content cipher uses")
    if "recipient_info" in got:
        # A RecipientInfo that wraps a 16-, 24- or 32-byte key under AES key wrap is at most 16
        # bytes shorter or longer than the genuine one (32 bytes); an RSA one is exactly as long.
        delta = len(unb64(got["recipient_info"])) - len(unb64(ref["recipient_info"]))
        test.assertIn(delta, (-16, -8, 0, 8, 16) if unb64(ref["recipient_info"])[0] in (0xA1, 0xA2)
                      else (0,), "the RecipientInfo's length tells tampered from genuine")
    for k in got:
        if k not in ("cek", "recipient_info"):
            test.assertEqual(got[k], ref[k], k)


def with_ri(op, g, good, ri):
    """`good` with another recipient_info; on path G signed again by the certificate's key, as a
    caller holding it would, so the request reaches the RecipientInfo's parser."""
    if op != "rewrap-certificate":
        return dict(good, recipient_info=ri)
    return al.path_g_body(W["mcert"][g][0], {"recipient_info": ri}, key=W["mcert"][g][1], group=g)


class Base(harness.TestCase):
    def assertHealthy(self, ep=None):
        ep = ep or D.g
        r = ep.get("/healthz")
        self.assertEqual(r.status, 200, "the daemon is not healthy after the attack: %r" % r)
        for dm in D.daemons():
            self.assertIsNone(dm.proc.poll(), "%s exited" % dm.name)


# ---------------------------------------------------------------------------


class TamperedRecipientInfo(Base):
    """Implicit rejection on every path: the caller cannot tell a tampered RecipientInfo from a genuine one."""

    @classmethod
    def setUpClass(cls):
        # The genuine answers, per post and path: their shape and body length.
        cls.genuine = {}
        for post in ("rsa-v15", "rsa-oaep", "ec"):
            g = group_of(post)
            for name, fn in PATHS:
                r = fn(g, W["ri"][post])
                assert r.status == 200, (post, name, r)
                cls.genuine[(post, name)] = r
            r = call_bulk(g, [W["ri"][post]])
            assert r.status == 200 and all(x["status"] == 200 for x in r.json["responses"]), r
            cls.genuine[(post, "bulk")] = r
            r = call_bulk_G(g, [W["ri"][post]])
            assert r.status == 200 and all(x["status"] == 200 for x in r.json["responses"]), r
            cls.genuine[(post, "bulk-G")] = r

    # -- the variants
    def rsa_variants(self, post):
        ri = W["ri"][post]
        ek = al.ktri_encrypted_key(ri)
        k = len(ek)
        pub = al.rsa_public(W["cert"][RSA])
        out = {
            "flip-first-byte": al.ktri_with_encrypted_key(ri, al.flip(ek, 0)),
            "flip-middle-byte": al.ktri_with_encrypted_key(ri, al.flip(ek, k // 2, 0x80)),
            "flip-last-byte": al.ktri_with_encrypted_key(ri, al.flip(ek, -1)),
            "random-ciphertext": al.ktri_with_encrypted_key(
                ri, al.rsa_raw_encrypt(pub, b"\x00" + secrets.token_bytes(k - 1))),
        }
        if post == "rsa-v15":
            for name, block in al.bad_pkcs1_v15_blocks(k).items():
                out["v15-" + name] = al.ktri_with_encrypted_key(ri, al.rsa_raw_encrypt(pub, block))
            for n in (0, 5, 31, 33):
                block = al.pkcs1_v15_block(k, secrets.token_bytes(n))
                out["v15-valid-padding-%d-byte-key" % n] = al.ktri_with_encrypted_key(
                    ri, al.rsa_raw_encrypt(pub, block))
            # A v1.5 label on an OAEP ciphertext.
            oaep_ek = al.ktri_encrypted_key(W["ri"]["rsa-oaep"])
            out["oaep-ciphertext-labelled-v15"] = al.ktri_with_encrypted_key(ri, oaep_ek)
        else:
            oaep = apad.OAEP(mgf=apad.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
            key = pub.public_key()
            for n in (0, 5, 31):
                out["oaep-valid-%d-byte-key" % n] = al.ktri_with_encrypted_key(
                    ri, key.encrypt(secrets.token_bytes(n), oaep))
            out["oaep-params-sha1"] = al.ktri_with_algorithm(ri, al.OAEP_SHA1_ALG)
            out["oaep-ciphertext-labelled-v15"] = al.ktri_with_algorithm(ri, al.RSA_ENCRYPTION_ALG)
        return out

    def ec_variants(self):
        ri = W["ri"]["ec"]
        wk = al.kari_wrapped_key(ri)
        return {
            "wrapped-flip-first": al.kari_with_wrapped_key(ri, al.flip(wk, 0)),
            "wrapped-flip-middle": al.kari_with_wrapped_key(ri, al.flip(wk, len(wk) // 2)),
            "wrapped-flip-last": al.kari_with_wrapped_key(ri, al.flip(wk, -1)),
            "wrapped-random": al.kari_with_wrapped_key(ri, secrets.token_bytes(len(wk))),
            # Another valid point: another KEK, so the key-wrap check fails.
            "other-valid-originator": al.kari_with_point(ri, al.valid_point()),
        }

    # -- what a reader does with an answer
    def read_fails(self, post, path, body):
        """The reader splices the answer (E, G, S, B) and decrypts: it must fail."""
        g = group_of(post)
        new_ri = unb64(body["recipient_info"])
        spliced = harness.write(f("spliced-%s-%s-%s.der" % (post, path, secrets.token_hex(4))),
                                harness.replace_recipient(W["cms"][post], 0, new_ri))
        if path in ("S", "B"):
            key_id = harness.kekri_key_id(new_ri).hex()
            args = ["cms", "-decrypt", "-inform", "DER", "-in", spliced, "-secretkey",
                    W["secret"][g][key_id].hex(), "-secretkeyid", key_id]
        else:
            crt, key = member_for_E(g) if path == "E" else (harness.write(f("mc.crt"), W["mcert"][g][0]),
                                                            W["mcert"][g][1])
            args = ["cms", "-decrypt", "-inform", "DER", "-in", spliced, "-inkey", key, "-recip", crt]
        p = harness.openssl(*args, check=False)
        self.assertNotEqual(p.returncode, 0, "%s %s: the reader decrypted a post from a tampered RecipientInfo" %
                            (post, path))
        self.assertNotEqual(p.stdout, W["entity"])

    def check_variant(self, post, name, ri, *, read_check):
        g = group_of(post)
        for path, fn in PATHS:
            with self.subTest(post=post, variant=name, path=path):
                r = fn(g, ri)
                ref = self.genuine[(post, path)]
                self.assertEqual(r.status, 200, "implicit rejection: a tampered RecipientInfo must be answered as a "
                                 "genuine one, got %r" % r)
                like_genuine(self, r.json, ref.json)
                if path == "F":
                    self.assertNotEqual(r.json["cek"], ref.json["cek"])
                    again = fn(g, ri)
                    self.assertEqual(again.json.get("cek"), r.json["cek"],
                                     "a synthetic key must be deterministic, or repeating a query is an oracle")
                elif path == "S":
                    again = fn(g, ri)
                    self.assertEqual(again.json.get("recipient_info"), r.json["recipient_info"],
                                     "a synthetic key must be deterministic")
                if read_check and path != "F":
                    self.read_fails(post, path, r.json)
        for kind, fn in (("bulk", call_bulk), ("bulk-G", call_bulk_G)):
            with self.subTest(post=post, variant=name, path=kind):
                r = fn(g, [ri])
                self.assertEqual(r.status, 200, r)
                ref = self.genuine[(post, kind)].json["responses"]
                got = r.json["responses"]
                self.assertEqual([x["status"] for x in got], [x["status"] for x in ref], got)
                for x, y in zip(got, ref):
                    like_genuine(self, x, y)

    def test_rsa_v15_tampered_is_implicitly_rejected(self):
        for i, (name, ri) in enumerate(sorted(self.rsa_variants("rsa-v15").items())):
            self.check_variant("rsa-v15", name, ri, read_check=i == 0)
        self.assertHealthy()

    def test_rsa_oaep_tampered_is_implicitly_rejected(self):
        for i, (name, ri) in enumerate(sorted(self.rsa_variants("rsa-oaep").items())):
            self.check_variant("rsa-oaep", name, ri, read_check=i == 0)
        self.assertHealthy()

    def test_ec_wrapped_key_tampered_is_implicitly_rejected(self):
        for i, (name, ri) in enumerate(sorted(self.ec_variants().items())):
            self.check_variant("ec", name, ri, read_check=i == 0)
        self.assertHealthy()

    def test_recipient_info_naming_no_key_is_unwrap_failed(self):
        before = al.by_result(al.request_counts(D.g, "groupd_requests_total"))
        cases = []
        for post in ("rsa-v15", "rsa-oaep", "ec"):
            ri = W["ri"][post]
            cases += [(group_of(post), post + "-serial", al.with_rid_serial_changed(ri)),
                      (group_of(post), post + "-issuer", al.with_rid_issuer_changed(ri))]
        # Another group's RecipientInfo, and one of the wrong kind for the group's key.
        cases += [(EC, "other-group", W["ri"]["other"]), (RSA, "ec-kari-on-rsa", W["ri"]["ec"]),
                  (EC, "rsa-ktri-on-ec", W["ri"]["rsa-oaep"])]
        # A KEKRecipientInfo (from path S): it names no key pair at all.
        cases.append((EC, "kekri", unb64(call_S(EC, W["ri"]["ec"]).json["recipient_info"])))
        refused = 0
        for g, name, ri in cases:
            for path, fn in PATHS:
                with self.subTest(case=name, path=path):
                    r = fn(g, ri)
                    self.assertRefused(r, 400, "unwrap-failed", "cannot unwrap this RecipientInfo for this group")
                    refused += 1
            with self.subTest(case=name, path="bulk"):
                r = call_bulk(g, [ri])
                self.assertEqual(r.status, 200, r)
                self.assertEqual([(x["status"], x.get("error")) for x in r.json["responses"]],
                                 [(400, "unwrap-failed")] * len(BULK_OPS))
        after = al.by_result(al.request_counts(D.g, "groupd_requests_total"))
        self.assertEqual(after.get("unwrap-failed", 0) - before.get("unwrap-failed", 0), refused,
                         "every unwrap-failed refusal is counted in /metrics")
        self.assertHealthy()


# ---------------------------------------------------------------------------


class Points(Base):
    def blind(self, g, ri, blinded, token=None):
        return D.g.post("/v1/groups/%s/blind" % quote(g), {"recipient_info": b64(ri), "blinded": b64(blinded)},
                        token=token or W["tok"][(g, "bob")])

    def test_blind_ec_refuses_bad_points(self):
        ri = W["ri"]["ec"]
        r = self.blind(EC, ri, al.valid_point())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(unb64(r.json["result"])), 32)
        before = al.by_result(al.request_counts(D.g, "groupd_requests_total"))
        points = al.bad_points()
        for name, pt in sorted(points.items()):
            with self.subTest(point=name):
                self.assertRefused(self.blind(EC, ri, pt), 400, "bad-point")
        after = al.by_result(al.request_counts(D.g, "groupd_requests_total"))
        self.assertEqual(after.get("bad-point", 0) - before.get("bad-point", 0), len(points))
        # The same points as bulk items: each refused, the others answered.
        items = [{"operation": "blind", "recipient_info": b64(ri), "blinded": b64(pt)} for pt in points.values()]
        items.append({"operation": "blind", "recipient_info": b64(ri), "blinded": b64(al.valid_point())})
        r = D.g.post("/v1/groups/%s/bulk" % quote(EC), {"requests": items}, token=W["tok"][(EC, "bob")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(x["status"], x.get("error")) for x in r.json["responses"]],
                         [(400, "bad-point")] * len(points) + [(200, None)])
        self.assertHealthy()

    def test_kari_originator_bad_points_on_every_path(self):
        ri = W["ri"]["ec"]
        points = {k: v for k, v in al.bad_points().items() if k != "empty"}
        before = al.by_result(al.request_counts(D.g, "groupd_requests_total"))
        n = 0
        for name, pt in sorted(points.items()):
            bad = al.kari_with_point(ri, pt)
            for path, fn in PATHS:
                with self.subTest(point=name, path=path):
                    self.assertRefused(fn(EC, bad), 400, "bad-point")
                    n += 1
            with self.subTest(point=name, path="bulk"):
                r = call_bulk(EC, [bad])
                self.assertEqual([(x["status"], x.get("error")) for x in r.json["responses"]],
                                 [(400, "bad-point")] * len(BULK_OPS))
        after = al.by_result(al.request_counts(D.g, "groupd_requests_total"))
        self.assertEqual(after.get("bad-point", 0) - before.get("bad-point", 0), n)
        self.assertHealthy()

    def test_blind_rsa_out_of_range(self):
        ri = W["ri"]["rsa-oaep"]
        pub = al.rsa_public(W["cert"][RSA])
        k = (pub.n.bit_length() + 7) // 8
        r = self.blind(RSA, ri, (2).to_bytes(k, "big"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(unb64(r.json["result"])), k)
        cases = {
            "zero": bytes(k), "one": (1).to_bytes(k, "big"), "n": pub.n.to_bytes(k, "big"),
            "n-plus-1": (pub.n + 1).to_bytes(k, "big"), "all-ff": b"\xff" * k,
            "short": (2).to_bytes(k - 1, "big"), "long": (2).to_bytes(k + 1, "big"), "empty": b"",
            "ec-point": al.valid_point(),
        }
        for name, v in sorted(cases.items()):
            with self.subTest(blinded=name):
                self.assertRefused(self.blind(RSA, ri, v, token=W["tok"][(RSA, "alice")]), 400, "out-of-range")
        # An RSA-sized value to the EC group is no point.
        self.assertRefused(self.blind(EC, W["ri"]["ec"], (2).to_bytes(k, "big")), 400, "bad-point")
        self.assertHealthy()


# ---------------------------------------------------------------------------


class ForeignCredentials(Base):
    """Credentials of group A on group B; the exploder on member paths; members on the exploder path."""

    def member_calls(self, g, ri):
        """(name, method, path, body) of every member path of group g."""
        rib = b64(ri)
        q = quote(g)
        return [
            ("F", "POST", "/v1/groups/%s/unwrap" % q, {"recipient_info": rib}),
            ("E", "POST", "/v1/groups/%s/rewrap" % q, {"recipient_info": rib}),
            ("S", "POST", "/v1/groups/%s/rewrap/secret" % q, {"recipient_info": rib}),
            ("blind", "POST", "/v1/groups/%s/blind" % q, {"recipient_info": rib, "blinded": b64(al.valid_point())}),
            ("bulk", "POST", "/v1/groups/%s/bulk" % q, {"requests": [{"operation": "unwrap", "recipient_info": rib}]}),
            ("secrets", "GET", "/v1/groups/%s/secrets" % q, None),
        ]

    def test_token_of_another_group(self):
        tok = W["tok"][(OTHER, "carol")]
        for g, post in ((RSA, "rsa-oaep"), (EC, "ec")):
            for name, method, path, body in self.member_calls(g, W["ri"][post]):
                with self.subTest(group=g, path=name):
                    self.assertRefused(D.g.request(method, path, body, token=tok), 403, "not-a-member")
            with self.subTest(group=g, path="certd-issue"):
                key = al.ec_key_file(f("foreign-%s.key" % secrets.token_hex(4)))
                r = D.c.post("/v1/groups/%s/certificates" % quote(g), {"csr": al.csr_pem(key)}, token=tok)
                self.assertRefused(r, 403, "not-a-member")
            with self.subTest(group=g, path="B-with-token"):
                r = D.g.post("/v1/groups/%s/rewrap/exploder" % quote(g), {"recipient_info": b64(W["ri"][post])},
                             token=tok)
                self.assertRefused(r, 401, "unauthenticated")
        self.assertAudited(D, EC, "unwrap", "not-a-member", caller="carol@example.org")
        self.assertHealthy()

    def test_certificate_of_another_group(self):
        for g, post in ((RSA, "rsa-oaep"), (EC, "ec")):
            for name, method, path, body in self.member_calls(g, W["ri"][post]):
                with self.subTest(group=g, path=name):
                    self.assertRefused(D.g.request(method, path, body, cert=W["carol"]), 403, "not-a-member")
            with self.subTest(group=g, path="certd-issue"):
                key = al.ec_key_file(f("foreign-%s.key" % secrets.token_hex(4)))
                r = D.c.post("/v1/groups/%s/certificates" % quote(g), {"csr": al.csr_pem(key)}, cert=W["carol"])
                self.assertRefused(r, 403, "not-a-member")
        self.assertHealthy()

    def test_exploder_of_another_group(self):
        for g, post in ((RSA, "rsa-oaep"), (EC, "ec")):
            with self.subTest(group=g):
                r = D.g.post("/v1/groups/%s/rewrap/exploder" % quote(g), {"recipient_info": b64(W["ri"][post])},
                             cert=W["exploder-other"])
                self.assertRefused(r, 403, "not-exploder")
        # The group's exploder cannot read: no member path is open to it.
        for name, method, path, body in self.member_calls(EC, W["ri"]["ec"]):
            with self.subTest(exploder_on=name):
                self.assertRefused(D.g.request(method, path, body, cert=W["exploder"]), 403, "not-a-member")
        with self.subTest(exploder_on="certd-issue"):
            key = al.ec_key_file(f("exploder-m.key"))
            r = D.c.post("/v1/groups/%s/certificates" % quote(EC), {"csr": al.csr_pem(key)}, cert=W["exploder"])
            self.assertRefused(r, 403, "not-a-member")
        # A member on the exploder path: with its certificate, and with its token.
        r = D.g.post("/v1/groups/%s/rewrap/exploder" % quote(EC), {"recipient_info": b64(W["ri"]["ec"])},
                     cert=W["bob"])
        self.assertRefused(r, 403, "not-exploder")
        r = D.g.post("/v1/groups/%s/rewrap/exploder" % quote(EC), {"recipient_info": b64(W["ri"]["ec"])},
                     token=W["tok"][(EC, "bob")])
        self.assertRefused(r, 401, "unauthenticated")
        self.assertAudited(D, EC, "rewrap-exploder", "not-exploder")
        self.assertHealthy()

    def test_member_and_admin_tokens_stay_on_their_side(self):
        r = D.g.get("/v1/groups/%s/members" % quote(EC), token=W["tok"][(EC, "bob")])
        self.assertRefused(r, 401, "bad-token")
        r = D.g.post("/v1/groups/%s/export" % quote(EC), {"passphrase": "long enough passphrase"},
                     token=W["tok"][(EC, "bob")])
        self.assertRefused(r, 401, "bad-token")
        r = D.g.get("/v1/groups", cert=W["bob"])
        self.assertRefused(r, 403, "not-admin")
        # An administrator's token is no member's.
        r = D.g.post("/v1/groups/%s/unwrap" % quote(EC), {"recipient_info": b64(W["ri"]["ec"])}, token=D.admin_token)
        self.assertRefused(r, 401, "bad-token")
        r = D.c.post("/v1/groups/%s/certificates" % quote(EC), {"generate": True, "passphrase": "long enough"},
                     token=D.admin_token)
        self.assertRefused(r, 401, "bad-token")
        self.assertHealthy()


# ---------------------------------------------------------------------------


def deep(n, open_="[", close="]"):
    return open_ * n + close * n


class MalformedInput(Base):
    """Every endpoint, every kind of bad input: documented status, JSON error, counted, still serving."""

    def setUp(self):
        self.expected = {}
        self.before = al.by_result(al.request_counts(D.g, "groupd_requests_total"))

    def tearDown(self):
        after = al.by_result(al.request_counts(D.g, "groupd_requests_total"))
        wrong = []
        for code, n in sorted(self.expected.items()):
            got = after.get(code, 0) - self.before.get(code, 0)
            if got != n:
                wrong.append("%s: counted %s, expected %s" % (code, got, n))
        self.assertFalse(wrong, "groupd's /metrics does not count every refusal: " + "; ".join(wrong))
        self.assertHealthy()

    def refused(self, r, status, code, *, counted=True):
        self.assertRefused(r, status, code)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)
        if counted:
            self.expected[code] = self.expected.get(code, 0) + 1

    # -- endpoints
    def reading_ops(self, g=EC):
        """(name, path, credentials, a valid body) of each POST reading operation of group g."""
        ri = b64(W["ri"]["ec" if g == EC else "rsa-oaep"])
        q = quote(g)
        mtok = {"token": W["tok"][(g, "bob")]}
        blinded = al.valid_point() if g == EC else (2).to_bytes(384, "big")
        return [
            ("unwrap", "/v1/groups/%s/unwrap" % q, mtok, {"recipient_info": ri}),
            ("rewrap", "/v1/groups/%s/rewrap" % q, mtok, {"recipient_info": ri}),
            ("rewrap-certificate", "/v1/groups/%s/rewrap/certificate" % q, {},
             al.path_g_body(W["mcert"][g][0], {"recipient_info": ri}, key=W["mcert"][g][1], group=g)),
            ("rewrap-secret", "/v1/groups/%s/rewrap/secret" % q, mtok, {"recipient_info": ri}),
            ("rewrap-exploder", "/v1/groups/%s/rewrap/exploder" % q, {"cert": W["exploder"]}, {"recipient_info": ri}),
            ("blind", "/v1/groups/%s/blind" % q, mtok, {"recipient_info": ri, "blinded": b64(blinded)}),
            ("bulk", "/v1/groups/%s/bulk" % q, mtok, {"requests": [{"operation": "unwrap", "recipient_info": ri}]}),
        ]

    def admin_posts(self, parsing_only=False):
        """(name, method, path, a valid-looking body) of each admin endpoint with a body; with
        parsing_only, not those whose body carries nothing (key-destroy takes `{}`)."""
        if parsing_only:
            return [x for x in self.admin_posts() if x[0] != "key-destroy"]
        q = quote(SCRATCH)
        return [
            ("group-create", "POST", "/v1/groups", {"name": "atk-never@example.org", "key_type": "p256"}),
            ("rotate", "POST", "/v1/groups/%s/rotate" % q, {"what": "secret"}),
            ("key-destroy", "POST", "/v1/groups/%s/keys/1/destroy" % q, {}),
            ("key-certificate", "POST", "/v1/groups/%s/keys/1/certificate" % q, {"certificate": ""}),
            ("export", "POST", "/v1/groups/%s/export" % q, {"passphrase": "long enough passphrase"}),
            ("member-add", "POST", "/v1/groups/%s/members" % q, {"address": "x@example.org"}),
            ("exploder-set", "PUT", "/v1/groups/%s/exploder" % q, {"certificate": ""}),
        ]

    def every_endpoint(self):
        """(method, path, credentials) of every groupd endpoint."""
        q = quote(EC)
        s = quote(SCRATCH)
        adm = {"token": D.admin_token}
        out = [("GET", "/healthz", {}), ("GET", "/metrics", {}), ("GET", "/v1/groups/%s/certificate" % q, {}),
               ("GET", "/v1/groups/%s/secrets" % q, {"token": W["tok"][(EC, "bob")]})]
        out += [("POST", path, cred) for _, path, cred, _ in self.reading_ops()]
        out += [(m, path, adm) for _, m, path, _ in self.admin_posts()]
        out += [("GET", "/v1/groups", adm), ("GET", "/v1/groups/%s" % s, adm),
                ("GET", "/v1/groups/%s/members" % s, adm),
                ("DELETE", "/v1/groups/%s/members/nobody@example.org" % s, adm),
                ("GET", "/v1/groups/%s/audit" % s, adm)]
        return out

    # -- JSON
    def test_json_that_is_not_an_object(self):
        bodies = [b"[]", b'"recipient_info"', b"42", b"null", b"true", b"", b"{", b'{"recipient_info":}',
                  b'{"a":1,}', b"\xff\xfe{}", b'{"recipient_info": "\xc3\x28"}', b"{}{}", b"{} trailing",
                  b'{"a": NaN}', b'{"a": 1e999999}']
        for name, path, cred, _ in self.reading_ops():
            for body in bodies:
                with self.subTest(op=name, body=body[:20]):
                    r = D.g.post(path, body, headers={"Content-Type": "application/json"}, **cred)
                    self.refused(r, 400, "malformed-json")
        for name, method, path, _ in self.admin_posts(parsing_only=True):
            for body in (b"[]", b"", b"{", b"\xff"):
                with self.subTest(op=name, body=body):
                    self.refused(D.g.request(method, path, body, token=D.admin_token), 400, "malformed-json")

    def test_deeply_nested_json(self):
        for name, path, cred, _ in self.reading_ops():
            for kind, body in (("array", deep(30000)), ("object", deep(6000, '{"a":', "}")),
                               ("field", '{"recipient_info": %s}' % deep(30000))):
                with self.subTest(op=name, kind=kind):
                    r = D.g.post(path, body, headers={"Content-Type": "application/json"}, **cred)
                    self.assertIn(r.status, (400,), r)
                    self.assertIn(r.json.get("error"), ("malformed-json", "malformed-request"), r)
                    self.refused(r, 400, r.json["error"])
        for name, method, path, _ in self.admin_posts(parsing_only=True):
            with self.subTest(op=name, kind="array"):
                r = D.g.request(method, path, deep(30000), token=D.admin_token)
                self.refused(r, 400, "malformed-json")

    def test_wrong_field_types_reading_ops(self):
        wrong = [5, 1.5, True, None, [], {}, ["QQ=="], {"recipient_info": "QQ=="}]
        for name, path, cred, good in self.reading_ops():
            fields = {"rewrap-certificate": ["recipient_info", "certificate", "rsa_padding"],
                      "rewrap": ["recipient_info", "rsa_padding"], "blind": ["recipient_info", "blinded"],
                      "bulk": []}.get(name, ["recipient_info"]) + ["reason"]
            for field in fields:
                for v in wrong:
                    with self.subTest(op=name, field=field, value=v):
                        body = dict(good)
                        body[field] = v
                        self.refused(D.g.post(path, body, **cred), 400, "malformed-request")
        # bulk: "requests" not an array, items not objects; an item's operation of the wrong type.
        _, path, cred, _ = self.reading_ops()[-1]
        for v in ("unwrap", 5, {}, None, {"operation": "unwrap"}):
            with self.subTest(requests=v):
                self.refused(D.g.post(path, {"requests": v}, **cred), 400, "malformed-request")
        for v in (5, "x", None, []):
            with self.subTest(item=v):
                self.refused(D.g.post(path, {"requests": [v]}, **cred), 400, "malformed-request")
        r = D.g.post(path, {"requests": [{"operation": 5, "recipient_info": b64(W["ri"]["ec"])},
                                         {"operation": "unwrap", "recipient_info": 5}]}, **cred)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(x["status"], x["error"]) for x in r.json["responses"]],
                         [(400, "bad-operation"), (400, "malformed-request")])
        # More than 500 items.
        items = [{"operation": "unwrap", "recipient_info": "QQ=="}] * 501
        self.refused(D.g.post(path, {"requests": items}, **cred), 413, "too-many")

    def test_bulk_items_are_checked_as_requests_are(self):
        # An item's rsa_padding of another type or value is the caller's mistake, as in a request of
        # its own: never a silent RSA-OAEP answer.
        path = "/v1/groups/%s/bulk" % quote(RSA)
        cred = {"token": W["tok"][(RSA, "alice")]}  # alice's registered certificate is RSA
        ri = b64(W["ri"]["rsa-oaep"])
        for v in (5, True, None, [], {}, "pss", "OAEP", ""):
            with self.subTest(rsa_padding=v):
                r = D.g.post(path, {"requests": [{"operation": "rewrap", "recipient_info": ri, "rsa_padding": v},
                                                 {"operation": "rewrap", "recipient_info": ri}]}, **cred)
                self.assertEqual(r.status, 200, r)
                got = [(x["status"], x.get("error")) for x in r.json["responses"]]
                self.assertEqual(got, [(400, "malformed-request"), (200, None)])
        for field in ("recipient_info", "blinded"):
            with self.subTest(field=field):
                item = {"operation": "blind", "recipient_info": ri, "blinded": b64((2).to_bytes(384, "big"))}
                item[field] = 5
                r = D.g.post(path, {"requests": [item]}, **cred)
                self.assertEqual(r.status, 200, r)
                self.assertEqual([(x["status"], x.get("error")) for x in r.json["responses"]],
                                 [(400, "malformed-request")])

    def test_wrong_field_types_admin(self):
        adm = {"token": D.admin_token}
        q = quote(SCRATCH)
        cases = [
            ("POST", "/v1/groups", {"name": 5}),
            ("POST", "/v1/groups", {"name": "atk-typed-1@example.org", "key_type": 5}),
            ("POST", "/v1/groups", {"name": "atk-typed-2@example.org", "key_type": "p256", "csr": "yes"}),
            ("POST", "/v1/groups/%s/rotate" % q, {"what": 5}),
            ("POST", "/v1/groups/%s/rotate" % q, {"what": "key", "key_type": ["p256"]}),
            ("POST", "/v1/groups/%s/rotate" % q, {"what": "key", "csr": 1}),
            ("POST", "/v1/groups/%s/export" % q, {"passphrase": 123456789}),
            ("POST", "/v1/groups/%s/export" % q, {"passphrase": "long enough passphrase", "version": "1"}),
            ("POST", "/v1/groups/%s/members" % q, {"address": 5}),
            ("POST", "/v1/groups/%s/members" % q, {"address": "typed-1@example.org", "certificate": 5}),
            ("POST", "/v1/groups/%s/members" % q, {"address": "typed-2@example.org", "token": "yes"}),
            ("PUT", "/v1/groups/%s/exploder" % q, {"certificate": 5}),
            ("POST", "/v1/groups/%s/keys/1/certificate" % q, {"certificate": {}}),
        ]
        for method, path, body in cases:
            with self.subTest(method=method, path=path, body=body):
                self.refused(D.g.request(method, path, body, **adm), 400, "malformed-request")
        # Nothing of it took effect.
        show = D.admin("group", "show", SCRATCH)
        self.assertEqual([k["version"] for k in show["keys"]], [1], "a malformed request rotated the key")
        members = [m["address"] for m in D.admin("member", "list", SCRATCH)["members"]]
        self.assertEqual(members, ["alice@example.org"], "a malformed request added a member")
        groups = [x["name"] for x in D.g.get("/v1/groups", **adm).json["groups"]]
        self.assertFalse([x for x in groups if x.startswith("atk-typed")], "a malformed request created a group")
        for bad in ("abc", "-5", "99999999999999999999", "1e3"):
            with self.subTest(audit_limit=bad):
                r = D.g.get("/v1/groups/%s/audit?limit=%s" % (q, bad), **adm)
                self.refused(r, 400, "malformed-request")  # documented: 1..10000, else 400
        for bad in ("x", "99999999999999999999", "-1"):
            with self.subTest(key_version=bad):
                r = D.g.post("/v1/groups/%s/keys/%s/destroy" % (q, bad), {}, **adm)
                self.assertIn(r.status, (400, 404), r)
                self.refused(r, r.status, r.json["error"])

    # -- base64
    def test_invalid_base64(self):
        bad = ["@@@@", "QQ", "QQ=", "Q===", "QUJD\n", "QUJD RA==", "QUJ\tD", "-_-_", "QR==", "QUI=QUI=",
               "====", "QUJD\x00", "\u00e9\u00e9\u00e9\u00e9"]
        for name, path, cred, good in self.reading_ops():
            if name == "bulk":
                continue
            for v in bad:
                with self.subTest(op=name, field="recipient_info", value=v):
                    body = with_ri(name, EC, good, v)
                    self.refused(D.g.post(path, body, **cred), 400, "malformed-base64")
        _, path, cred, good = self.reading_ops()[5]  # blind
        for v in bad:
            with self.subTest(op="blind", field="blinded", value=v):
                self.refused(D.g.post(path, dict(good, blinded=v), **cred), 400, "malformed-base64")
        _, path, cred, _ = self.reading_ops()[-1]
        r = D.g.post(path, {"requests": [{"operation": "unwrap", "recipient_info": v} for v in bad]}, **cred)
        self.assertEqual(r.status, 200, r)
        self.assertEqual({(x["status"], x["error"]) for x in r.json["responses"]}, {(400, "malformed-base64")})

    # -- DER
    def bad_der(self):
        ri = W["ri"]["ec"]
        ktri = W["ri"]["rsa-oaep"]
        cert = harness.cert_der(W["cert"][EC])
        t = harness.tlv(ri, 0)
        return {
            "empty": b"",
            "integer": b"\x02\x01\x00",
            "null": b"\x05\x00",
            "empty-sequence": b"\x30\x00",
            "certificate": cert,
            "truncated-by-1": ri[:-1],
            "truncated-half": ri[:len(ri) // 2],
            "header-only": ri[:t.content],
            "trailing-00": ri + b"\x00",
            "trailing-junk": ri + b"junk",
            "two-ris": ri + ri,
            "huge-length-4": b"\x30\x84\xff\xff\xff\xff" + ri[t.content:],
            "huge-length-8": b"\x30\x88\xff\xff\xff\xff\xff\xff\xff\xff" + ri[t.content:],
            "length-of-length-9": b"\x30\x89" + b"\x01" * 9 + ri[t.content:],
            "length-0x80-indefinite-junk": b"\xa1\x80\x02\x01\x03",
            "non-minimal-length": b"\x30\x81\x05\x02\x01\x00\x05\x00",
            "high-tag-number": b"\x1f\x81\x00\x00",
            "ktri-wrong-version-type": al.edit(ktri, lambda n: setattr(n.kids[0], "tag", 0x04)),
            "ktri-extra-element": al.edit(ktri, lambda n: n.kids.append(al.Der(0x05, b""))),
            "ktri-missing-key": al.edit(ktri, lambda n: n.kids.pop()),
            "ktri-key-not-octets": al.edit(ktri, lambda n: setattr(n.kids[3], "tag", 0x02)),
            "kari-extra-element": al.edit(ri, lambda n: n.kids.append(al.Der(0x05, b""))),
            "kari-rek-extra-element": al.edit(ri, lambda n: n.kids[-1].kids[0].kids.append(al.Der(0x05, b""))),
            "kari-no-recipients": al.edit(ri, lambda n: n.kids[-1].kids.clear()),
            "kari-originator-not-a-bit-string": al.edit(
                ri, lambda n: setattr(n.kids[1].kids[0].kids[1], "tag", 0x04)),
            "kari-originator-unused-bits-7": al.edit(
                ri, lambda n: setattr(n.kids[1].kids[0].kids[1], "value", b"\x07" + al.kari_originator_point(ri))),
        }

    def test_der_that_is_not_a_recipient_info(self):
        cases = self.bad_der()
        for name, path, cred, good in self.reading_ops() + self.reading_ops(RSA):
            if name == "bulk":
                continue
            for case, der in sorted(cases.items()):
                if case.startswith("ktri") != (RSA in path):
                    continue  # each RecipientInfo kind to the group whose key it names
                with self.subTest(op=name, der=case):
                    r = D.g.post(path, with_ri(name, RSA if RSA in path else EC, good, b64(der)), **cred)
                    # malformed-der for what is no RecipientInfo at all; a KARI whose originator key is
                    # no point may also say bad-point. Never unwrap-failed: that is for a real RecipientInfo.
                    ok_codes = ("malformed-der", "bad-point") if case.startswith("kari-originator") else \
                        ("malformed-der", "unwrap-failed") if case == "kari-no-recipients" else ("malformed-der",)
                    self.assertEqual(r.status, 400, r)
                    self.assertIn(r.json.get("error"), ok_codes, r)
                    self.refused(r, 400, r.json["error"])

    # -- PEM
    def bad_pems(self):
        good = W["mcert"][EC][0]
        lines = good.strip().splitlines()
        csr = al.csr_pem(al.ec_key_file(f("pem-test.key")))
        return {
            "empty": "",
            "words": "not a certificate",
            "csr": csr,
            "private-key": harness.read(f("pem-test.key"), "r"),
            "truncated-half": good[:len(good) // 2],
            "no-end-line": "\n".join(lines[:-1]) + "\n",
            "bad-base64": "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
            "empty-body": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            "der-as-base64": b64(harness.cert_der(good)),
            "body-truncated": "\n".join(lines[:3] + lines[-1:]) + "\n",
            "garbage-in-der": ("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" %
                               b64(b"\x30\x03\x02\x01\x00")),
        }

    def test_pem_that_is_not_a_certificate(self):
        pems = self.bad_pems()
        ri = b64(W["ri"]["ec"])
        for case, pem in sorted(pems.items()):
            with self.subTest(endpoint="rewrap-certificate", pem=case):
                r = al.path_g(D.g, EC, pem, {"recipient_info": ri}, key=W["mcert"][EC][1])
                self.refused(r, 400, "malformed-certificate")
            with self.subTest(endpoint="bulk-G", pem=case):
                r = al.path_g(D.g, EC, pem, [{"recipient_info": ri}], key=W["mcert"][EC][1])
                self.refused(r, 400, "malformed-certificate")
        adm = {"token": D.admin_token}
        q = quote(SCRATCH)
        for case, pem in sorted(pems.items()):
            for method, path, body in (("POST", "/v1/groups/%s/members" % q, {"address": "pem@example.org",
                                                                               "certificate": pem}),
                                       ("PUT", "/v1/groups/%s/exploder" % q, {"certificate": pem}),
                                       ("POST", "/v1/groups/%s/keys/1/certificate" % q, {"certificate": pem})):
                with self.subTest(endpoint=path, pem=case):
                    self.refused(D.g.request(method, path, body, **adm), 400, "malformed-certificate")

    # -- size
    def test_oversize_bodies(self):
        for method, path, cred in self.every_endpoint():
            with self.subTest(method=method, path=path, kind="declared"):
                r = D.g.oversized(method, path, 10 * 1024 * 1024, token=cred.get("token"), cert=cred.get("cert"))
                self.refused(r, 413, "body-too-large")
            with self.subTest(method=method, path=path, kind="chunked"):
                chunk = b'{"recipient_info": "' + b"A" * 16000
                data = al.http_head(method, path, D.g.port, ["Transfer-Encoding: chunked",
                                                            "Content-Type: application/json"] +
                                    (["Authorization: Bearer " + cred["token"]] if "token" in cred else []))
                data += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
                r = al.raw_http(D.g, data, cert=cred.get("cert"))
                self.assertIsNotNone(r, "no answer to an oversize chunked body")
                self.refused(r, 413, "body-too-large")

    def test_long_headers_and_paths(self):
        port = D.g.port
        cases = {
            "long-header": al.http_head("GET", "/healthz", port, ["X-Long: " + "a" * 20000]),
            "many-headers": al.http_head("GET", "/healthz", port, ["X-H%d: v" % i for i in range(2000)]),
            "long-path": al.http_head("GET", "/v1/groups/" + "a" * 20000 + "/certificate", port),
            "long-token": al.http_head("POST", "/v1/groups/%s/unwrap" % quote(EC), port,
                                       ["Authorization: Bearer blt_" + "0" * 20000], b"{}"),
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                r = al.raw_http(D.g, data)
                self.assertIsNotNone(r, "no answer")
                self.refused(r, 431, "headers-too-large")
        # Long, but under the limit: an ordinary refusal.
        r = D.g.get("/v1/groups/" + "a" * 4000 + "/certificate")
        self.refused(r, 404, "unknown-group")
        r = D.g.get("/v1/" + "x/" * 2000)
        self.refused(r, 404, "not-found", counted=True)

    def test_unknown_and_wrong_methods(self):
        q = quote(EC)
        for name, path, cred, _ in self.reading_ops():
            for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "PROPFIND"):
                with self.subTest(op=name, method=method):
                    r = D.g.request(method, path, **cred)
                    self.refused(r, 405, "method-not-allowed")
            with self.subTest(op=name, method="HEAD"):
                r = D.g.request("HEAD", path, **cred)
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.body, b"")
                self.expected["method-not-allowed"] = self.expected.get("method-not-allowed", 0) + 1
        for method in ("POST", "DELETE", "FOO"):
            with self.subTest(op="secrets", method=method):
                r = D.g.request(method, "/v1/groups/%s/secrets" % q, token=W["tok"][(EC, "bob")])
                self.refused(r, 405, "method-not-allowed")
        # Admin resources with a method they do not take: a JSON 404 or 405, never 5xx (docs/api.md says 405).
        adm = {"token": D.admin_token}
        s = quote(SCRATCH)
        for method, path in (("FOO", "/v1/groups"), ("DELETE", "/v1/groups"), ("PATCH", "/v1/groups/%s" % s),
                             ("PUT", "/v1/groups/%s/members" % s), ("GET", "/v1/groups/%s/rotate" % s),
                             ("GET", "/v1/groups/%s/exploder" % s), ("POST", "/v1/groups/%s/audit" % s)):
            with self.subTest(admin=path, method=method):
                r = D.g.request(method, path, {} if method in ("POST", "PUT", "PATCH") else None, **adm)
                self.assertIn(r.status, (404, 405), r)
                self.refused(r, r.status, r.json["error"])
        # Unknown endpoints.
        for path in ("/", "/v2/groups", "/v1/groups/%s/unwrap/extra" % q, "/v1/groups/%s/rewrap/other" % q,
                     "/healthz/x", "/.well-known/security.txt"):
            with self.subTest(unknown=path):
                r = D.g.post(path, {}, token=W["tok"][(EC, "bob")])
                self.assertIn(r.status, (401, 404), r)
                self.refused(r, r.status, r.json["error"])

    def test_malformed_http(self):
        port = D.g.port
        q = quote(EC)
        cases = {
            # request smuggling: both framings, or two lengths
            "cl-and-te": (al.http_head("POST", "/v1/groups/%s/unwrap" % q, port,
                                       ["Content-Length: 4", "Transfer-Encoding: chunked"]) + b"0\r\n\r\n",
                          400, "bad-request"),
            "two-lengths": (al.http_head("POST", "/v1/groups/%s/unwrap" % q, port,
                                         ["Content-Length: 2", "Content-Length: 3"]) + b"{}", 400, "bad-request"),
            "negative-length": (al.http_head("POST", "/healthz", port, ["Content-Length: -1"]), 400, "bad-request"),
            "length-not-a-number": (al.http_head("POST", "/healthz", port, ["Content-Length: 1e3"]), 400,
                                    "bad-request"),
            "bad-chunk-size": (al.http_head("POST", "/v1/groups/%s/unwrap" % q, port, ["Transfer-Encoding: chunked"])
                               + b"zz\r\n{}\r\n0\r\n\r\n", 400, "bad-request"),
            "space-in-header-name": (al.http_head("GET", "/healthz", port, ["Bad Header: x"]), 400, "bad-request"),
            "nul-in-header": (al.http_head("GET", "/healthz", port, ["X-A: a\x00b"]), 400, "bad-request"),
            "bad-version": (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad-request"),
            "http09": (b"GET /healthz\r\n\r\n", 400, "bad-request"),
            "h2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad-request"),
            "percent-zz": (al.http_head("GET", "/v1/groups/%zz/certificate", port), 400, "bad-target"),
            "percent-00": (al.http_head("GET", "/v1/groups/a%00b/certificate", port), 400, "bad-target"),
            "truncated-percent": (al.http_head("GET", "/healthz%4", port), 400, "bad-target"),
            "absolute-form": (al.http_head("GET", "https://127.0.0.1/healthz", port), 400, "bad-target"),
            "asterisk": (al.http_head("OPTIONS", "*", port), 400, "bad-target"),
        }
        for name, (data, status, code) in cases.items():
            with self.subTest(case=name):
                r = al.raw_http(D.g, data)
                self.assertIsNotNone(r, "no answer to a malformed request")
                self.refused(r, status, code)


if __name__ == "__main__":
    harness.main()
