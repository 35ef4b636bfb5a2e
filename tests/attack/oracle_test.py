#!/usr/bin/env python3
"""Attack: a Bleichenbacher (RSA PKCS#1 v1.5 padding) oracle on every groupd operation.

Usage: oracle_test.py BLINDLIST GROUPD CERTD [LISTD] [unittest args]

The attacker holds what a compromised exploder (path B), any member (F, E, S, bulk) or anyone
with a copy of a membership certificate (path G) holds, and an RSA-3072 group's public
certificate. It builds KeyTransRecipientInfos for the group key with the raw RSA operation
(python3-cryptography gives n and e):
  (a) valid PKCS#1 v1.5 with a 32-byte key (also 16 and 24: the lengths a CEK may have),
      and the real post's own RecipientInfo
  (b) valid v1.5 padding around a 5-byte and a 47-byte message (no CEK length)
  (c) invalid padding (block type 03, or a first octet of 01)
  (d) a random integer below n
  (e) a random integer labelled RSA-OAEP (SHA-256)
and sends each to unwrap, rewrap, rewrap/secret, rewrap/exploder, rewrap/certificate and bulk.
Any difference between (a) and the others in status, error or not, JSON keys or body length
tells the attacker whether the padding was valid: with ~10^5-10^6 such questions it recovers
the message key of any post. Required: the same status, the same keys, and a body whose length
is one a valid key of 16, 24 or 32 bytes gives (equal lengths where the answer does not carry
the key's length: a RecipientInfo for an RSA certificate). And (a) must still read a real post,
while a post whose RecipientInfo is (c) must fail to decrypt with one clear line and no output.
Plus the EC side: a tampered wrapped key answers like a valid one; a point off the curve is an
explicit 400 bad-point (public input).
"""

import os
import secrets
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import b64, unb64, quote, encode  # noqa: E402

from cryptography import x509  # noqa: E402

G = "oracle-rsa@example.org"
EC = "oracle-ec@example.org"
RSA_ENCRYPTION = bytes.fromhex("300d06092a864886f70d0101010500")
CEK_LENGTHS = (16, 24, 32)


def nonzero(n):
    out = bytearray()
    while len(out) < n:
        out += bytes(b for b in secrets.token_bytes(n) if b)
    return bytes(out[:n])


def pkcs1_type2(k, message, block_type=2, lead=0):
    return bytes([lead, block_type]) + nonzero(k - 3 - len(message)) + b"\x00" + message


class RsaGroupKey:
    def __init__(self, pem):
        cert = x509.load_pem_x509_certificate(pem)
        numbers = cert.public_key().public_numbers()
        self.n, self.e = numbers.n, numbers.e
        self.k = (self.n.bit_length() + 7) // 8

    def raw_encrypt(self, em):
        m = int.from_bytes(em, "big")
        assert m < self.n
        return pow(m, self.e, self.n).to_bytes(self.k, "big")

    def random_below_n(self):
        while True:
            v = int.from_bytes(secrets.token_bytes(self.k), "big")
            if v < self.n:
                return v.to_bytes(self.k, "big")


def ktri(rid, alg, encrypted_key):
    """KeyTransRecipientInfo v0: version, rid (DER as is), algorithm (DER), encryptedKey."""
    return encode(0x30, b"\x02\x01\x00" + rid + alg + encode(0x04, encrypted_key))


def ktri_parts(ri):
    t = harness.tlv(ri, 0)
    kids = harness.children(ri, t)
    return harness.raw(ri, kids[1]), harness.raw(ri, kids[2])


