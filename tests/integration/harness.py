"""Shared helpers for blindlist's integration tests (real daemons on loopback).

Standard library only, plus the `blindlist`, `blindlist-groupd` and
`blindlist-certd` binaries and the `openssl` CLI.

What it provides:
  Pki          a throwaway PKI made with the openssl CLI: a TLS CA and server
               certificates for 127.0.0.1 (SAN IP), a deployment CA that signs
               group certificates, member certificates (RSA and EC), an exploder
               certificate, foreign CAs, and certificates with chosen validity.
  Deployment   configs (TOML) for groupd and certd in a temporary directory,
               `listen = "127.0.0.1:0"` and --port-file, certd's membership CA
               (`init-ca`, passphrase from BLINDLIST_CA_PASSPHRASE), an admin
               token (`admin-token`), both daemons started and waited for
               (/healthz), HTTPS calls (bearer token or mTLS), `blindlist` CLI
               calls, audit queries, and a clean stop (SIGTERM, exit status 0).
  der helpers  just enough DER to take the RecipientInfos out of a CMS message,
               splice one in, and read a KEKRecipientInfo's key identifier.
  main()       runs a test module; on failure prints every daemon's JSON log.

The binaries come from the command line (`script.py BLINDLIST GROUPD CERTD`,
as ctest passes them) or from the environment (BLINDLIST_BIN, BLINDLIST_GROUPD,
BLINDLIST_CERTD). The store is SQLite unless BLINDLIST_TEST_STORE=postgres, in
which case the PostgreSQL test server's URL is read from BLINDLIST_PG_URL_FILE
(the ctest fixture `postgres` writes it) and each Deployment gets a database
of its own (created with psql when available).
"""

import base64
import email
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

# ---------------------------------------------------------------------------
# configuration

BINARIES = {}
_DEPLOYMENTS = []  # every Deployment made in this process (for logs and clean-up)
_TMP_DIRS = []

HEALTH_TIMEOUT = 120  # seconds: the machine is loaded; never rely on tight timing
COMMAND_TIMEOUT = 300


def peers_required():
    """True when a missing peer must fail the test (scripts/test, and so CI, sets it)."""
    return os.environ.get("BLINDLIST_REQUIRE_PEERS") == "1"


def peer_missing(why):
    """Ends a test or class set-up whose peer is missing: a failure when peers are required
    (BLINDLIST_REQUIRE_PEERS=1), a skip otherwise (a developer's machine)."""
    if peers_required():
        raise AssertionError("a required peer is missing (BLINDLIST_REQUIRE_PEERS=1): " + why)
    raise unittest.SkipTest(why)


def _binary(name, env_name):
    path = BINARIES.get(name) or os.environ.get(env_name)
    if not path:
        peer_missing("no path for %s: pass it as an argument or set %s" % (name, env_name))
    return path


def blindlist_bin():
    return _binary("blindlist", "BLINDLIST_BIN")


def groupd_bin():
    return _binary("groupd", "BLINDLIST_GROUPD")


def certd_bin():
    return _binary("certd", "BLINDLIST_CERTD")


def store_kind():
    return os.environ.get("BLINDLIST_TEST_STORE", "sqlite")


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix="blindlist-integ-%s-" % prefix)
    _TMP_DIRS.append(d)
    return d


# ---------------------------------------------------------------------------
# running commands


class CommandFailed(AssertionError):
    pass


def run(cmd, *, input=None, env=None, check=True, timeout=COMMAND_TIMEOUT, cwd=None):
    """Runs cmd (a list); returns the CompletedProcess (bytes). check: fail with stderr."""
    full_env = dict(os.environ)
    full_env.pop("BLINDLIST_TOKEN", None)
    if env:
        full_env.update(env)
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run([str(c) for c in cmd], input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=full_env, timeout=timeout, cwd=cwd)
    if check and p.returncode != 0:
        raise CommandFailed("command failed (exit %d): %s\n--- stderr:\n%s" %
                            (p.returncode, " ".join(str(c) for c in cmd),
                             p.stderr.decode(errors="replace")[-3000:]))
    return p


def openssl(*args, **kw):
    return run(["openssl"] + list(args), **kw)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------------------
# PKI with the openssl CLI


