"""`blindlist open --filter`: each outcome and its exit status, as a mail system sees them.

  0   spliced: the post comes out as ordinary S/MIME for the member (path E), read by
      openssl and, with --rsa-padding pkcs1, by NSS (cmsutil), the engine of Thunderbird;
  0   passed through: groupd refuses for good (not a member, unwrap-failed) or the message
      is not a list post: the input unchanged on standard output, but for one
      X-Blindlist-Filter header in an S/MIME post's outer header block, and one line on
      standard error;
  75  EX_TEMPFAIL, nothing on standard output, one line on standard error: groupd stopped
      (connection refused), timed out, answered 5xx or 429, or answered something malformed.

The real groupd gives the normal and permanent outcomes and the connection refused (a
second groupd on the same store, stopped). A user cannot make the real groupd answer 500,
429 or malformed JSON on demand, so those come from a tiny HTTPS server in this file that
answers each request with what the test chose; the client cannot tell it from groupd (same
TLS CA, same URL shape).

No root, no Postfix: the filter is run as Postfix's local(8), procmail or maildrop would run
it, with the message on standard input.
"""

import http.server
import json
import os
import ssl
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LIST = "list-filter@example.org"
OTHER = "other-filter@example.org"
HEADER = b"X-Blindlist-Filter: passed-through; reason="


