#!/usr/bin/python3
"""A real submission server for `blindlist post`: Debian's python3-aiosmtpd with STARTTLS
and SMTP AUTH (RFC 4954), as on port 587 (RFC 6409).

Usage: submission_server.py --dir DIR --port-file FILE --user U --password-file F
       [--cert C --key K] [--mechanisms PLAIN,LOGIN] [--plaintext-auth]

With --cert/--key it offers STARTTLS and AUTH only after it (auth_require_tls), and
refuses MAIL before a login. --plaintext-auth (no certificate) offers AUTH on the
plaintext connection: a client that sends a password there is at fault, and the
attempt is recorded. Every AUTH attempt is appended to DIR/auth.jsonl as
{"mechanism", "login", "ok", "tls"}; every accepted message to DIR/msg-N.eml and
DIR/deliveries.jsonl. Runs until SIGTERM. Run it with /usr/bin/python3.
"""

import argparse
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtp_sink import free_loopback_port, serve  # noqa: E402


class Recorder:
    def __init__(self, directory):
        self.dir = directory
        self.count = 0
        self.lock = threading.Lock()

    def append(self, name, record):
        with self.lock, open(os.path.join(self.dir, name), "a") as f:
            f.write(json.dumps(record) + "\n")

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            name = "msg-%d.eml" % self.count
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        self.append("deliveries.jsonl", {"file": name, "mail_from": envelope.mail_from,
                                         "rcpt": envelope.rcpt_tos, "tls": session.ssl is not None,
                                         "login": session.auth_data})
        return "250 2.0.0 queued as %s" % name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--mechanisms", default="PLAIN,LOGIN")
    ap.add_argument("--plaintext-auth", action="store_true")
    a = ap.parse_args()
    with open(a.password_file, "rb") as f:
        password = f.read().splitlines()[0]
    rec = Recorder(a.dir)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == a.user.encode()
              and auth_data.password == password)
        rec.append("auth.jsonl", {"mechanism": mechanism, "ok": ok, "tls": session.ssl is not None,
                                  "login": auth_data.login.decode(errors="replace")
                                  if isinstance(auth_data, LoginPassword) else None})
        return AuthResult(success=ok, handled=False, auth_data=a.user if ok else None)

    wanted = {m.strip().upper() for m in a.mechanisms.split(",") if m.strip()}
    kwargs = dict(authenticator=authenticator, auth_required=True,
                  auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in wanted])
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    else:
        kwargs.update(auth_require_tls=not a.plaintext_auth)
    port = free_loopback_port()
    serve(Controller(rec, hostname="127.0.0.1", port=port, server_hostname="submission.test", **kwargs),
          port, a.port_file)


if __name__ == "__main__":
    main()
