#!/usr/bin/env python3
"""Attack classes around issue 11's items: membership certificates and certd's input.

Usage: certd_classes_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

One deployment (harness.Deployment, SQLite): groupd and certd, a P-256 group and
another group, members with tokens.

  MembershipCertificates  path G (single and bulk) with a certificate that is expired,
                          not yet valid, revoked, issued by another CA (also one that
                          copies the membership CA's name and key identifier), for
                          another group, the membership CA's own certificate, the
                          group's public certificate, a member's registered certificate,
                          or signed by the real membership CA but never recorded by
                          certd: each its 403 code, audited with the serial, counted.
  CertdMalformedInput     every certd endpoint: non-object and nested JSON, wrong field
                          types, PEM that is no CSR or a CSR that must be refused,
                          oversize bodies (declared and chunked), long headers, unknown
                          methods and paths, malformed HTTP. Documented status and JSON
                          error, no 5xx, counted in /metrics, certd still healthy.
"""

import datetime
import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_lib as al  # noqa: E402
from attack_lib import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

G = "atk-g@example.org"
OTHER = "atk-g-other@example.org"

D = None
W = {}


def setUpModule():
    global D
    D = harness.Deployment("attack-certd").start()
    W["tmp"] = harness.tempdir("attack-certd-work")
    D.create_group(G, "p256")
    D.create_group(OTHER, "p256")
    W["tok"] = {(G, "alice"): D.admin("member", "add", G, "alice@example.org", "--token")["token"],
                (G, "dave"): D.admin("member", "add", G, "dave@example.org", "--token")["token"],
                (OTHER, "carol"): D.admin("member", "add", OTHER, "carol@example.org", "--token")["token"]}
    W["cert"] = f("g.crt")
    D.public_certificate(G, W["cert"])
    entity = harness.write(f("entity.txt"), harness.entity("Path G, anonymously."))
    W["post"] = harness.osl_encrypt(entity, f("g.smime"), W["cert"])
    W["ri"] = harness.recipient_infos(harness.cms_of(W["post"]))[0]


def f(name):
    return os.path.join(W["tmp"], name)


def issue(group, who):
    """A membership certificate from certd: (PEM, key path, serial)."""
    key = al.ec_key_file(f("m-%s.key" % secrets.token_hex(4)))
    r = D.c.post("/v1/groups/%s/certificates" % quote(group), {"csr": al.csr_pem(key)}, token=W["tok"][(group, who)])
    assert r.status == 201, r
    return r.json["certificate"], key, r.json["serial"]


def ca_signed(name, *, start, end, san, ca_crt=None, ca_key=None):
    """A certificate signed by the membership CA (or another), never recorded by certd: (PEM, key)."""
    crt = D.pki.dated_certificate(name, ca_crt=ca_crt or D.membership_ca_crt,
                                  ca_key=ca_key or D.membership_ca_plain_key(), start=start, end=end, san=san)
    return harness.read(crt, "r"), D.pki.key(name)


