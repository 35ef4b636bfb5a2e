"""P-256 arithmetic in Python and the key generation's message formats (src/crypto/threshold.cc),
for the tests that play a dishonest node or relay (threshold_dkg_test.py)."""
import base64, hashlib, os
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff
A = P - 3
B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b
Q = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296,
     0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5)

def add(p1, p2):
    if p1 is None: return p2
    if p2 is None: return p1
    if p1[0] == p2[0] and (p1[1] + p2[1]) % P == 0: return None
    if p1 == p2:
        l = (3 * p1[0] * p1[0] + A) * pow(2 * p1[1], -1, P) % P
    else:
        l = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, P) % P
    x = (l * l - p1[0] - p2[0]) % P
    return (x, (l * (p1[0] - x) - p1[1]) % P)

def mul(k, pt=G):
    k %= Q
    r = None
    while k:
        if k & 1: r = add(r, pt)
        pt = add(pt, pt); k >>= 1
    return r

def neg(pt): return None if pt is None else (pt[0], (-pt[1]) % P)

def enc(pt): return bytes([2 + (pt[1] & 1)]) + pt[0].to_bytes(32, "big")

def dec(b):
    x = int.from_bytes(b[1:33], "big")
    y = pow((x ** 3 + A * x + B) % P, (P + 1) // 4, P)
    if (y & 1) != (b[0] & 1): y = P - y
    return (x, y)

def field(name, value):
    return "%s=%d:%s\n" % (name, len(value.encode() if isinstance(value, str) else value), value)

def start_message(group, rnd, k, n, index, url, key_b, commit_b):
    return ("blindlist threshold-dkg-start v1\n" + field("group", group) + field("round", rnd) +
            field("k", str(k)) + field("n", str(n)) + field("index", str(index)) + field("node", url) +
            field("round-key", key_b.hex()) + field("commitments", commit_b.hex()))

def view_digest(group, rnd, k, urls, messages):
    t = ("blindlist threshold-dkg-view v1\n" + field("group", group) + field("round", rnd) +
         field("k", str(k)) + field("n", str(len(urls))))
    for u in urls: t += field("node", u)
    for m in messages: t += field("start", m)
    return hashlib.sha256(t.encode()).digest()

def deal_message(group, rnd, index, digest):
    return ("blindlist threshold-dkg-deal v1\n" + field("group", group) + field("round", rnd) +
            field("index", str(index)) + field("view", digest.hex()))

def piece_context(group, rnd, frm, to, digest):
    return ("blindlist threshold-dkg-piece v2\n" + field("group", group) + field("round", rnd) +
            field("from", str(frm)) + field("to", str(to)) + field("view", digest.hex()))

def seal_between(own, peer_pt, context, plain):
    z = mul(own, peer_pt)[0].to_bytes(32, "big")
    key = HKDF(hashes.SHA256(), 32, salt=None, info=context.encode()).derive(z)
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, plain, context.encode())

def open_between(own, peer_pt, context, sealed):
    z = mul(own, peer_pt)[0].to_bytes(32, "big")
    key = HKDF(hashes.SHA256(), 32, salt=None, info=context.encode()).derive(z)
    return AESGCM(key).decrypt(sealed[1:13], sealed[13:], context.encode())

def encode_share(index, k, n, scalar):
    return bytes([1, index, k, n]) + scalar.to_bytes(32, "big")

def sign(key_path, msg):
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
    return key.sign(msg.encode(), ec.ECDSA(hashes.SHA256()))

def b64(b): return base64.b64encode(b).decode()
def unb64(s): return base64.b64decode(s)
def rand(): return int.from_bytes(os.urandom(32), "big") % (Q - 1) + 1

def accept_message(group, rnd, index, digest, summed_commitments):
    return ("blindlist threshold-dkg-accept v1\n" + field("group", group) + field("round", rnd) +
            field("index", str(index)) + field("view", digest.hex()) +
            field("commitments", hashlib.sha256(summed_commitments).hexdigest()))
