"""Shared tools of the attack tests for the classes of attack around issue 11's items.

Standard library, tests/integration/harness.py and python3-cryptography (for the
EC and RSA arithmetic: invalid-curve points, raw RSA with chosen padding).

  Der          a small DER tree (parse, edit, re-encode) for tampering with RecipientInfos
  points       P-256 points that must be refused: off the curve, of small order on another
               curve (invalid-curve attack), on the quadratic twist, the point at infinity
  raw RSA      a PKCS#1 v1.5 or OAEP block of our choosing, encrypted to the group's key
  path_g_*     the ONE place that builds a path G request (rewrap/certificate and its bulk
               form), so a proof of possession of the certificate's key can be added here alone
  metrics      groupd_/certd_requests_total read from /metrics, summed by result
  raw_http     bytes sent as they are over TLS, for what http.client will not send
"""

import os
import re
import secrets
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

# ---------------------------------------------------------------------------
# DER tree


class Der:
    """One TLV: `kids` for a constructed one, `value` for a primitive one."""

    def __init__(self, tag, value=None, kids=None):
        self.tag = tag
        self.value = value
        self.kids = kids

    @staticmethod
    def parse(buf):
        node, end = Der._parse(bytes(buf), 0)
        if end != len(buf):
            raise ValueError("trailing bytes after the DER value")
        return node

    @staticmethod
    def _parse(buf, off):
        t = harness.tlv(buf, off)
        if t.content_end + 2 == t.end and buf[t.content_end:t.end] == b"\x00\x00":
            raise ValueError("BER indefinite length is not DER")
        if t.tag & 0x20:
            kids = []
            p = t.content
            while p < t.content_end:
                kid, p = Der._parse(buf, p)
                kids.append(kid)
            return Der(t.tag, kids=kids), t.end
        return Der(t.tag, value=bytes(buf[t.content:t.content_end])), t.end

    def encode(self):
        if self.kids is not None:
            return harness.encode(self.tag, b"".join(k.encode() for k in self.kids))
        return harness.encode(self.tag, self.value)

    def copy(self):
        return Der.parse(self.encode())


def edit(ri, fn):
    """A copy of RecipientInfo `ri` (bytes) after fn(tree) changed it; the DER re-encoded."""
    tree = Der.parse(ri)
    fn(tree)
    return tree.encode()


def flip(b, i, mask=0x01):
    i = i % len(b)
    return b[:i] + bytes([b[i] ^ mask]) + b[i + 1:]


# KeyTransRecipientInfo ::= SEQUENCE { version, rid, keyEncryptionAlgorithm, encryptedKey }
def ktri_encrypted_key(ri):
    return Der.parse(ri).kids[3].value


def ktri_with_encrypted_key(ri, ek):
    def fn(t):
        t.kids[3].value = ek
    return edit(ri, fn)


def ktri_with_algorithm(ri, alg_der):
    def fn(t):
        t.kids[2] = Der.parse(alg_der)
    return edit(ri, fn)


def ktri_algorithm(ri):
    return Der.parse(ri).kids[2].encode()


RSA_ENCRYPTION_ALG = bytes.fromhex("300d06092a864886f70d0101010500")
# RSAES-OAEP with SHA-256 and MGF1-SHA-256 (what blindlist and openssl -keyopt rsa_oaep_md:sha256 send).
OAEP_SHA256_ALG = bytes.fromhex(
    "303806092a864886f70d010107302ba00d300b0609608648016503040201a11a301806092a864886f70d010108"
    "300b0609608648016503040201")
# RSAES-OAEP with the default parameters (SHA-1).
OAEP_SHA1_ALG = bytes.fromhex("300d06092a864886f70d0101073000")


def _rid_tamper(rid):
    """A rid naming another key: the serial (issuerAndSerialNumber) or the subjectKeyIdentifier changed."""
    if rid.tag == 0x30:  # IssuerAndSerialNumber
        serial = rid.kids[1]
        serial.value = flip(serial.value, -1)
    elif rid.tag in (0x80, 0xA0):  # [0] SubjectKeyIdentifier (KTRI) / RecipientKeyIdentifier (KARI)
        if rid.kids is not None:
            rid.kids[0].value = flip(rid.kids[0].value, -1)
        else:
            rid.value = flip(rid.value, -1)
    else:
        raise AssertionError("unexpected rid tag 0x%02x" % rid.tag)


def _rid_other_issuer(rid):
    if rid.tag != 0x30:
        raise AssertionError("issuerAndSerialNumber expected")
    name = rid.kids[0]
    # The last RDN's value: change one character of it.
    leaf = name
    while leaf.kids:
        leaf = leaf.kids[-1]
    leaf.value = flip(leaf.value, -1, 0x02)


def with_rid_serial_changed(ri):
    def fn(t):
        _rid_tamper(t.kids[1] if t.tag == 0x30 else kari_parts(t)["reks"].kids[0].kids[0])
    return edit(ri, fn)