class PaddingOracle(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("oracle").start()
        p = d.pki
        cls.tmp = harness.tempdir("oracle-work")
        p.make_ca("member-ca", "Attack member CA")
        cls.alice = (p.member("alice", "member-ca", "rsa2048", "alice@example.org"), p.key("alice"))
        cls.exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        d.create_group(G, "rsa3072")
        d.create_group(EC, "p256")
        cls.tok = {}
        for g in (G, EC):
            r = d.admin("member", "add", g, "alice@example.org", "--cert", cls.alice[0], "--token")
            cls.tok[(g, "alice")] = r["token"]
            d.admin("exploder", "set", g, "--cert", cls.exploder[0])
        cls.tok["carol"] = d.admin("member", "add", G, "carol@example.org", "--token")["token"]  # no certificate

        # A membership certificate for path G, RSA so that the re-wrap's length is fixed.
        csr = p.csr("g-member", "rsa2048", cn="ignored")
        r = d.c.post("/v1/groups/%s/certificates" % quote(G), {"csr": harness.read(csr, "r")},
                     token=cls.tok["carol"])
        assert r.status == 201, r
        cls.membership_pem = r.json["certificate"]
        cls.membership_key = p.key("g-member")

        cls.cert = {}
        for g, tag in ((G, "rsa"), (EC, "ec")):
            cls.cert[g] = cls.f("%s.crt" % tag)
            d.public_certificate(g, cls.cert[g])
        cls.key = RsaGroupKey(harness.read(cls.cert[G]))
        assert cls.key.k == 384, "the group key is not RSA-3072"

        # The real posts: openssl cms (PKCS#1 v1.5, AES-256-GCM) and blindlist (RSA-OAEP).
        cls.plain = harness.read(harness.write(cls.f("entity.txt"), harness.entity("The oracle's target.")))
        cls.post = harness.osl_encrypt(cls.f("entity.txt"), cls.f("post.smime"), cls.cert[G])
        msg = harness.write(cls.f("msg.eml"), harness.rfc5322("oracle", "An OAEP post.", to=G))
        cls.oaep_post = cls.f("oaep.eml")
        d.bl("encrypt", "--to", cls.cert[G], "-i", msg, "-o", cls.oaep_post)
        cls.ec_post = cls.f("ec.eml")
        d.bl("encrypt", "--to", cls.cert[EC], "-i", msg, "-o", cls.ec_post)

        post_ri = harness.recipient_infos(harness.cms_of(cls.post))[0]
        rid, alg = ktri_parts(post_ri)
        assert alg == RSA_ENCRYPTION, "openssl cms did not use PKCS#1 v1.5"
        _, oaep_alg = ktri_parts(harness.recipient_infos(harness.cms_of(cls.oaep_post))[0])
        assert oaep_alg != RSA_ENCRYPTION
        cls.post_ri = post_ri
        key = cls.key
        k = key.k
        v15 = lambda em: ktri(rid, alg, key.raw_encrypt(em))  # noqa: E731
        cls.known = {}  # RecipientInfo -> the key it carries
        classes = {}
        for n in CEK_LENGTHS:
            cek = secrets.token_bytes(n)
            ri = v15(pkcs1_type2(k, cek))
            cls.known[ri] = cek
            classes["a%d" % n] = [ri]
        classes["a32"].append(post_ri)
        classes["b5"] = [v15(pkcs1_type2(k, secrets.token_bytes(5))) for _ in range(2)]
        classes["b47"] = [v15(pkcs1_type2(k, secrets.token_bytes(47))) for _ in range(2)]
        classes["c"] = [v15(pkcs1_type2(k, secrets.token_bytes(32), block_type=3)),
                        v15(pkcs1_type2(k, secrets.token_bytes(32), lead=1)),
                        v15(b"\x00\x02" + nonzero(k - 2))]  # no separator
        classes["d"] = [ktri(rid, alg, key.random_below_n()) for _ in range(3)]
        classes["e"] = [ktri(rid, oaep_alg, key.random_below_n()) for _ in range(3)]
        cls.classes = classes

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def f(cls, name):
        return os.path.join(cls.tmp, name)

    # -- the comparison every path must pass
    def answers(self, path, ri, **kw):
        body = {"recipient_info": b64(ri), "reason": "oracle"}
        body.update(kw.pop("extra", {}))
        if path == "rewrap/certificate":  # the holder of the membership key proves it
            body["proof"] = harness.possession_proof(G, [body["recipient_info"]], self.membership_key)
        return self.d.g.post("/v1/groups/%s/%s" % (quote(G), path), body, **kw)

    def assertUniform(self, name, replies, fixed_length, length_field=None):
        """replies: {class: [(status, json, body length)]}. The same status, error-or-not and keys
        for every class; body lengths all equal (fixed_length) or each one a valid key gives."""
        valid = {c: replies[c] for c in ("a16", "a24", "a32")}
        ref_status, ref_json, _ = replies["a32"][0]
        for cls_, rs in replies.items():
            for status, j, length in rs:
                with self.subTest(path=name, cls=cls_):
                    self.assertEqual(status, ref_status, "%s: class %s answers %s, a valid key %s: %r"
                                     % (name, cls_, status, ref_status, j))
                    self.assertEqual("error" in j, "error" in ref_json, j)
                    self.assertEqual(sorted(j), sorted(ref_json), "%s: class %s has other JSON keys" % (name, cls_))
                    if "error" in ref_json:
                        self.assertEqual(j, ref_json)
        lengths = {c: {length for _, _, length in rs} for c, rs in replies.items()}
        valid_lengths = set().union(*(lengths[c] for c in valid))
        if fixed_length:
            self.assertEqual(len(set().union(*lengths.values())), 1,
                             "%s: body lengths differ between classes: %r" % (name, lengths))
        else:
            for cls_, ls in lengths.items():
                self.assertLessEqual(ls, valid_lengths, "%s: class %s gives a length no valid key gives: %r"
                                     % (name, cls_, lengths))
        return lengths

    def run_path(self, path, **kw):
        replies = {}
        for cls_, ris in self.classes.items():
            out = []
            for ri in ris:
                r = self.answers(path, ri, **kw)
                out.append((r.status, r.json, len(r.body)))
            replies[cls_] = out
        return replies

    def test_unwrap_F(self):
        replies = self.run_path("unwrap", token=self.tok[(G, "alice")])
        self.assertUniform("unwrap", replies, fixed_length=False)
        # The valid ones are the real keys; the others are keys of a CEK's length all the same.
        for ri, cek in self.known.items():
            self.assertEqual(unb64(self.answers("unwrap", ri, token=self.tok[(G, "alice")]).json["cek"]), cek)
        for cls_, rs in replies.items():
            for _, j, _ in rs:
                self.assertIn(len(unb64(j["cek"])), CEK_LENGTHS, cls_)
        # The same RecipientInfo gives the same key again (nothing to average away).
        again = self.answers("unwrap", self.classes["c"][0], token=self.tok[(G, "alice")])
        self.assertEqual(again.json, replies["c"][0][1])

    def test_rewrap_E(self):
        # To alice's registered RSA certificate: a KeyTransRecipientInfo of fixed length.
        self.assertUniform("rewrap", self.run_path("rewrap", token=self.tok[(G, "alice")]), fixed_length=True)
        # carol has no certificate: the refusal comes before any unwrap, the same for every class.
        replies = self.run_path("rewrap", token=self.tok["carol"])
        self.assertUniform("rewrap (no certificate)", replies, fixed_length=True)
        self.assertEqual(replies["c"][0][:2], (400, replies["a32"][0][1]))
        self.assertEqual(replies["a32"][0][1]["error"], "no-certificate")

    def test_rewrap_secret_S(self):
        self.assertUniform("rewrap/secret", self.run_path("rewrap/secret", token=self.tok[(G, "alice")]),
                           fixed_length=False)

    def test_rewrap_exploder_B(self):
        self.assertUniform("rewrap/exploder", self.run_path("rewrap/exploder", cert=self.exploder),
                           fixed_length=False)

    def test_rewrap_certificate_G(self):
        replies = self.run_path("rewrap/certificate", extra={"certificate": self.membership_pem})
        self.assertUniform("rewrap/certificate", replies, fixed_length=True)

    def test_bulk(self):
        items = []
        for cls_, ris in self.classes.items():
            for ri in ris:
                for op in ("unwrap", "rewrap", "rewrap-secret"):
                    items.append((cls_, op, {"operation": op, "recipient_info": b64(ri)}))
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(G), {"requests": [i[2] for i in items]},
                          token=self.tok[(G, "alice")])
        self.assertEqual(r.status, 200, r)
        out = r.json["responses"]
        for op in ("unwrap", "rewrap", "rewrap-secret"):
            replies = {}
            for (cls_, o, _), answer in zip(items, out):
                if o == op:
                    replies.setdefault(cls_, []).append((answer["status"], answer, len(repr(sorted(answer.items())))))
            self.assertUniform("bulk " + op, replies, fixed_length=op == "rewrap")
        # Path G in bulk: every item rewrap-certificate.
        items = [(c, {"operation": "rewrap-certificate", "recipient_info": b64(ri)})
                 for c, ris in self.classes.items() for ri in ris]
        r = self.d.g.post("/v1/groups/%s/bulk" % quote(G),
                          {"certificate": self.membership_pem, "requests": [i[1] for i in items],
                           "proof": harness.possession_proof(G, [i[1]["recipient_info"] for i in items],
                                                             self.membership_key)})
        self.assertEqual(r.status, 200, r)
        replies = {}
        for (cls_, _), answer in zip(items, r.json["responses"]):
            replies.setdefault(cls_, []).append((answer["status"], answer, len(repr(sorted(answer.items())))))
        self.assertUniform("bulk rewrap-certificate", replies, fixed_length=True)

    def test_valid_key_reads_the_post_and_a_rejected_one_reads_nothing(self):
        cms = harness.cms_of(self.post)
        secrets_reply = self.d.g.get("/v1/groups/%s/secrets" % quote(G), token=self.tok[(G, "alice")]).json
        secret = {s["key_id"]: s["secret"] for s in secrets_reply["secrets"]}
        for cls_, ri in (("a32", self.post_ri), ("c", self.classes["c"][0]), ("b5", self.classes["b5"][0])):
            r = self.answers("rewrap/exploder", ri, cert=self.exploder)
            self.assertEqual(r.status, 200, r)
            kekri = unb64(r.json["recipient_info"])
            key_id = harness.kekri_key_id(kekri).hex()
            forwarded = harness.write(self.f("B-%s.der" % cls_), harness.replace_recipient(cms, 0, kekri))
            if cls_ == "a32":
                # Path B with the real post's RecipientInfo: what every member reads.
                self.assertEqual(harness.osl_decrypt_secret(forwarded, unb64(secret[key_id]).hex(), key_id,
                                                            inform="DER"), self.plain)
            else:
                with self.assertRaises(harness.CommandFailed):
                    harness.osl_decrypt_secret(forwarded, unb64(secret[key_id]).hex(), key_id, inform="DER")
        # blindlist open with the real RecipientInfo reads the post; with (c) in its place it says
        # in one line that it cannot, and writes nothing.
        p = self.d.open(G, "tls", self.post, token=self.tok[(G, "alice")])
        self.assertEqual(harness.crlf(p.stdout), harness.crlf(self.plain))
        altered = harness.write(self.f("altered.der"), harness.replace_recipient(cms, 0, self.classes["c"][0]))
        for method, kw in (("tls", {"token": self.tok[(G, "alice")]}),
                           ("rewrap", {"token": self.tok[(G, "alice")], "member": self.alice}),
                           ("secret", {"token": self.tok[(G, "alice")]})):
            with self.subTest(method=method):
                p = self.d.open(G, method, altered, check=False, **kw)
                err = self.assertCliRefused(p, "cannot read this post")
                self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_ec_tampered_key_answers_like_a_valid_one_and_bad_points_are_refused(self):
        ri = harness.recipient_infos(harness.cms_of(self.ec_post))[0]
        path = "/v1/groups/%s/unwrap" % quote(EC)
        tok = self.tok[(EC, "alice")]
        good = self.d.g.post(path, {"recipient_info": b64(ri)}, token=tok)
        tampered = self.d.g.post(path, {"recipient_info": b64(harness.flip_last_byte(ri))}, token=tok)
        self.assertEqual(good.status, 200, good)
        self.assertEqual((tampered.status, sorted(tampered.json), len(tampered.body)),
                         (200, sorted(good.json), len(good.body)), tampered)
        self.assertNotEqual(tampered.json["cek"], good.json["cek"])
        r = self.d.g.post("/v1/groups/%s/rewrap/exploder" % quote(EC),
                          {"recipient_info": b64(harness.flip_last_byte(ri))}, cert=self.exploder)
        self.assertEqual(r.status, 200, r)
        # The ephemeral point replaced in place by one off the curve: public input, said openly.
        point = ri.index(b"\x03\x42\x00\x04") + 4
        off_curve = ri[:point] + b"\x01" * 64 + ri[point + 64:]
        r = self.d.g.post(path, {"recipient_info": b64(off_curve)}, token=tok)
        self.assertRefused(r, 400, "bad-point")


if __name__ == "__main__":
    harness.main()