class FakeGroupd:
    """An HTTPS server answering every request with `self.answer` = (status, content type, body),
    or never answering while `self.hang` is set."""

    def __init__(self, pki):
        self.answer = (200, "application/json", b"{}")
        self.requests = []
        self.hang = threading.Event()
        self.release = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _respond(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, body))
                if fake.hang.is_set():
                    fake.release.wait(120)
                    return
                status, ctype, payload = fake.answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _respond

            def log_message(self, *args):
                pass

        crt = pki.server("fake-groupd", "tls-ca")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(crt, pki.key("fake-groupd"))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class DeliveryFilter(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("filter", with_certd=False).start()
        p = d.pki
        cls.tmp = harness.tempdir("filter-work")
        p.make_ca("member-ca", "Integration member CA")
        # bob: an RSA certificate on the roster, and a token; eve: a certificate never added.
        cls.bob = (p.member("bob", "member-ca", "rsa2048", "bob@example.org"), p.key("bob"))
        cls.eve = (p.member("eve", "member-ca", "rsa2048", "eve@example.org"), p.key("eve"))
        d.create_group(LIST, "rsa3072")
        d.create_group(OTHER, "p256")
        cls.token = d.admin("member", "add", LIST, "bob@example.org", "--cert", cls.bob[0], "--token")["token"]
        cls.cert = {}
        for g, tag in ((LIST, "list"), (OTHER, "other")):
            cls.cert[g] = cls.f("%s.crt" % tag)
            d.public_certificate(g, cls.cert[g])
        cls.plain = harness.rfc5322("Filter plans", "The body of the filtered post.", to=LIST)
        msg = harness.write(cls.f("message.eml"), cls.plain)
        # A post as listd forwards it (GCM), one NSS can read (CBC), and one for another list.
        cls.post = cls.encrypt(msg, "post.eml", cls.cert[LIST])
        cls.cbc_post = cls.encrypt(msg, "cbc.eml", cls.cert[LIST], "--cipher", "aes-256-cbc",
                                   "--rsa-padding", "pkcs1")
        cls.other_post = cls.encrypt(msg, "other.eml", cls.cert[OTHER])
        cls.fake = FakeGroupd(p)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.d.stop()

    @classmethod
    def f(cls, name):
        return os.path.join(cls.tmp, name)

    @classmethod
    def encrypt(cls, msg, name, cert, *extra):
        out = cls.f(name)
        cls.d.bl("encrypt", "--to", cert, *extra, "-i", msg, "-o", out)
        return harness.read(out)

    # -- helpers
    def run_filter(self, message, *, server=None, token=None, cert=None, extra=()):
        """The filter as a mail system runs it: the message on standard input, output on standard output."""
        args = ["open", "--filter", "--server", server or self.d.g.url(), "--ca", self.d.pki.crt("tls-ca")]
        if token:
            args += ["--token", token]
        if cert:
            args += ["--client-cert", cert[0], "--client-key", cert[1]]
        args += ["--group", LIST, "--method", "rewrap", "--member-cert", self.bob[0], *extra]
        return self.d.bl(*args, input=message, check=False)

    def stderr_line(self, p):
        err = p.stderr.decode(errors="replace")
        self.assertEqual(err.count("\n"), 1, "expected exactly one line on standard error:\n" + err)
        return err

    def assertTempFail(self, p, *words):
        err = self.stderr_line(p)
        self.assertEqual(p.returncode, 75, "expected exit 75 (EX_TEMPFAIL), got %d: %s" % (p.returncode, err))
        self.assertEqual(p.stdout, b"", "output on a temporary failure: the mail system would deliver it")
        for w in words:
            self.assertIn(w, err)
        self.assertNotIn("internal error", err)
        return err

    def assertPassedThrough(self, p, message, reason, *words):
        err = self.stderr_line(p)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("delivering the message unchanged", err)
        for w in words:
            self.assertIn(w, err)
        out = p.stdout
        header = HEADER + reason.encode() + b"\r\n"
        self.assertEqual(out.count(header), 1, "no %r header in:\n%r" % (header, out[:600]))
        at = out.index(header)
        self.assertEqual(out[:at] + out[at + len(header):], message, "the message was changed")
        # In the outer header block, before the blank line that ends it: the body is untouched.
        self.assertEqual(at, message.index(b"\r\n\r\n") + 2)
        self.assertEqual(harness.cms_of(out), harness.cms_of(message))
        return err

    def nss_member_db(self):
        db = self.f("nss-bob")
        if os.path.isdir(db):
            return db
        os.makedirs(db)
        harness.run(["certutil", "-N", "--empty-password", "-d", "sql:" + db])
        harness.run(["certutil", "-A", "-n", "member-ca", "-t", "C,C,C", "-d", "sql:" + db,
                     "-i", self.d.pki.crt("member-ca")])
        p12 = self.f("bob.p12")
        harness.openssl("pkcs12", "-export", "-inkey", self.bob[1], "-in", self.bob[0], "-name", "bob",
                        "-passout", "pass:", "-out", p12)
        harness.run(["pk12util", "-i", p12, "-d", "sql:" + db, "-W", ""])
        return db

    def key_transport_of_bob(self, out):
        """The algorithm of the RecipientInfo `blindlist inspect` lists first (the spliced one)."""
        path = harness.write(self.f("inspect.eml"), out)
        info = json.loads(self.d.bl("inspect", "--json", "-i", path).stdout)
        algs = [r["key_algorithm"] for r in info["recipient_infos"]]
        self.assertEqual(len(algs), 1, info)
        return algs[0]

    # -- 0: spliced
    def test_spliced_post_reads_with_openssl(self):
        p = self.run_filter(self.post, token=self.token)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"")
        self.assertNotIn(HEADER, p.stdout)
        self.assertNotEqual(harness.cms_of(p.stdout), harness.cms_of(self.post), "nothing spliced")
        self.assertTrue(self.key_transport_of_bob(p.stdout).startswith("RSA-OAEP"), "default padding changed")
        inner = harness.osl_decrypt(harness.write(self.f("spliced.eml"), p.stdout), self.bob[1])
        self.assertIn(b"The body of the filtered post.", inner)

    def test_rsa_padding_pkcs1_reads_with_nss(self):
        p = self.run_filter(self.cbc_post, token=self.token, extra=("--rsa-padding", "pkcs1"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.key_transport_of_bob(p.stdout), "RSA PKCS#1 v1.5")
        der = harness.write(self.f("nss-in.der"), harness.cms_of(p.stdout))
        out = self.f("nss-out")
        harness.run(["cmsutil", "-D", "-d", "sql:" + self.nss_member_db(), "-i", der, "-o", out])
        self.assertIn(b"The body of the filtered post.", harness.read(out))
        # The same without the option is OAEP, which NSS cannot read.
        p = self.run_filter(self.cbc_post, token=self.token)
        self.assertTrue(self.key_transport_of_bob(p.stdout).startswith("RSA-OAEP"))
        der = harness.write(self.f("nss-oaep.der"), harness.cms_of(p.stdout))
        q = harness.run(["cmsutil", "-D", "-d", "sql:" + self.nss_member_db(), "-i", der, "-o", out],
                        check=False)
        self.assertNotEqual(q.returncode, 0, "NSS read RSA-OAEP: the pkcs1 check above proves nothing")

    def test_rsa_padding_is_sent_as_rsa_padding(self):
        self.fake.answer = (403, "application/json", b'{"error":"not-a-member","message":"no"}')
        self.fake.requests.clear()
        self.run_filter(self.post, server=self.fake.url(), token="blt_x", extra=("--rsa-padding", "pkcs1"))
        body = json.loads(self.fake.requests[-1][2])
        self.assertEqual(body.get("rsa_padding"), "pkcs1")
        self.run_filter(self.post, server=self.fake.url(), token="blt_x")
        self.assertNotIn("rsa_padding", json.loads(self.fake.requests[-1][2]))

    # -- 0: passed through
    def test_not_a_member_passes_through(self):
        p = self.run_filter(self.post, cert=self.eve)
        self.assertPassedThrough(p, self.post, "not-a-member", "not a member")

    def test_unwrap_failed_passes_through(self):
        p = self.run_filter(self.other_post, token=self.token)
        self.assertPassedThrough(p, self.other_post, "unwrap-failed", "cannot unwrap")

    def test_any_other_4xx_passes_through(self):
        for status, code in ((400, "malformed-request"), (404, "unknown-group"), (401, "bad-token")):
            with self.subTest(status=status):
                self.fake.answer = (status, "application/json",
                                    json.dumps({"error": code, "message": "refused"}).encode())
                p = self.run_filter(self.post, server=self.fake.url(), token="blt_x")
                self.assertPassedThrough(p, self.post, code)

    def test_plain_mail_passes_through_byte_for_byte(self):
        p = self.run_filter(self.plain, token=self.token)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, self.plain, "plain mail must come out exactly as it came in")
        self.stderr_line(p)

    # -- 75: try again later
    def test_groupd_stopped_is_tempfail(self):
        daemon, endpoint = self.d.extra_groupd("filter-stopped", self.d.limits)
        p = self.run_filter(self.post, server=endpoint.url(), token=self.token)
        self.assertEqual(p.returncode, 0, p.stderr)  # the same command works while it runs
        self.d._extra.remove(daemon)
        self.assertEqual(daemon.stop(), 0)
        p = self.run_filter(self.post, server=endpoint.url(), token=self.token)
        self.assertTempFail(p, "groupd unavailable", "cannot connect", "exit 75")

    def test_5xx_and_429_are_tempfail(self):
        cases = [(500, "application/json", b'{"error":"internal","message":"the unwrap failed on the server"}'),
                 (503, "application/json", b'{"error":"store-unavailable","message":"retry later"}'),
                 (502, "text/html", b"<html>Bad Gateway</html>"),
                 (429, "application/json", b'{"error":"rate-limited","message":"too many requests"}')]
        for status, ctype, body in cases:
            with self.subTest(status=status):
                self.fake.answer = (status, ctype, body)
                p = self.run_filter(self.post, server=self.fake.url(), token="blt_x")
                self.assertTempFail(p, "groupd unavailable", "(%d " % status)

    def test_malformed_answer_is_tempfail_not_an_exception(self):
        cases = [b"this is not JSON", b"[1, 2]", b"5", b"{}", b'{"key_version": 1}',
                 b'{"recipient_info": 5}', b'{"recipient_info": null}', b'{"recipient_info": "!!not base64!!"}',
                 b'{"recipient_info": "AAAA"}']
        for body in cases:
            with self.subTest(body=body):
                self.fake.answer = (200, "application/json", body)
                p = self.run_filter(self.post, server=self.fake.url(), token="blt_x")
                self.assertTempFail(p, "malformed answer from groupd")

    def test_no_answer_is_tempfail(self):
        # The client gives up after its 15 s timeout.
        self.fake.hang.set()
        try:
            p = self.run_filter(self.post, server=self.fake.url(), token="blt_x")
        finally:
            self.fake.hang.clear()
            self.fake.release.set()
        self.assertTempFail(p, "groupd unavailable", "waiting for")

    def test_without_filter_a_malformed_answer_is_an_error_value(self):
        self.fake.answer = (200, "application/json", b'{"recipient_info": 5}')
        args = ["open", "--server", self.fake.url(), "--ca", self.d.pki.crt("tls-ca"), "--token", "blt_x",
                "--group", LIST, "--method", "rewrap", "--member-cert", self.bob[0], "--splice-only"]
        p = self.d.bl(*args, input=self.post, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout, b"")
        err = self.stderr_line(p)
        self.assertIn("malformed answer from groupd", err)
        self.assertNotIn("internal error", err)


if __name__ == "__main__":
    harness.main()