def with_rid_issuer_changed(ri):
    def fn(t):
        _rid_other_issuer(t.kids[1] if t.tag == 0x30 else kari_parts(t)["reks"].kids[0].kids[0])
    return edit(ri, fn)


# KeyAgreeRecipientInfo ::= [1] { version, originator [0], ukm [1] OPTIONAL, keyEncryptionAlgorithm,
#                                  recipientEncryptedKeys }
def kari_parts(t):
    if t.tag != 0xA1:
        raise AssertionError("not a KeyAgreeRecipientInfo (tag 0x%02x)" % t.tag)
    kids = t.kids
    originator = kids[1]
    rest = kids[2:]
    ukm = rest.pop(0) if rest[0].tag == 0xA1 else None
    return {"originator": originator, "ukm": ukm, "alg": rest[0], "reks": rest[1]}


def kari_originator_point(ri):
    parts = kari_parts(Der.parse(ri))
    opk = parts["originator"].kids[0]  # [1] OriginatorPublicKey
    assert opk.tag == 0xA1, "the originator is not an OriginatorPublicKey"
    bits = opk.kids[1].value
    return bits[1:]


def kari_with_point(ri, point):
    """The KARI with its originator public key replaced by `point` (raw bytes of the BIT STRING)."""
    def fn(t):
        opk = kari_parts(t)["originator"].kids[0]
        opk.kids[1].value = b"\x00" + point
    return edit(ri, fn)


def kari_with_wrapped_key(ri, wrapped):
    def fn(t):
        rek = kari_parts(t)["reks"].kids[0]
        rek.kids[1].value = wrapped
    return edit(ri, fn)


def kari_wrapped_key(ri):
    return kari_parts(Der.parse(ri))["reks"].kids[0].kids[1].value


# ---------------------------------------------------------------------------
# P-256 points