class Pki:
    """Keys and certificates under `dir`; each `name` gives name.key and name.crt."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)

    def path(self, name, ext):
        return os.path.join(self.dir, "%s.%s" % (name, ext))

    def key(self, name):
        return self.path(name, "key")

    def crt(self, name):
        return self.path(name, "crt")

    def gen_key(self, name, alg):
        """alg: ec (P-256), p384, rsa2048, rsa3072, ed25519."""
        out = self.key(name)
        if alg == "ec":
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", out)
        elif alg == "p384":
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", out)
        elif alg.startswith("rsa"):
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%s" % alg[3:], "-out", out)
        elif alg == "ed25519":
            openssl("genpkey", "-algorithm", "ed25519", "-out", out)
        else:
            raise ValueError(alg)
        return out

    def make_ca(self, name, cn):
        self.gen_key(name, "ec")
        openssl("req", "-x509", "-new", "-key", self.key(name), "-out", self.crt(name), "-days", "30",
                "-subj", "/O=blindlist integration/CN=%s" % cn,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-addext", "subjectKeyIdentifier=hash")
        return self.crt(name)

    def csr(self, name, alg, cn="member", san=None, key=None):
        """A CSR (PEM path) for a new key (or `key`)."""
        if key is None:
            key = self.gen_key(name, alg)
        out = self.path(name, "csr")
        args = ["req", "-new", "-key", key, "-subj", "/CN=%s" % cn, "-out", out]
        if san:
            args += ["-addext", "subjectAltName=%s" % san]
        openssl(*args)
        return out

    def issue(self, name, ca, alg, cn, *, key_usage, ext_key_usage=None, san=None, days=30,
              ca_key=None, ca_crt=None, passin=None):
        """Key `name` (alg) and a certificate for it signed by CA `ca` (or ca_key/ca_crt)."""
        self.csr(name, alg, cn)
        lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,%s" % key_usage,
                 "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        if ext_key_usage:
            lines.append("extendedKeyUsage=%s" % ext_key_usage)
        if san:
            lines.append("subjectAltName=%s" % san)
        ext = write(self.path(name, "ext"), "\n".join(lines) + "\n")
        serial = "0x%02x%s" % (0x10 + secrets.randbelow(0x60), secrets.token_hex(9))
        args = ["x509", "-req", "-in", self.path(name, "csr"), "-CA", ca_crt or self.crt(ca),
                "-CAkey", ca_key or self.key(ca), "-set_serial", serial, "-days", str(days),
                "-extfile", ext, "-out", self.crt(name)]
        if passin:
            args += ["-passin", passin]
        openssl(*args)
        return self.crt(name)

    def server(self, name, ca, host="127.0.0.1"):
        san = "IP:127.0.0.1,DNS:localhost" if host == "127.0.0.1" else "IP:" + host
        return self.issue(name, ca, "ec", host, key_usage="digitalSignature",
                          ext_key_usage="serverAuth", san=san)

    def member(self, name, ca, alg, address):
        """A member's S/MIME certificate, also usable as a TLS client certificate."""
        ku = "digitalSignature,keyEncipherment" if alg.startswith("rsa") else "digitalSignature,keyAgreement"
        return self.issue(name, ca, alg, address, key_usage=ku, ext_key_usage="emailProtection,clientAuth",
                          san="email:%s" % address)

    def client(self, name, ca, cn):
        return self.issue(name, ca, "ec", cn, key_usage="digitalSignature", ext_key_usage="clientAuth")

    def dated_certificate(self, name, *, ca_crt, ca_key, start, end, san, passin=None, alg="ec"):
        """A certificate with a chosen validity (YYYYMMDDHHMMSSZ), made with `openssl ca`."""
        d = os.path.join(self.dir, "ca-" + name)
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, "index.txt"), "")
        # A first byte under 0x10 on purpose: serials are written "07ab...", not "7ab...".
        write(os.path.join(d, "serial"), ("0" + secrets.token_hex(10)[1:]).upper() + "\n")
        ku = "keyEncipherment" if alg.startswith("rsa") else "keyAgreement"
        conf = write(os.path.join(d, "ca.cnf"), """
[ca]
default_ca = test
[test]
dir = {d}
database = {d}/index.txt
serial = {d}/serial
new_certs_dir = {d}
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
x509_extensions = ext
[anything]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,{ku}
extendedKeyUsage = emailProtection
subjectAltName = {san}
""".format(d=d, ku=ku, san=san))
        self.csr(name, alg, cn="member-dated")
        args = ["ca", "-batch", "-config", conf, "-in", self.path(name, "csr"), "-cert", ca_crt,
                "-keyfile", ca_key, "-startdate", start, "-enddate", end, "-notext", "-out", self.crt(name)]
        if passin:
            args += ["-passin", passin]
        openssl(*args)
        return self.crt(name)


