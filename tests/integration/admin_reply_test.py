#!/usr/bin/env python3
"""`blindlist admin` reads every groupd reply field by field.

Usage: admin_reply_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A user cannot make the real groupd leave a field out of its reply, so the replies here come from
a tiny HTTPS server that answers each route with the JSON the test chose (the client cannot tell
it from groupd: same TLS CA, same URL shape). For each admin command that prints or writes what
groupd answered:

  - a well-formed reply gives exactly the text (or file) the command has always given;
  - the same reply with any one field the command reads left out, or of another type, or a reply
    that is no JSON object at all, gives exit 1, one line on standard error naming that field
    and the route (`groupd's reply to GET /v1/groups/NAME has no field "members" ...`), nothing
    on standard output, no file written, and never "internal error".
"""

import base64
import copy
import http.server
import json
import os
import ssl
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

GROUP = "reply@example.org"
MEMBER = "m@example.org"
G = "/v1/groups/" + GROUP
P12 = b"\x30\x82pkcs12 bytes\x00\xff"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class FakeGroupd:
    """An HTTPS server answering (METHOD, PATH without its query) from `self.routes`."""

    def __init__(self, pki):
        self.routes = {}
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _respond(self):
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                path = urllib.parse.unquote(self.path.split("?", 1)[0])
                answer = fake.routes.get((self.command, path))
                status, payload = (200, answer) if answer is not None else (404, b'{"error":"no-route"}')
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _respond

            def log_message(self, *args):
                pass

        crt = pki.server("fake-groupd", "tls-ca")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(crt, pki.key("fake-groupd"))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "https://127.0.0.1:%d" % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# Each command: its arguments (OUT: the -o file), its route, a well-formed reply, what it prints
# on standard output (or writes to OUT: `file`), and the fields it may do without ("optional":
# absent is fine, another type is not; "unread": never looked at).
CASES = {
    "group show": dict(
        args=["group", "show", GROUP], route=("GET", G),
        reply={"name": GROUP, "members": 2, "exploder": None, "content_cipher": "any",
               "keys": [{"version": 1, "key_type": "rsa3072", "state": "retired", "serial": "0A"},
                        {"version": 2, "key_type": "p256", "state": "active"}],
               "secrets": [{"version": 1, "key_id": "ab01"}]},
        stdout="group:    %s\nmembers:  2\nexploder: (none)\nkeys:\n  v1  rsa3072  retired  serial 0A\n"
               "  v2  p256  active\nsecrets:\n  v1  id ab01\n" % GROUP,
        optional={"exploder", "serial"}, unread={"content_cipher"}),
    "group list": dict(
        args=["group", "list"], route=("GET", "/v1/groups"),
        reply={"groups": [{"name": "a@example.org", "key_type": "p256", "key_version": 3, "members": 5},
                          {"name": "b@example.org", "key_type": None, "key_version": None}]},
        stdout="a@example.org  p256 v3  5 members\nb@example.org  (no current key)  0 members\n",
        optional={"members", "key_version"}),
    "member list": dict(
        args=["member", "list", GROUP], route=("GET", G + "/members"),
        reply={"group": GROUP, "members": [
            {"address": MEMBER, "has_token": True, "certificate_fingerprint": "0123456789abcdef0123"},
            {"address": "n@example.org", "has_token": False, "certificate_fingerprint": ""}]},
        stdout="%s  token  cert 0123456789abcdef\nn@example.org\n" % MEMBER, unread={"group"}),
    "audit": dict(
        args=["audit", GROUP, "--limit", "1"], route=("GET", G + "/audit"),
        reply={"audit": [{"id": 7, "time": 1700000000, "operation": "unwrap", "caller": MEMBER,
                          "key_version": 1, "result": "ok", "reason": "why"}],
               "next_before": 7},
        stdout="#7  1700000000  unwrap  %s  v1  ok  why\n(more: --before 7)\n" % MEMBER,
        optional={"id"}, unread={"next_before"}),
    "audit of a per-member re-wrap": dict(
        args=["audit", GROUP, "--limit", "1"], route=("GET", G + "/audit"),
        reply={"audit": [{"id": 8, "time": 1700000001, "operation": "rewrap-members",
                          "caller": "exploder", "key_version": 1, "result": "ok", "reason": "",
                          "members": {"ok": [MEMBER, "o@example.org"], "not-member": ["x@example.org"]}}],
               "next_before": None},
        stdout="#8  1700000001  rewrap-members  exploder  v1  ok    not-member: x@example.org; "
               "ok: %s, o@example.org\n" % MEMBER,
        optional={"id", "members", "ok", "not-member"}, unread={"next_before"}),
    "audit prune": dict(
        args=["audit", "prune", "--before", "2026-01-31"], route=("POST", "/v1/audit/prune"),
        reply={"pruned": 3, "before": 1769817600},
        stdout="pruned 3 audit records older than 2026-01-31\n", unread={"before"}),
    "member new-token": dict(
        args=["member", "new-token", GROUP, MEMBER], route=("POST", G + "/members/%s/token" % MEMBER),
        reply={"token": "blt_secret"},
        stdout="token for %s (shown once, keep it secret; the old one no longer works): blt_secret\n"
               % MEMBER),
    "member set-cert": dict(
        args=["member", "set-cert", GROUP, MEMBER, "--cert", "CERT"],
        route=("PUT", G + "/members/%s/certificate" % MEMBER),
        reply={"address": MEMBER, "certificate_fingerprint": "fedcba98765432100000"},
        stdout="registered certificate fedcba9876543210... for %s (its membership certificates "
               "and token are unchanged)\n" % MEMBER, unread={"address"}),
    "exploder set": dict(
        args=["exploder", "set", GROUP, "--cert", "CERT"], route=("PUT", G + "/exploder"),
        reply={"exploder": "00ff"}, stdout="exploder set: 00ff\n"),
    "group create": dict(
        args=["group", "create", GROUP, "-o", "OUT"], route=("POST", "/v1/groups"),
        reply={"certificate": PEM, "key_version": 1}, file=PEM.encode()),
    "group rotate": dict(
        args=["group", "rotate", GROUP, "-o", "OUT"], route=("POST", G + "/rotate"),
        reply={"certificate": PEM, "key_version": 2}, file=PEM.encode()),
    "group rotate --secret": dict(
        args=["group", "rotate", GROUP, "--secret"], route=("POST", G + "/rotate"),
        reply={"secret_version": 4}, stdout=""),
    "group export-key": dict(
        args=["group", "export-key", GROUP, "--passphrase-file", "PASS", "-o", "OUT"],
        route=("POST", G + "/export"),
        reply={"pkcs12": base64.b64encode(P12).decode(), "key_version": 2}, file=P12),
}

