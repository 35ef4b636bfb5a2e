#!/usr/bin/python3
"""A real SMTP sink for listd's tests, on Debian's python3-aiosmtpd.

Usage: smtp_sink.py --dir DIR --port-file FILE [--reject ADDR=CODE ...] [--hostname H]
                    [--xverp] [--data-reply CODE [--data-reply-match TEXT]] [--refuse-bare-lf]

Every accepted message is written to DIR/msg-N.eml; every accepted
(message, recipient) pair is appended to DIR/deliveries.jsonl as
{"file": "msg-N.eml", "rcpt": ADDR, "mail_from": ...}. --reject makes RCPT TO
ADDR fail with CODE (e.g. 550 or 451). --xverp offers Postfix's XVERP in EHLO
and expands it as Postfix does: the recorded mail_from of each recipient is the
sender's local part + "+" + local=domain of the recipient. --data-reply CODE
refuses the message after its body with CODE (5.6.0), every message with a
sender (null-sender reports pass) or only those containing TEXT (--data-reply-match); refused messages are recorded in
DIR/refused.jsonl. --refuse-bare-lf makes it a strict
receiver, as many MTAs now are against SMTP smuggling: DATA gets 550 5.6.0 when
the message holds a LF not preceded by CR or a CR not followed by LF. The check
reads the bytes as they came off the wire (aiosmtpd splits DATA only at CRLF and
keeps every other byte in original_content; only the leading dot is unstuffed),
so nothing is normalized before it. Runs until SIGTERM. Run it with
/usr/bin/python3: aiosmtpd is a Debian package, not in a virtualenv.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def has_bare_line_end(data):
    """True when `data` holds a LF without a CR before it or a CR without a LF after it."""
    return re.search(rb"(?<!\r)\n|\r(?!\n)", data) is not None


class Recorder:
    def __init__(self, directory, rejects, xverp=False, data_reply=None, data_match=None, refuse_bare_lf=False):
        self.dir = directory
        self.rejects = rejects
        self.xverp = xverp
        self.data_reply = data_reply
        self.data_match = data_match.encode() if data_match else None
        self.refuse_bare_lf = refuse_bare_lf
        # A restarted sink goes on numbering after the files already there, so earlier
        # delivery records keep pointing at their own messages.
        self.count = len([n for n in os.listdir(directory) if n.startswith("msg-")])
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.rejects.get(address.lower())
        if code:
            text = "no such user here" if code.startswith("5") else "mailbox busy, try later"
            enh = "5.1.1" if code.startswith("5") else "4.2.1"
            return "%s %s %s" % (code, enh, text)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.xverp:
            responses.insert(len(responses) - 1, "250-XVERP")
        return responses

    def _sender_for(self, envelope, rcpt):
        if not getattr(envelope, "xverp", False) or "@" not in (envelope.mail_from or ""):
            return envelope.mail_from
        local, domain = envelope.mail_from.rsplit("@", 1)
        rl, rd = rcpt.rsplit("@", 1)
        return "%s+%s=%s@%s" % (local, rl, rd, domain)

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_bare_lf and has_bare_line_end(envelope.original_content or b""):
            with self.lock, open(os.path.join(self.dir, "refused.jsonl"), "a") as log:
                log.write(json.dumps({"rcpts": envelope.rcpt_tos, "mail_from": envelope.mail_from,
                                      "reason": "bare LF or CR"}) + "\n")
            return "550 5.6.0 bare LF or bare CR in the message (RFC 5321 section 2.3.8)"
        content = envelope.original_content or envelope.content
        # A report from the null sender (a DSN) is never refused, so it can reach its reader.
        if self.data_reply and envelope.mail_from not in ("", "<>") and (self.data_match is None or self.data_match in content):
            with self.lock:
                with open(os.path.join(self.dir, "refused.jsonl"), "a") as log:
                    log.write(json.dumps({"rcpts": envelope.rcpt_tos,
                                          "mail_from": envelope.mail_from}) + "\n")
            return "%s 5.6.0 message refused after its body" % self.data_reply
        with self.lock:
            self.count += 1
            name = "msg-%d.eml" % self.count
            path = os.path.join(self.dir, name)
            with open(path + ".tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(path + ".tmp", path)
            with open(os.path.join(self.dir, "deliveries.jsonl"), "a") as log:
                for rcpt in envelope.rcpt_tos:
                    log.write(json.dumps({"file": name, "rcpt": rcpt,
                                          "mail_from": self._sender_for(envelope, rcpt)}) + "\n")
        return "250 2.0.0 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--xverp", action="store_true")
    ap.add_argument("--data-reply", default=None)
    ap.add_argument("--data-reply-match", default=None)
    ap.add_argument("--refuse-bare-lf", action="store_true")
    args = ap.parse_args()
    rejects = {}
    for r in args.reject:
        addr, code = r.split("=", 1)
        rejects[addr.lower()] = code
    os.makedirs(args.dir, exist_ok=True)
    handler = Recorder(args.dir, rejects, args.xverp, args.data_reply, args.data_reply_match,
                       args.refuse_bare_lf)

    class SinkSMTP(SMTP):
        async def smtp_MAIL(self, arg):
            xverp = False
            if handler.xverp and arg:
                stripped = re.sub(r"\s+XVERP(=\S*)?(?=\s|$)", "", arg, flags=re.I)
                xverp = stripped != arg
                arg = stripped
            await super().smtp_MAIL(arg)
            if xverp and self.envelope.mail_from:
                self.envelope.xverp = True

    class Ctl(Controller):
        def factory(self):
            return SinkSMTP(self.handler, data_size_limit=64 << 20, enable_SMTPUTF8=True,
                            hostname="sink.test")

    port = args.port
    if port == 0:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    ctl = Ctl(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(args.port_file + ".tmp", args.port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    ctl.stop()


if __name__ == "__main__":
    main()