def cert_text(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout.decode()


def cert_serial(path):
    """The serial as the daemons write it (audit `cert:SERIAL`, certd's "serial"):
    lowercase hex of the magnitude's bytes, so an even number of digits ("07ab...")."""
    out = openssl("x509", "-in", path, "-noout", "-serial").stdout.decode().strip()
    return out.split("=", 1)[1].strip().lower()


def norm_serial(s):
    """Serials compared as lowercase hex without leading zeros."""
    s = s.strip().lower().replace(":", "")
    return s.lstrip("0") or "0"


def cert_der(pem_path_or_text):
    pem = pem_path_or_text
    if "-----BEGIN" not in pem:
        pem = read(pem, "r")
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    return base64.b64decode("".join(m.group(1).split()))


# ---------------------------------------------------------------------------
# just enough DER


class Tlv:
    __slots__ = ("tag", "start", "content", "content_end", "end")

    def __init__(self, tag, start, content, content_end, end):
        self.tag, self.start, self.content, self.content_end, self.end = tag, start, content, content_end, end


def tlv(buf, off=0):
    start = off
    tag = buf[off]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers are not used here")
    off += 1
    first = buf[off]
    off += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        length = None
    else:
        n = first & 0x7F
        length = int.from_bytes(buf[off:off + n], "big")
        off += n
    if length is None:  # BER indefinite length: walk the children to the end-of-contents
        p = off
        while buf[p:p + 2] != b"\x00\x00":
            p = tlv(buf, p).end
        return Tlv(tag, start, off, p, p + 2)
    if off + length > len(buf):
        raise ValueError("truncated DER")
    return Tlv(tag, start, off, off + length, off + length)


def children(buf, t):
    out = []
    p = t.content
    while p < t.content_end:
        c = tlv(buf, p)
        out.append(c)
        p = c.end
    return out


def raw(buf, t):
    return bytes(buf[t.start:t.end])


def encode(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def _envelope_parts(cms):
    ci = tlv(cms, 0)
    ci_kids = children(cms, ci)
    explicit = ci_kids[1]
    env = children(cms, explicit)[0]
    env_kids = children(cms, env)
    ri_set = next(k for k in env_kids if k.tag == 0x31)
    return ci, ci_kids, explicit, env, env_kids, ri_set


def recipient_infos(cms):
    """The DER of each RecipientInfo of a CMS (Auth)EnvelopedData, in order."""
    *_, ri_set = _envelope_parts(cms)
    return [raw(cms, r) for r in children(cms, ri_set)]


def replace_recipient(cms, index, new_ri):
    """The CMS with RecipientInfo `index` replaced by `new_ri` (containers re-encoded, definite)."""
    ci, ci_kids, explicit, env, env_kids, ri_set = _envelope_parts(cms)
    ris = children(cms, ri_set)
    new_set = encode(0x31, b"".join(new_ri if i == index else raw(cms, r) for i, r in enumerate(ris)))
    new_env = encode(env.tag, b"".join(new_set if k is ri_set else raw(cms, k) for k in env_kids))
    return encode(ci.tag, raw(cms, ci_kids[0]) + encode(explicit.tag, new_env))


def kekri_key_id(ri):
    """The keyIdentifier of a KEKRecipientInfo ([2] IMPLICIT SEQUENCE)."""
    t = tlv(ri, 0)
    if t.tag != 0xA2:
        raise AssertionError("not a KEKRecipientInfo (tag 0x%02x)" % t.tag)
    kids = children(ri, t)
    kekid = kids[1]
    key_id = children(ri, kekid)[0]
    assert key_id.tag == 0x04
    return bytes(ri[key_id.content:key_id.content_end])


def flip_last_byte(b):
    return b[:-1] + bytes([b[-1] ^ 0x01])


def cms_of(path_or_bytes):
    """The CMS bytes of an S/MIME message (MIME, PEM or DER)."""
    data = read(path_or_bytes) if isinstance(path_or_bytes, str) else path_or_bytes
    if data[:1] == b"\x30":
        return data
    if b"-----BEGIN" in data[:100]:
        body = re.search(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END", data, re.S).group(1)
        return base64.b64decode(b"".join(body.split()))
    msg = email.message_from_bytes(data)
    payload = msg.get_payload(decode=True)
    if not payload:
        raise AssertionError("no CMS body in the message")
    return payload


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s):
    return base64.b64decode(s)


# ---------------------------------------------------------------------------
# path G: proof of possession of the membership certificate's key (src/api/membership.h)

POSSESSION_LABEL = b"blindlist path-G proof of possession v1"


def possession_message(group, when, recipient_infos_b64):
    def s(v):
        v = v.encode() if isinstance(v, str) else v
        return len(v).to_bytes(4, "big") + v
    return (POSSESSION_LABEL + b"\0" + s(group) + int(when).to_bytes(8, "big", signed=True) +
            len(recipient_infos_b64).to_bytes(4, "big") + b"".join(s(ri) for ri in recipient_infos_b64))


def key_of(cert_path):
    """The Pki's key file beside a certificate file (NAME.crt -> NAME.key)."""
    return re.sub(r"\.crt$", ".key", cert_path)


def possession_proof(group, recipient_infos_b64, key_path, when=None):
    """{"time", "signature"}: the key's signature (ECDSA or RSA-PSS, SHA-256) made with openssl."""
    when = int(time.time()) if when is None else when
    d = tempfile.mkdtemp(prefix="blindlist-proof-")
    try:
        msg = write(os.path.join(d, "msg"), possession_message(group, when, recipient_infos_b64))
        sig = os.path.join(d, "sig")
        text = openssl("pkey", "-in", key_path, "-noout", "-text_pub").stdout.decode()
        args = ["dgst", "-sha256", "-sign", key_path, "-out", sig]
        if "Modulus" in text:
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                     "-sigopt", "rsa_mgf1_md:sha256"]
        openssl(*args, msg)
        return {"time": when, "signature": b64(read(sig))}
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# HTTPS


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError("reply is not JSON (status %d): %r" % (self.status, self.body[:300]))

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class HttpsEndpoint:
    def __init__(self, port, ca_file, host="127.0.0.1"):
        self.port = port
        self.ca_file = ca_file
        self.host = host
        self._contexts = {}

    def context(self, cert=None):
        key = cert or ("", "")
        if key not in self._contexts:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_verify_locations(self.ca_file)
            if cert:
                ctx.load_cert_chain(cert[0], cert[1])
            self._contexts[key] = ctx
        return self._contexts[key]

    def url(self):
        return "https://%s:%d" % (self.host, self.port)

    def request(self, method, path, body=None, *, token=None, cert=None, headers=None, timeout=120):
        """body: a dict/list (sent as JSON), bytes/str (sent as is) or None. cert: (crt, key)."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context(cert), timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def oversized(self, method, path, size, *, token=None, cert=None, timeout=120):
        """A request declaring a `size`-byte JSON body of which only the first KiB is sent.

        The server must refuse on the declared length alone (413); not sending the
        rest avoids a race between our send and its close on a loaded machine.
        """
        import socket
        head = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port),
                "Content-Type: application/json", "Content-Length: %d" % size]
        if token:
            head.append("Authorization: Bearer " + token)
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + b'{"recipient_info": "' + b"A" * 1000
        raw_sock = socket.create_connection((self.host, self.port), timeout=timeout)
        with self.context(cert).wrap_socket(raw_sock, server_hostname=self.host) as s:
            s.sendall(data)
            reply = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                reply += chunk
                if b"\r\n\r\n" in reply:
                    headers, _, body = reply.partition(b"\r\n\r\n")
                    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", headers)
                    if m and len(body) >= int(m.group(1)):
                        break
        headers, _, body = reply.partition(b"\r\n\r\n")
        lines = headers.decode(errors="replace").split("\r\n")
        if not lines or not lines[0].startswith("HTTP/1.1 "):
            raise AssertionError("no HTTP reply to the oversized request: %r" % reply[:300])
        status = int(lines[0].split()[1])
        hdrs = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        return Response(status, hdrs, body)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)


def quote(segment):
    return urllib.parse.quote(segment, safe="@+")


# ---------------------------------------------------------------------------
# daemons


class Daemon:
    def __init__(self, name, argv, env, log_path, port_file):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.port_file = port_file
        self.proc = None
        self.port = None
        self.exit_status = None

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        full_env = dict(os.environ)
        full_env.update(self.env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(a) for a in self.argv], stdout=self.log, stderr=self.log,
                                     env=full_env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with status %d at start:\n%s" %
                                     (self.name, self.proc.returncode, self.log_text()[-3000:]))
            if os.path.exists(self.port_file):
                text = read(self.port_file, "r").strip()
                if text:
                    self.port = int(text)
                    return
            time.sleep(0.1)
        raise AssertionError("%s wrote no port file within %ds:\n%s" %
                             (self.name, HEALTH_TIMEOUT, self.log_text()[-3000:]))

    def wait_healthy(self, endpoint):
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with status %d:\n%s" %
                                     (self.name, self.proc.returncode, self.log_text()[-3000:]))
            try:
                r = endpoint.get("/healthz", timeout=30)
                if r.status == 200 and r.json.get("status") == "ok":
                    return r.json
                last = r
            except (OSError, http.client.HTTPException) as e:
                last = e
            time.sleep(0.2)
        raise AssertionError("%s not healthy within %ds (last: %r)" % (self.name, HEALTH_TIMEOUT, last))

    def stop(self):
        """SIGTERM; returns the exit status (the caller checks it is 0)."""
        if self.proc is None or self.exit_status is not None:
            return self.exit_status
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_status = "killed after SIGTERM timeout"
                self.log.close()
                return self.exit_status
        self.exit_status = self.proc.returncode
        self.log.close()
        return self.exit_status

    def log_text(self):
        try:
            return read(self.log_path).decode(errors="replace")
        except OSError:
            return ""

    def log_records(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def _postgres_database(name):
    """A fresh database on the fixture's PostgreSQL server; returns (url, drop function)."""
    url_file = os.environ.get("BLINDLIST_PG_URL_FILE")
    if not url_file or not os.path.exists(url_file):
        raise AssertionError("BLINDLIST_TEST_STORE=postgres but BLINDLIST_PG_URL_FILE (%r) does not exist: "
                             "run with the ctest fixture `postgres`" % url_file)
    base = read(url_file, "r").strip()
    if not shutil.which("psql"):
        return base, lambda: None  # shared database; group names keep tests apart
    db = "blindlist_integ_%s_%s" % (re.sub(r"[^a-z0-9]", "_", name.lower()), secrets.token_hex(4))
    run(["psql", base, "-v", "ON_ERROR_STOP=1", "-q", "-c", 'CREATE DATABASE "%s"' % db])
    parsed = urllib.parse.urlsplit(base)
    url = urllib.parse.urlunsplit(parsed._replace(path="/" + db))

    def drop():
        run(["psql", base, "-q", "-c", 'DROP DATABASE IF EXISTS "%s"' % db], check=False)

    return url, drop


class Deployment:
    """groupd (+ certd) on loopback with their own PKI, store, configs and logs.

    limits: dict for the [limits] section. store_url: share another deployment's store.
    """

    CA_PASSPHRASE = "integration-ca-passphrase"

    def __init__(self, name, *, with_certd=True, limits=None, certd_limits=None, validity_hours=24,
                 pki=None, store_url=None, admin_fingerprints=(), host="127.0.0.1"):
        self.name = name
        self.host = host  # groupd's listening address, the only one its certificate names
        self.dir = tempdir(name)
        self.pki = pki or Pki(os.path.join(self.dir, "pki"))
        self.with_certd = with_certd
        # Refusals (429, 413 ...) are audited in aggregate every refusal_audit_seconds.
        self.limits = {"max_body_bytes": 65536, "rate_per_second": 1000, "rate_burst": 10000,
                       "refusal_audit_seconds": 0.5}
        self.limits.update(limits or {})
        self.certd_limits = {"max_body_bytes": 65536, "rate_per_second": 1000, "rate_burst": 10000,
                             "refusal_audit_seconds": 0.5}
        self.certd_limits.update(certd_limits or {})
        self.validity_hours = validity_hours
        self.admin_fingerprints = list(admin_fingerprints)
        self._drop_db = lambda: None
        self.store_url = store_url
        self.groupd = None
        self.certd = None
        self.admin_token = None
        _DEPLOYMENTS.append(self)

    # -- files
    def f(self, *parts):
        return os.path.join(self.dir, *parts)

    def _make_pki(self):
        p = self.pki
        if not os.path.exists(p.crt("tls-ca")):
            p.make_ca("tls-ca", "Integration TLS CA")
            p.make_ca("deploy-ca", "Integration deployment CA")
        p.server("groupd-%s" % self.name, "tls-ca", self.host)
        p.server("certd-%s" % self.name, "tls-ca")

    @staticmethod
    def _toml_value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(Deployment._toml_value(x) for x in v) + "]"
        return json.dumps(str(v))  # a TOML basic string is a JSON string for our paths

    def _write_toml(self, path, sections):
        lines = []
        for section, values in sections.items():
            lines.append("[%s]" % section)
            for k, v in values.items():
                lines.append("%s = %s" % (k, self._toml_value(v)))
            lines.append("")
        write(path, "\n".join(lines))
        return path

    def groupd_config(self, limits=None):
        return {
            "server": {"listen": "%s:0" % self.host, "certificate": self.pki.crt("groupd-%s" % self.name),
                       "private_key": self.pki.key("groupd-%s" % self.name), "threads": 2},
            "store": {"url": self.store_url},
            "keys": {"master_key_file": self.f("master.key"), "ca_certificate": self.pki.crt("deploy-ca"),
                     "ca_private_key": self.pki.key("deploy-ca"),
                     "membership_ca_certificate": self.membership_ca_crt, "group_certificate_days": 30},
            "limits": dict(limits or self.limits),
            "admin": {"certificate_fingerprints": self.admin_fingerprints},
            "log": {"level": "info"},
        }

    def start(self):
        self._make_pki()
        if self.store_url is None:
            if store_kind() == "postgres":
                self.store_url, self._drop_db = _postgres_database(self.name)
            else:
                self.store_url = "sqlite:" + self.f("store.db")
        write(self.f("master.key"), secrets.token_hex(32) + "\n")
        os.chmod(self.f("master.key"), 0o600)
        self.membership_ca_crt = self.f("membership-ca.crt")
        self.membership_ca_key = self.f("membership-ca.key")
        # certd's config first: init-ca makes the membership CA that groupd trusts for path G.
        self.certd_config = self._write_toml(self.f("certd.toml"), {
            "server": {"listen": "127.0.0.1:0", "certificate": self.pki.crt("certd-%s" % self.name),
                       "private_key": self.pki.key("certd-%s" % self.name), "threads": 2},
            "store": {"url": self.store_url},
            "ca": {"certificate": self.membership_ca_crt, "private_key": self.membership_ca_key},
            "certificates": {"validity_hours": self.validity_hours, "crl_url": "https://certd.blindlist.test/v1/crl",
                             "crl_next_update_seconds": 3600},
            "limits": self.certd_limits,
            "log": {"level": "info"},
        })
        ca_env = {"BLINDLIST_CA_PASSPHRASE": self.CA_PASSPHRASE}
        run([certd_bin(), "--config", self.certd_config, "init-ca", "--common-name",
             "Integration membership CA"], env=ca_env)
        self.groupd_config_file = self._write_toml(self.f("groupd.toml"), self.groupd_config())
        out = run([groupd_bin(), "--config", self.groupd_config_file, "admin-token", "integration-admin"])
        self.admin_token = out.stdout.decode().strip()
        assert self.admin_token.startswith("bla_"), self.admin_token

        self.groupd = Daemon("groupd-" + self.name,
                             [groupd_bin(), "--config", self.groupd_config_file, "--port-file", self.f("groupd.port")],
                             {}, self.f("groupd.log"), self.f("groupd.port"))
        self.groupd.start()
        self.g = HttpsEndpoint(self.groupd.port, self.pki.crt("tls-ca"), self.host)
        health = self.groupd.wait_healthy(self.g)
        expected = "postgresql" if self.store_url.startswith("postgresql:") else "sqlite"
        if health.get("store") != expected:
            raise AssertionError("groupd reports store %r, expected %r" % (health.get("store"), expected))
        if self.with_certd:
            self.certd = Daemon("certd-" + self.name,
                                [certd_bin(), "--config", self.certd_config, "--port-file", self.f("certd.port")],
                                ca_env, self.f("certd.log"), self.f("certd.port"))
            self.certd.start()
            self.c = HttpsEndpoint(self.certd.port, self.pki.crt("tls-ca"))
            self.certd.wait_healthy(self.c)
        return self

    def extra_groupd(self, name, limits):
        """Another groupd on the same store and keys, with other limits (e.g. rate limits)."""
        cfg = self.groupd_config(limits)
        path = self._write_toml(self.f("groupd-%s.toml" % name), cfg)
        d = Daemon("groupd-" + name, [groupd_bin(), "--config", path, "--port-file", self.f("%s.port" % name)],
                   {}, self.f("groupd-%s.log" % name), self.f("%s.port" % name))
        d.start()
        ep = HttpsEndpoint(d.port, self.pki.crt("tls-ca"))
        d.wait_healthy(ep)
        self._extra = getattr(self, "_extra", []) + [d]
        return d, ep

    def reload_extra_groupd(self, name, daemon, limits):
        """Rewrites that groupd's [limits] and sends SIGHUP (it reloads certificates and limits)."""
        self._write_toml(self.f("groupd-%s.toml" % name), self.groupd_config(limits))
        daemon.proc.send_signal(signal.SIGHUP)

    def restart_groupd(self):
        """Starts groupd again after `groupd.stop()`: on a new port, which self.g follows."""
        self.groupd.exit_status = None
        self.groupd.start()
        self.g = HttpsEndpoint(self.groupd.port, self.pki.crt("tls-ca"))
        self.groupd.wait_healthy(self.g)

    def daemons(self):
        return [d for d in [self.groupd, self.certd] + getattr(self, "_extra", []) if d is not None]

    def stop(self):
        """Stops every daemon with SIGTERM; raises unless each exited with status 0."""
        bad = []
        for d in reversed(self.daemons()):
            status = d.stop()
            if status != 0:
                bad.append("%s exited with %r after SIGTERM" % (d.name, status))
        self._drop_db()
        self._drop_db = lambda: None
        if bad:
            raise AssertionError("; ".join(bad))

    # -- the blindlist command
    def bl(self, *args, input=None, check=True, env=None):
        return run([blindlist_bin()] + list(args), input=input, check=check, env=env)

    def server_args(self, endpoint=None, token=None, cert=None):
        ep = endpoint or self.g
        args = ["--server", ep.url(), "--ca", self.pki.crt("tls-ca")]
        if token:
            args += ["--token", token]
        if cert:
            args += ["--client-cert", cert[0], "--client-key", cert[1]]
        return args

    def admin(self, *args, check=True):
        """`blindlist admin ... --json ARGS`; returns the parsed reply (or the process if check=False)."""
        p = self.bl("admin", *self.server_args(token=self.admin_token), "--json", *args, check=check)
        if not check:
            return p
        return json.loads(p.stdout) if p.stdout.strip() else None

    def open(self, group, method, infile, *, token=None, cert=None, member=None, splice_only=False,
             check=True, reason=None):
        args = ["open", *self.server_args(token=token, cert=cert), "--group", group, "--method", method,
                "-i", infile]
        if member:
            args += ["--member-cert", member[0], "--member-key", member[1]]
        if splice_only:
            args.append("--splice-only")
        if reason:
            args += ["--reason", reason]
        return self.bl(*args, check=check)

    # -- API shortcuts
    def create_group(self, name, key_type):
        r = self.admin("group", "create", name, "--key-type", key_type)
        assert r["key_version"] == 1, r
        return r

    def public_certificate(self, group, path):
        r = self.g.get("/v1/groups/%s/certificate" % quote(group))
        assert r.status == 200, r
        write(path, r.body)
        return r

    def audit(self, group, limit=1000):
        r = self.g.get("/v1/groups/%s/audit?limit=%d" % (quote(group), limit), token=self.admin_token)
        assert r.status == 200, r
        return r.json["audit"]

    def audit_rows_direct(self):
        """Every audit row, read from the SQLite file (for records no group's audit shows)."""
        assert self.store_url.startswith("sqlite:")
        con = sqlite3.connect("file:%s?mode=ro" % self.store_url[len("sqlite:"):], uri=True, timeout=30)
        try:
            cur = con.execute("SELECT daemon, caller, group_name, key_version, operation, result, reason "
                              "FROM audit_log ORDER BY id")
            keys = ["daemon", "caller", "group", "key_version", "operation", "result", "reason"]
            return [dict(zip(keys, row)) for row in cur.fetchall()]
        finally:
            con.close()

    def membership_ca_plain_key(self):
        """certd's CA key, decrypted with `openssl pkey -passin` (to forge test certificates)."""
        out = self.f("membership-ca-plain.key")
        if not os.path.exists(out):
            openssl("pkey", "-in", self.membership_ca_key, "-passin", "pass:" + self.CA_PASSPHRASE, "-out", out)
        return out


# ---------------------------------------------------------------------------
# messages


def rfc5322(subject, body, to="list@example.org"):
    return ("From: Alice Example <alice@example.org>\r\nTo: %s\r\nSubject: %s\r\n"
            "Date: Tue, 01 Jul 2025 10:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n" %
            (to, subject, secrets.token_hex(8), body)).encode()


def entity(body):
    return ("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n" %
            body).encode()


def osl_encrypt(infile, outfile, cert, *extra):
    """`openssl cms -encrypt` (AES-256-GCM unless overridden) of `infile` to `cert`, S/MIME."""
    args = ["cms", "-encrypt", "-binary", "-in", infile, "-out", outfile]
    args += list(extra) if extra else ["-aes-256-gcm"]
    args.append(cert)
    openssl(*args)
    return outfile


def osl_decrypt(infile, key, cert=None, inform=None):
    """`openssl cms -decrypt` with a private key; returns the plaintext bytes."""
    args = ["cms", "-decrypt", "-in", infile, "-inkey", key]
    if cert:
        args += ["-recip", cert]
    if inform:
        args += ["-inform", inform]
    return openssl(*args).stdout


def osl_decrypt_secret(infile, secret_hex, key_id_hex, inform=None):
    args = ["cms", "-decrypt", "-in", infile, "-secretkey", secret_hex, "-secretkeyid", key_id_hex]
    if inform:
        args += ["-inform", inform]
    return openssl(*args).stdout


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ---------------------------------------------------------------------------
# assertions


def groupd_nodes(prefix, count, admin_label):
    """`count` started groupd deployments (no certd) named prefix1, prefix2, ... that share one
    PKI and one administrator, a client certificate with `admin_label` as its subject that every
    node takes as admin: (nodes, (admin certificate, admin key), pki). A threshold group spans
    them."""
    first = Deployment(prefix + "1", with_certd=False)
    first._make_pki()
    pki = first.pki
    admin = (pki.client(prefix + "-admin", "tls-ca", admin_label), pki.key(prefix + "-admin"))
    fingerprint = hashlib.sha256(cert_der(admin[0])).hexdigest()
    first.admin_fingerprints = [fingerprint]
    nodes = [first] + [Deployment("%s%d" % (prefix, i), with_certd=False, pki=pki,
                                  admin_fingerprints=[fingerprint]) for i in range(2, count + 1)]
    for d in nodes:
        d.start()
    return nodes, admin, pki


class TestCase(unittest.TestCase):
    maxDiff = 4000

    def assertRefused(self, r, status, code, message=None):
        self.assertEqual(r.status, status, "expected %d %s, got %r" % (status, code, r))
        body = r.json
        self.assertEqual(body.get("error"), code, body)
        self.assertTrue(isinstance(body.get("message"), str) and body["message"], body)
        if message is not None:
            self.assertEqual(body["message"], message)
        return body

    def assertAudited(self, dep, group, operation, result, caller=None, daemon="groupd", records=None):
        records = records if records is not None else dep.audit(group)
        for rec in records:
            if (rec["operation"] == operation and rec["result"] == result and rec["daemon"] == daemon and
                    (caller is None or rec["caller"] == caller)):
                return rec
        self.fail("no audit record of %s: operation=%s result=%s caller=%s among:\n%s" %
                  (group, operation, result, caller,
                   "\n".join(json.dumps(r) for r in records[:60])))

    def assertMemberAudited(self, dep, group, address, status, records=None):
        """The record of a per-member re-wrap (`rewrap-members`) that lists `address` under
        `status` (its `members` field): who got a key, and who was refused, for which request."""
        records = records if records is not None else dep.audit(group)
        for rec in records:
            if (rec["operation"] == "rewrap-members" and rec["daemon"] == "groupd" and
                    address in rec.get("members", {}).get(status, [])):
                return rec
        self.fail("no rewrap-members record of %s lists %s as %s among:\n%s" %
                  (group, address, status,
                   "\n".join(json.dumps(r) for r in records[:60] if r["operation"] == "rewrap-members")))

    def assertAuditedSoon(self, dep, group, operation, result, caller=None, daemon="groupd", timeout=60):
        """A record written in aggregate (refusals: every refusal_audit_seconds): polls for it."""
        deadline = time.monotonic() + timeout
        while True:
            records = dep.audit(group)
            for rec in records:
                if (rec["operation"] == operation and rec["result"] == result and rec["daemon"] == daemon and
                        (caller is None or rec["caller"] == caller)):
                    return rec
            if time.monotonic() > deadline:
                return self.assertAudited(dep, group, operation, result, caller, daemon, records)
            time.sleep(0.2)

    def assertContains(self, haystack, needle):
        if needle not in haystack:
            self.fail("%r not found in:\n%s" % (needle, haystack[:2000]))

    def assertCliRefused(self, p, *words):
        self.assertNotEqual(p.returncode, 0, "the command succeeded but should have failed")
        self.assertEqual(p.stdout, b"", "output on failure")
        err = p.stderr.decode(errors="replace")
        for w in words:
            self.assertIn(w, err)
        return err


# ---------------------------------------------------------------------------
# entry point


def main():
    args = sys.argv[1:]
    names = ["blindlist", "groupd", "certd", "listd"]
    while args and names and not args[0].startswith("-"):
        BINARIES[names.pop(0)] = os.path.abspath(args.pop(0))
    verbosity = 2
    started = time.monotonic()
    prog = unittest.main(module="__main__", argv=[sys.argv[0]] + args, exit=False, verbosity=verbosity)
    ok = prog.result.wasSuccessful()
    for dep in _DEPLOYMENTS:
        try:
            dep.stop()
        except AssertionError as e:
            print("FAIL at clean-up: %s" % e, file=sys.stderr)
            ok = False
    if not ok:
        for dep in _DEPLOYMENTS:
            for d in dep.daemons():
                print("\n===== %s log (%s) =====" % (d.name, d.log_path), file=sys.stderr)
                sys.stderr.write(d.log_text()[-20000:])
    print("\n%s in %.0f s (store: %s)" % ("OK" if ok else "FAILED", time.monotonic() - started, store_kind()),
          file=sys.stderr)
    if ok or not os.environ.get("BLINDLIST_KEEP_TMP"):
        for d in _TMP_DIRS:
            shutil.rmtree(d, ignore_errors=True)
    else:
        print("kept temporary directories: %s" % " ".join(_TMP_DIRS), file=sys.stderr)
    sys.exit(0 if ok else 1)