def lookalike_ca_certificate(san):
    """A certificate from a CA that copies the membership CA's subject and key identifier."""
    real = x509.load_pem_x509_certificate(harness.read(D.membership_ca_crt))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ski = real.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "member-x")]))
            .issuer_name(real.subject).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san)]), False)
            .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), False)
            .add_extension(x509.KeyUsage(False, False, False, False, True, False, False, False, False), True)
            .sign(ca_key, hashes.SHA256()))
    key = harness.write(f("lookalike.key"), leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return leaf.public_bytes(serialization.Encoding.PEM).decode(), key


class Base(harness.TestCase):
    def assertHealthy(self):
        for ep in (D.g, D.c):
            r = ep.get("/healthz")
            self.assertEqual(r.status, 200, "not healthy after the attack: %r" % r)
        for dm in D.daemons():
            self.assertIsNone(dm.proc.poll(), "%s exited" % dm.name)


class MembershipCertificates(Base):
    def refused_on_path_g(self, pem, key, status, code):
        """The certificate refused on path G, alone and in a bulk request; returns the two answers."""
        single = al.path_g(D.g, G, pem, {"recipient_info": b64(W["ri"])}, key=key)
        self.assertRefused(single, status, code)
        bulk = al.path_g(D.g, G, pem, [{"recipient_info": b64(W["ri"])}] * 2, key=key)
        self.assertRefused(bulk, status, code)
        return single, bulk

    def test_genuine_certificate_reads(self):
        pem, key, _ = issue(G, "alice")
        r = al.path_g(D.g, G, pem, {"recipient_info": b64(W["ri"])}, key=key)
        self.assertEqual(r.status, 200, r)

    def test_refused_certificates(self):
        uri = "URI:urn:blindlist:group:" + G
        D.pki.make_ca("rogue-ca", "Rogue CA")
        cases = {}
        cases["expired"] = ca_signed("expired", start="20200101000000Z", end="20210101000000Z", san=uri) + \
            (403, "expired-certificate")
        cases["not-yet-valid"] = ca_signed("future", start="20990101000000Z", end="20991231000000Z", san=uri) + \
            (403, "expired-certificate")
        cases["foreign-ca"] = ca_signed("foreign", start="20200101000000Z", end="20990101000000Z", san=uri,
                                        ca_crt=D.pki.crt("rogue-ca"), ca_key=D.pki.key("rogue-ca")) + \
            (403, "foreign-certificate")
        cases["lookalike-ca"] = lookalike_ca_certificate("urn:blindlist:group:" + G) + (403, "foreign-certificate")
        other_pem, other_key, _ = issue(OTHER, "carol")
        cases["other-group"] = (other_pem, other_key, 403, "wrong-group")
        cases["membership-ca-itself"] = (harness.read(D.membership_ca_crt, "r"), None, 403, "wrong-group")
        cases["group-certificate"] = (harness.read(W["cert"], "r"), None, 403, "foreign-certificate")
        cases["tls-server-certificate"] = (harness.read(D.pki.crt("groupd-%s" % D.name), "r"), None, 403,
                                           "foreign-certificate")
        # Revoked: dave's certificate, then dave removed.
        pem, key, serial = issue(G, "dave")
        self.assertEqual(al.path_g(D.g, G, pem, {"recipient_info": b64(W["ri"])}, key=key).status, 200)
        D.admin("member", "remove", G, "dave@example.org")
        cases["revoked"] = (pem, key, 403, "revoked-certificate")
        # Signed by the real membership CA, within its validity, bound to the group, but never issued by certd.
        cases["unrecorded"] = ca_signed("unrecorded", start="20200101000000Z", end="20990101000000Z", san=uri) + \
            (403, "unknown-certificate")
        before = al.request_counts(D.g, "groupd_requests_total")
        expected = {}
        for name, (pem, key, status, code) in sorted(cases.items()):
            with self.subTest(certificate=name):
                self.refused_on_path_g(pem, key, status, code)
            for op in ("rewrap-certificate", "bulk"):
                expected[(op, code)] = expected.get((op, code), 0) + 1
        got = al.delta(before, al.request_counts(D.g, "groupd_requests_total"))
        for key_, n in sorted(expected.items()):
            with self.subTest(metric=key_):
                self.assertEqual(got.get(key_, 0), n, "groupd_requests_total%r: %s" % (key_, got))
        # Audited under the certificate's serial, never a person.
        records = D.audit(G, limit=10000)
        self.assertAudited(D, G, "rewrap-certificate", "revoked-certificate", caller="cert:" + serial, records=records)
        self.assertAudited(D, G, "rewrap-certificate", "expired-certificate", records=records)
        self.assertAudited(D, G, "bulk", "foreign-certificate", records=records)
        self.assertHealthy()


# ---------------------------------------------------------------------------


class CertdMalformedInput(Base):
    def setUp(self):
        self.expected = {}
        self.before = al.by_result(al.request_counts(D.c, "certd_requests_total"))

    def tearDown(self):
        after = al.by_result(al.request_counts(D.c, "certd_requests_total"))
        wrong = []
        for code, n in sorted(self.expected.items()):
            got = after.get(code, 0) - self.before.get(code, 0)
            if got != n:
                wrong.append("%s: counted %s, expected %s" % (code, got, n))
        self.assertFalse(wrong, "certd's /metrics does not count every refusal: " + "; ".join(wrong))
        self.assertHealthy()

    def refused(self, r, status, code):
        self.assertRefused(r, status, code)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)
        self.expected[code] = self.expected.get(code, 0) + 1

    def issue_path(self, g=G):
        return "/v1/groups/%s/certificates" % quote(g)

    def post(self, body, token=True, **kw):
        if token:
            kw["token"] = W["tok"][(G, "alice")]
        return D.c.post(self.issue_path(), body, **kw)

    def test_json_that_is_not_an_object(self):
        for body in (b"[]", b'"csr"', b"42", b"null", b"", b"{", b'{"csr":}', b"\xff", b'{"csr": "\xc3\x28"}',
                     b"{}{}"):
            with self.subTest(body=body):
                self.refused(self.post(body, headers={"Content-Type": "application/json"}), 400, "malformed-json")
        for kind, body in (("array", al_deep(30000)), ("object", al_deep(6000, '{"a":', "}")),
                           ("field", '{"csr": %s}' % al_deep(30000))):
            with self.subTest(nested=kind):
                r = self.post(body, headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, r)
                self.assertIn(r.json.get("error"), ("malformed-json", "malformed-request"))
                self.refused(r, 400, r.json["error"])

    def test_wrong_field_types(self):
        for body in ({}, {"csr": 5}, {"csr": None}, {"csr": ["x"]}, {"csr": {"pem": "x"}}, {"generate": "yes"},
                     {"generate": 1}, {"generate": False}, {"generate": True, "passphrase": 123456789},
                     {"generate": True, "passphrase": "long enough", "key_type": 5},
                     {"generate": True, "passphrase": ["long enough"]}):
            with self.subTest(body=body):
                self.refused(self.post(body), 400, "malformed-request")
        with self.subTest(body="generate, unknown key type"):
            self.refused(self.post({"generate": True, "passphrase": "long enough", "key_type": "ed25519"}), 400,
                         "unsupported-key")
        with self.subTest(body="generate, short passphrase"):
            self.refused(self.post({"generate": True, "passphrase": "short"}), 400, "weak-passphrase")

    def csr_cases(self):
        key = al.ec_key_file(f("csr-test.key"))
        good = al.csr_pem(key)
        lines = good.strip().splitlines()
        der = x509.load_pem_x509_csr(good.encode()).public_bytes(serialization.Encoding.DER)
        bad_sig = der[:-1] + bytes([der[-1] ^ 1])

        def pem(d):
            return "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n" % b64(d)

        def signed(k, h=hashes.SHA256()):
            return (x509.CertificateSigningRequestBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m")]))
                    .sign(k, h).public_bytes(serialization.Encoding.PEM).decode())

        return {
            "empty": ("", "bad-csr"),
            "words": ("not a csr", "bad-csr"),
            "certificate": (harness.read(W["cert"], "r"), "bad-csr"),
            "private-key": (harness.read(key, "r"), "bad-csr"),
            "truncated": (good[:len(good) // 2], "bad-csr"),
            "no-end-line": ("\n".join(lines[:-1]) + "\n", "bad-csr"),
            "bad-base64": ("-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n",
                           "bad-csr"),
            "der-truncated": (pem(der[:-10]), "bad-csr"),
            "der-trailing-junk": (pem(der + b"junk"), "bad-csr"),
            "der-huge-length": (pem(b"\x30\x84\xff\xff\xff\xff" + der[4:]), "bad-csr"),
            "bad-signature": (pem(bad_sig), "bad-signature"),
            "ed25519": (signed(ed25519.Ed25519PrivateKey.generate(), None), "unsupported-key"),
            "p521": (signed(ec.generate_private_key(ec.SECP521R1())), "unsupported-key"),
            "secp256k1": (signed(ec.generate_private_key(ec.SECP256K1())), "unsupported-key"),
            "rsa1024": (signed(rsa.generate_private_key(65537, 1024)), "unsupported-key"),
            "forged-group": (al.csr_pem(key, san_uri="urn:blindlist:group:" + OTHER), "forged-group"),
        }

    def test_csrs_that_must_be_refused(self):
        for name, (pem, code) in sorted(self.csr_cases().items()):
            with self.subTest(csr=name):
                self.refused(self.post({"csr": pem}), 400, code)
        # Nothing was issued by any of them.
        issued = [r for r in D.audit(G, limit=10000) if r["daemon"] == "certd" and r["operation"] == "issue"
                  and r["result"] == "ok" and r["caller"] == "alice@example.org"]
        self.assertFalse(issued, "certd issued a certificate for a refused CSR: %r" % issued)

    def every_endpoint(self):
        return [("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/v1/ca"), ("GET", "/v1/crl"),
                ("POST", self.issue_path())]

    def test_oversize_bodies(self):
        tok = W["tok"][(G, "alice")]
        for method, path in self.every_endpoint():
            with self.subTest(method=method, path=path, kind="declared"):
                self.refused(D.c.oversized(method, path, 10 * 1024 * 1024, token=tok), 413, "body-too-large")
            with self.subTest(method=method, path=path, kind="chunked"):
                chunk = b'{"csr": "' + b"A" * 16000
                data = al.http_head(method, path, D.c.port, ["Transfer-Encoding: chunked",
                                                            "Authorization: Bearer " + tok])
                data += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
                r = al.raw_http(D.c, data)
                self.assertIsNotNone(r, "no answer")
                self.refused(r, 413, "body-too-large")

    def test_long_headers(self):
        port = D.c.port
        for name, data in {"long-header": al.http_head("GET", "/healthz", port, ["X-Long: " + "a" * 20000]),
                           "many-headers": al.http_head("GET", "/healthz", port, ["X-H%d: v" % i for i in range(2000)]),
                           "long-path": al.http_head("GET", "/v1/" + "a" * 20000, port),
                           "long-token": al.http_head("POST", self.issue_path(), port,
                                                      ["Authorization: Bearer blt_" + "0" * 20000], b"{}")}.items():
            with self.subTest(case=name):
                r = al.raw_http(D.c, data)
                self.assertIsNotNone(r, "no answer")
                self.refused(r, 431, "headers-too-large")

    def test_methods_and_paths(self):
        tok = W["tok"][(G, "alice")]
        for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"):
            with self.subTest(method=method):
                self.refused(D.c.request(method, self.issue_path(), token=tok), 405, "method-not-allowed")
        for method, path in (("POST", "/v1/crl"), ("DELETE", "/v1/ca"), ("FOO", "/healthz/x")):
            with self.subTest(method=method, path=path):
                r = D.c.request(method, path, b"{}" if method == "POST" else None, token=tok)
                self.assertIn(r.status, (404, 405), r)
                self.refused(r, r.status, r.json["error"])
        for path in ("/", "/v1/groups", "/v1/groups/%s" % quote(G), "/v1/groups/%s/certificates/x" % quote(G),
                     "/v2/crl"):
            with self.subTest(path=path):
                self.refused(D.c.post(path, {}, token=tok), 404, "not-found")
        with self.subTest(path="unknown group"):
            self.refused(D.c.post(self.issue_path("nobody@example.org"), {"csr": "x"}, token=tok), 404,
                         "unknown-group")

    def test_malformed_http(self):
        port = D.c.port
        path = self.issue_path()
        cases = {
            "cl-and-te": (al.http_head("POST", path, port, ["Content-Length: 4", "Transfer-Encoding: chunked"])
                          + b"0\r\n\r\n", "bad-request"),
            "two-lengths": (al.http_head("POST", path, port, ["Content-Length: 2", "Content-Length: 3"]) + b"{}",
                            "bad-request"),
            "length-not-a-number": (al.http_head("POST", path, port, ["Content-Length: 1e3"]), "bad-request"),
            "nul-in-header": (al.http_head("GET", "/healthz", port, ["X-A: a\x00b"]), "bad-request"),
            "http09": (b"GET /healthz\r\n\r\n", "bad-request"),
            "percent-zz": (al.http_head("GET", "/v1/%zz", port), "bad-target"),
            "percent-00": (al.http_head("GET", "/v1/crl%00", port), "bad-target"),
            "absolute-form": (al.http_head("GET", "https://127.0.0.1/v1/crl", port), "bad-target"),
        }
        for name, (data, code) in cases.items():
            with self.subTest(case=name):
                r = al.raw_http(D.c, data)
                self.assertIsNotNone(r, "no answer")
                self.refused(r, 400, code)


def al_deep(n, open_="[", close="]"):
    return open_ * n + close * n


if __name__ == "__main__":
    harness.main()