P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _enc(x, y):
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def _is_square(v):
    return v % P == 0 or pow(v, (P - 1) // 2, P) == 1


def _sqrt(v):
    r = pow(v, (P + 1) // 4, P)  # P = 3 mod 4
    assert r * r % P == v % P
    return r


def on_p256(x, y):
    return (y * y - (x * x * x + A * x + B)) % P == 0


def valid_point():
    k = ec.generate_private_key(ec.SECP256R1())
    return k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _double(x, y, a):
    lam = (3 * x * x + a) * pow(2 * y, -1, P) % P
    x2 = (lam * lam - 2 * x) % P
    return x2, (lam * (x - x2) - y) % P


def off_curve_point():
    pt = valid_point()
    x, y = int.from_bytes(pt[1:33], "big"), int.from_bytes(pt[33:], "big")
    y = (y + 1) % P
    assert not on_p256(x, y)
    return _enc(x, y)


def order2_point_other_curve():
    """(x, 0): of order 2 on y^2 = x^3 - 3x + b' with b' = -(x^3 - 3x), a curve that is not P-256."""
    while True:
        x = secrets.randbelow(P)
        if not on_p256(x, 0):
            return _enc(x, 0)


def order3_point_other_curve():
    """A point of order 3 on y^2 = x^3 - 3x + b' (same a, another b): an inflection point.

    With the 3-division polynomial 3x^4 + 6ax^2 + 12bx - a^2 = 0 solved for b at a chosen x.
    """
    while True:
        x = secrets.randbelow(P - 2) + 1
        b2 = (A * A - 3 * pow(x, 4, P) - 6 * A * x * x) * pow(12 * x, -1, P) % P
        rhs = (x * x * x + A * x + b2) % P
        if rhs == 0 or not _is_square(rhs):
            continue
        y = _sqrt(rhs)
        if on_p256(x, y):
            continue
        x2, y2 = _double(x, y, A)
        assert x2 == x and y2 == (P - y) % P, "not of order 3"  # 2Q = -Q
        return _enc(x, y)


def twist_x():
    """An x with x^3 - 3x + b a non-residue: no P-256 point has it; it lies on the quadratic twist."""
    while True:
        x = secrets.randbelow(P)
        if not _is_square(x * x * x + A * x + B):
            return x


def twist_points():
    x = twist_x()
    return {"twist-compressed": b"\x02" + x.to_bytes(32, "big"),
            "twist-uncompressed": _enc(x, secrets.randbelow(P))}


def p384_point():
    k = ec.generate_private_key(ec.SECP384R1())
    return k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def bad_points():
    """Every point that must get 400 bad-point, by name."""
    v = valid_point()
    out = {
        "infinity-00": b"\x00",
        "infinity-04-zeros": b"\x04" + bytes(64),
        "zeros-65": bytes(65),
        "empty": b"",
        "bad-prefix-05": b"\x05" + v[1:],
        "short-64": v[:-1],
        "long-66": v + b"\x00",
        "x-equals-p": _enc(P, int.from_bytes(v[33:], "big")),
        "off-curve": off_curve_point(),
        "order-2-other-curve": order2_point_other_curve(),
        "order-3-other-curve": order3_point_other_curve(),
        "p384-point": p384_point(),
    }
    out.update(twist_points())
    return out


# ---------------------------------------------------------------------------
# raw RSA to a group certificate


def rsa_public(cert_pem_or_path):
    pem = cert_pem_or_path
    if isinstance(pem, str) and "-----BEGIN" not in pem:
        pem = harness.read(pem, "r")
    if isinstance(pem, str):
        pem = pem.encode()
    return x509.load_pem_x509_certificate(pem).public_key().public_numbers()


def rsa_raw_encrypt(pub, block):
    k = (pub.n.bit_length() + 7) // 8
    assert len(block) == k
    return pow(int.from_bytes(block, "big"), pub.e, pub.n).to_bytes(k, "big")


def pkcs1_v15_block(k, message):
    ps = bytes(secrets.randbelow(255) + 1 for _ in range(k - 3 - len(message)))
    return b"\x00\x02" + ps + b"\x00" + message


def bad_pkcs1_v15_blocks(k):
    """Encoded messages whose PKCS#1 v1.5 type 2 padding is invalid, by name."""
    good = pkcs1_v15_block(k, secrets.token_bytes(32))
    return {
        "first-byte-01": b"\x01" + good[1:],
        "type-01": b"\x00\x01" + good[2:],
        "no-zero-separator": b"\x00\x02" + bytes(secrets.randbelow(255) + 1 for _ in range(k - 2)),
        "short-padding": b"\x00\x02" + b"\x11" * 4 + b"\x00" + secrets.token_bytes(k - 7),
    }


# ---------------------------------------------------------------------------
# path G: the one function that builds its requests


def path_g_body(cert_pem, items, *, key=None, reason="attack", group=None):
    """The JSON body of a path G request: rewrap/certificate (one item) or bulk (a list of items).

    `items`: a dict (one rewrap/certificate request: recipient_info and maybe rsa_padding) or a
    list of such dicts (bulk, each given "operation": "rewrap-certificate"). `key` is the
    membership certificate's private key (a path): with `group`, the body carries the proof of
    possession groupd requires (none without them, as an attacker holding only a copy would send).
    """
    if isinstance(items, dict):
        body = dict(items)
        body["certificate"] = cert_pem
        body["reason"] = reason
        ris = [items.get("recipient_info", "")]
    else:
        body = {"certificate": cert_pem, "reason": reason,
                "requests": [dict(it, operation=it.get("operation", "rewrap-certificate")) for it in items]}
        ris = [it.get("recipient_info", "") if isinstance(it, dict) else "" for it in items]
    if key is not None and group is not None:
        body["proof"] = harness.possession_proof(group, [r if isinstance(r, str) else "" for r in ris], key)
    return body


def path_g(ep, group, cert_pem, items, *, key=None, reason="attack"):
    """POST the path G request (single when `items` is a dict, bulk when a list); the Response."""
    path = "/v1/groups/%s/%s" % (harness.quote(group), "rewrap/certificate" if isinstance(items, dict) else "bulk")
    return ep.post(path, path_g_body(cert_pem, items, key=key, reason=reason, group=group))


# ---------------------------------------------------------------------------
# certificates and keys made here


def ec_key_file(path):
    k = ec.generate_private_key(ec.SECP256R1())
    harness.write(path, k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return path


def csr_pem(key_path, cn="member", san_uri=None, hash_alg=None):
    key = serialization.load_pem_private_key(harness.read(key_path), None)
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
    if san_uri:
        b = b.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san_uri)]), False)
    return b.sign(key, hash_alg or hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


# ---------------------------------------------------------------------------
# metrics


_METRIC = re.compile(r'^(\w+)\{([^}]*)\} ([0-9.e+-]+)$')


def request_counts(ep, name):
    """{(operation, result): count} of counter `name` (groupd_requests_total, certd_requests_total)."""
    r = ep.get("/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        m = _METRIC.match(line)
        if not m or m.group(1) != name:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        out[(labels.get("operation"), labels.get("result"))] = float(m.group(3))
    return out


def by_result(counts):
    out = {}
    for (_, result), v in counts.items():
        out[result] = out.get(result, 0) + v
    return out


def delta(before, after):
    keys = set(before) | set(after)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)}


# ---------------------------------------------------------------------------
# raw HTTP over TLS


def raw_http(ep, data, *, cert=None, timeout=60):
    """Sends `data` as it is on a new TLS connection; returns the first harness.Response (or None
    when the server closed without answering)."""
    sock = socket.create_connection(("127.0.0.1", ep.port), timeout=timeout)
    with ep.context(cert).wrap_socket(sock, server_hostname="127.0.0.1") as s:
        try:
            s.sendall(data)
        except (ssl.SSLError, OSError):
            pass
        reply = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not chunk:
                break
            reply += chunk
            head, sep, body = reply.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
    if not reply:
        return None
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    if not lines[0].startswith("HTTP/1."):
        raise AssertionError("not an HTTP reply: %r" % reply[:200])
    status = int(lines[0].split()[1])
    hdrs = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if m:
        body = body[:int(m.group(1))]
    return harness.Response(status, hdrs, body)


def http_head(method, path, port, extra=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port]
    lines += list(extra)
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in extra):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