WRONG = {str: 5, int: "5", bool: "true", list: {}, dict: [], type(None): 5}


def fields(value, path=()):
    """(path, value) of every field of every object in `value` (the first element of each array)."""
    if isinstance(value, dict):
        for name, v in value.items():
            yield path + (name,), v
            yield from fields(v, path + (name,))
    elif isinstance(value, list) and value:
        yield from fields(value[0], path + (0,))


def changed(reply, path, new=None, remove=False):
    out = copy.deepcopy(reply)
    target = out
    for step in path[:-1]:
        target = target[step]
    if remove:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return out


class AdminReplies(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.tempdir("admin-reply")
        cls.pki = harness.Pki(os.path.join(cls.tmp, "pki"))
        cls.pki.make_ca("tls-ca", "Admin reply TLS CA")
        cls.fake = FakeGroupd(cls.pki)
        cls.cert = harness.write(os.path.join(cls.tmp, "member.pem"), PEM.encode())
        cls.passphrase = harness.write(os.path.join(cls.tmp, "pass"), b"a passphrase\n")

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def run_case(self, case, reply_bytes):
        out = os.path.join(self.tmp, "out.file")
        if os.path.exists(out):
            os.unlink(out)
        self.fake.routes = {case["route"]: reply_bytes}
        args = [{"OUT": out, "CERT": self.cert, "PASS": self.passphrase}.get(a, a) for a in case["args"]]
        p = harness.run([harness.blindlist_bin(), "admin", "--server", self.fake.url(),
                         "--ca", self.pki.crt("tls-ca"), "--token", "blt_admin", *args], check=False)
        return p, out

    def test_a_well_formed_reply_prints_what_it_always_printed(self):
        for name, case in CASES.items():
            with self.subTest(name):
                p, out = self.run_case(case, json.dumps(case["reply"]).encode())
                self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
                if "file" in case:
                    self.assertEqual(p.stdout, b"")
                    self.assertEqual(harness.read(out), case["file"])
                else:
                    self.assertEqual(p.stdout.decode(), case["stdout"])

    def assertBadReply(self, case, reply, fields, why):
        """Exit 1, one line naming one of `fields` and the route, nothing printed or written."""
        p, out = self.run_case(case, json.dumps(reply).encode())
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 1, "%s: %s" % (why, err))
        self.assertEqual(p.stdout, b"", why)
        self.assertFalse(os.path.exists(out), "%s: a file was written" % why)
        self.assertEqual(err.count("\n"), 1, "%s: not one line:\n%s" % (why, err))
        self.assertIn("groupd's reply to %s %s has no field " % case["route"], err, why)
        self.assertTrue(any('has no field "%s" of the type this command reads' % f in err for f in fields),
                        "%s: names none of %s: %s" % (why, fields, err))
        self.assertNotIn("internal error", err, why)

    def test_a_field_left_out_or_of_another_type_is_one_bad_reply_line_naming_it(self):
        checked = 0
        for name, case in CASES.items():
            reply = case["reply"]
            for path, value in fields(reply):
                field = path[-1]
                if field in case.get("unread", ()):
                    continue
                with self.subTest(name, path=path):
                    if field not in case.get("optional", ()):
                        self.assertBadReply(case, changed(reply, path, remove=True), [field],
                                            "%s without %s" % (name, path))
                    wrong = WRONG[type(value)]
                    self.assertBadReply(case, changed(reply, path, wrong), [field],
                                        "%s with %s = %r" % (name, path, wrong))
                    checked += 1
        self.assertGreaterEqual(checked, 39)  # every field of every reply above

    def test_a_reply_that_is_no_object_names_a_field_it_lacks(self):
        for name, case in CASES.items():
            required = [f for f in case["reply"]
                        if f not in case.get("unread", ()) and f not in case.get("optional", ())]
            for reply in ([], [case["reply"]], "text", None, 5):
                with self.subTest(name, reply=reply):
                    self.assertBadReply(case, reply, required, "%s answered %r" % (name, reply))

if __name__ == "__main__":
    harness.main()
