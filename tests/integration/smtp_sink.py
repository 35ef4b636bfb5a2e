#!/usr/bin/python3
"""A real SMTP sink for listd's tests, on Debian's python3-aiosmtpd.

Usage: smtp_sink.py --dir DIR --port-file FILE [--reject ADDR=CODE ...] [--hostname H]
                    [--xverp] [--data-reply CODE [--data-reply-match TEXT] [--data-reply-echo]]
                    [--data-defer-match TEXT] [--refuse-bare-lf]

Every accepted message is written to DIR/msg-N.eml; every accepted
(message, recipient) pair is appended to DIR/deliveries.jsonl as
{"file": "msg-N.eml", "rcpt": ADDR, "mail_from": ...}. --reject makes RCPT TO
ADDR fail with CODE (e.g. 550 or 451). --xverp offers Postfix's XVERP in EHLO
and expands it as Postfix does: the recorded mail_from of each recipient is the
sender's local part + "+" + local=domain of the recipient. --data-reply CODE
refuses the message after its body with CODE (5.6.0), every message with a
sender (null-sender reports pass) or only those containing TEXT (--data-reply-match); refused messages are recorded in
DIR/refused.jsonl. The enhanced code is 5.6.0 for a 5xx and 4.3.0 for a 4xx; --data-reply-echo
puts the recipients' addresses in the reply text, as many real MTAs do. --data-defer-match TEXT
answers 451 4.3.0 after the body of every message with a sender that contains TEXT (a receiver
that defers the message itself, forever). --smtputf8 strict answers a UTF-8 MAIL FROM or
RCPT TO without MAIL's SMTPUTF8 parameter as Postfix does (553 5.6.7); --smtputf8 off does not
offer SMTPUTF8 at all (aiosmtpd then refuses any non-ASCII argument: 500). Each delivery record
says whether the transaction used SMTPUTF8 ("smtputf8"). --refuse-bare-lf makes it a strict
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
import socket
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def has_bare_line_end(data):
    """True when `data` holds a LF without a CR before it or a CR without a LF after it."""
    return re.search(rb"(?<!\r)\n|\r(?!\n)", data) is not None


class Recorder:
    def __init__(self, directory, rejects, xverp=False, data_reply=None, data_match=None, refuse_bare_lf=False,
                 data_echo=False):
        self.dir = directory
        self.rejects = rejects
        self.xverp = xverp
        self.data_reply = data_reply
        self.data_match = data_match.encode() if data_match else None
        self.refuse_bare_lf = refuse_bare_lf
        self.data_echo = data_echo
        self.defer_match = None
        self.smtputf8 = "on"
        # A restarted sink goes on numbering after the files already there, so earlier
        # delivery records keep pointing at their own messages.
        self.count = len([n for n in os.listdir(directory) if n.startswith("msg-")])
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.smtputf8 == "strict" and not address.isascii() and "SMTPUTF8" not in mail_options:
            return "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.smtputf8 == "strict" and not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
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
        if self.defer_match and envelope.mail_from not in ("", "<>") and self.defer_match in content:
            with self.lock, open(os.path.join(self.dir, "deferred.jsonl"), "a") as log:
                log.write(json.dumps({"rcpts": envelope.rcpt_tos, "mail_from": envelope.mail_from}) + "\n")
            return "451 4.3.0 message for <%s> deferred after its body" % ">, <".join(envelope.rcpt_tos)
        # A report from the null sender (a DSN) is never refused, so it can reach its reader.
        if self.data_reply and envelope.mail_from not in ("", "<>") and (self.data_match is None or self.data_match in content):
            with self.lock:
                with open(os.path.join(self.dir, "refused.jsonl"), "a") as log:
                    log.write(json.dumps({"rcpts": envelope.rcpt_tos,
                                          "mail_from": envelope.mail_from}) + "\n")
            enhanced = "4.3.0" if self.data_reply.startswith("4") else "5.6.0"
            echo = " for <%s>" % ">, <".join(envelope.rcpt_tos) if self.data_echo else ""
            return "%s %s message%s refused after its body" % (self.data_reply, enhanced, echo)
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
                                          "mail_from": self._sender_for(envelope, rcpt),
                                          "smtputf8": bool(envelope.smtp_utf8)}) + "\n")
        return "250 2.0.0 OK"


def free_loopback_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(controller, port, port_file):
    """Starts an aiosmtpd controller, writes its port to port_file (atomically, for the test
    that waits for it) and serves until SIGTERM or SIGINT."""
    controller.start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(port_file + ".tmp", port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


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
    ap.add_argument("--data-reply-echo", action="store_true")
    ap.add_argument("--data-defer-match", default=None)
    ap.add_argument("--smtputf8", choices=["on", "strict", "off"], default="on")
    args = ap.parse_args()
    rejects = {}
    for r in args.reject:
        addr, code = r.split("=", 1)
        rejects[addr.lower()] = code
    os.makedirs(args.dir, exist_ok=True)
    handler = Recorder(args.dir, rejects, args.xverp, args.data_reply, args.data_reply_match,
                       args.refuse_bare_lf, args.data_reply_echo)
    if args.data_defer_match:
        handler.defer_match = args.data_defer_match.encode()
    handler.smtputf8 = args.smtputf8

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
            return SinkSMTP(self.handler, data_size_limit=64 << 20, enable_SMTPUTF8=args.smtputf8 != "off",
                            hostname="sink.test")

    port = args.port or free_loopback_port()
    serve(Ctl(handler, hostname="127.0.0.1", port=port), port, args.port_file)


if __name__ == "__main__":
    main()
