#!/usr/bin/env python3
"""listd's bounce handling with a real Postfix doing XVERP (issue 12).

Usage: postfix_xverp_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A throwaway Postfix instance (postfix_system_test.Postfix: its own configuration, queue and
log under a temporary directory, never the machine's /etc/postfix) takes posts for
lists.test and hands them to listd by LMTP; it is also listd's smarthost, with
`smtpd_authorized_verp_clients` allowing listd, and listd runs with `[delivery] verp =
"xverp"` (so it fails if Postfix does not offer XVERP). Postfix delivers alice and bob into
Maildirs and relays carol's copy to a next hop (aiosmtpd) that refuses her at RCPT with 550;
the bounce Postfix generates for it goes to
the XVERP sender Postfix made for carol, LIST-bounces+x.ID.MAC+carol=members.test@lists.test,
which Postfix routes back to listd. Checked: carol's bounce score is 1, nobody else's moves,
the VERP sender Postfix used names exactly her, and no member's copy goes missing.

Needs root (Postfix's master runs as root), postfix, postmap and swaks: without them this is
a failure where peers are required (CI).
"""

import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402
import postfix_system_test as pst  # noqa: E402

LIST = "team@lists.test"
MEMBERS = {"alice": "alice@members.test", "bob": "bob@members.test", "carol": "carol@members.test"}
REFUSED = "carol"
WAIT = 180


class XverpPostfix(pst.Postfix):
    """The system test's instance, allowing XVERP from listd and refusing one member."""

    def __init__(self, base, *, refused, next_hop_port, **kwargs):
        super().__init__(base, **kwargs)
        self.refused_map = os.path.join(base, "refused")
        self.refused = refused
        self.next_hop_port = next_hop_port

    def main_cf(self):
        text = super().main_cf()
        text = text.replace("transport_maps = hash:%s" % self.f("transport"),
                            "transport_maps = hash:%s, hash:%s" % (self.refused_map, self.f("transport")))
        return text + "\n".join([
            "smtpd_authorized_verp_clients = 127.0.0.0/8",
            "authorized_verp_clients = 127.0.0.0/8",
            "",
        ])

    def start(self):
        harness.write(self.refused_map, "%s smtp:[127.0.0.1]:%d\n" % (self.refused, self.next_hop_port))
        # postmap needs a main.cf; the instance's own is written by start(), so an empty one here.
        scratch = os.path.join(self.base, "postmap-conf")
        os.makedirs(scratch, exist_ok=True)
        harness.write(os.path.join(scratch, "main.cf"), "compatibility_level = 3.6\n")
        harness.run([pst.POSTMAP, "-c", scratch, "hash:" + self.refused_map])
        return super().start()


class PostfixXverpTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            harness.peer_missing("Postfix's master must run as root")
        for tool in (pst.POSTFIX, pst.POSTMAP, shutil.which("swaks") or "/nonexistent/swaks"):
            if not os.path.exists(tool):
                harness.peer_missing("%s is not installed (scripts/setup installs it)" % tool)

        d = cls.d = harness.Deployment("pfxverp", with_certd=False).start()
        cls.work = harness.tempdir("pfxverp-work")
        d.create_group(LIST, "p256")
        cls.list_cert = os.path.join(cls.work, "list.crt")
        d.public_certificate(LIST, cls.list_cert)

        relay_port = lh.free_port()
        cls.l = lh.Listd(d, "pfxverp", delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % relay_port,
                                                 "starttls": "never", "verp": "xverp"})
        cls.l.lists("create", LIST, "--group", LIST, "--certificate", cls.list_cert)
        cls.l.lists("member", "add", LIST, *MEMBERS.values())
        time.sleep(1.1)  # members are added strictly before any post
        cls.l.start()

        # The refused member's next hop: an SMTP server that refuses her at RCPT, after Postfix
        # has taken the copy, so Postfix itself bounces it.
        cls.next_hop = lh.Sink(os.path.join(cls.work, "next-hop"), rejects={MEMBERS[REFUSED]: 550}).start()
        cls.addClassCleanup(cls.next_hop.stop)
        cls.pf = XverpPostfix(harness.tempdir("postfix-xverp"), refused=MEMBERS[REFUSED],
                              next_hop_port=cls.next_hop.port,
                              in_port=lh.free_port(), relay_port=relay_port, lmtp_port=cls.l.lmtp_port,
                              list_domain="lists.test", member_domain="members.test", users=MEMBERS.keys())
        cls.addClassCleanup(cls.pf.stop)
        try:
            cls.pf.start()
        except Exception:
            sys.stderr.write("\n===== Postfix maillog =====\n" + cls.pf.log_text()[-20000:])
            raise

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n===== Postfix maillog (%s) =====\n%s\n" %
                             (self.pf.maillog, self.pf.log_text()[-20000:]))
        return out

    def scores(self):
        j = json.loads(self.l.lists("show", LIST, "--json").stdout)
        return {b["address"]: b["bounce_score"] for b in j.get("bouncing", [])}

    def test_a_refused_member_is_scored_through_postfix_xverp_bounce(self):
        subject = "xverp-post-%s" % os.urandom(4).hex()
        post = lh.make_post(self.work, self.list_cert, subject, "Hello through XVERP.",
                            sender=MEMBERS["alice"], to=LIST)
        rc, out = lh.swaks(self.pf.in_port, LIST, post, sender=MEMBERS["alice"])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"<- +250 2\.0\.0 Ok: queued as")

        for user in ("alice", "bob"):
            lh.wait_for(lambda u=user: [m for _, m in self.pf.messages(u) if subject.encode() in m], WAIT,
                        "the post in the Maildir of " + user)
        # Postfix sent listd's batch with XVERP and bounced carol's copy to her own VERP sender.
        log = lh.wait_for(lambda: (re.search(r"to=<%s>.*status=bounced" % re.escape(MEMBERS[REFUSED]),
                                             self.pf.log_text()) and self.pf.log_text()), WAIT,
                          "Postfix's bounce of the refused member")
        # Postfix's bounce goes to the sender it made for carol's copy, which routes back to listd.
        verp = lh.wait_for(lambda: re.search(r"to=<team-bounces\+x\.[^>]*\+carol=members\.test@lists\.test>, "
                                             r"relay=127\.0\.0\.1.*status=sent", self.pf.log_text(), re.I),
                           WAIT, "the bounce to carol's XVERP address delivered to listd")
        self.assertIsNotNone(verp)
        log = self.pf.log_text()
        self.assertIsNone(re.search(r"to=<(alice|bob)@members\.test>.*status=bounced", log))
        # The bounce went back into listd by LMTP and scored exactly carol.
        lh.wait_for(lambda: self.scores().get(MEMBERS[REFUSED]) == 1, WAIT, "carol's bounce scored")
        time.sleep(3)
        self.assertEqual(self.scores(), {MEMBERS[REFUSED]: 1})
        self.assertRegex(self.l.log_text(), r"bounce")
        self.assertEqual(self.pf.messages("carol"), [])
        for user in ("alice", "bob"):
            self.assertEqual(len([m for _, m in self.pf.messages(user) if subject.encode() in m]), 1, user)


if __name__ == "__main__":
    harness.main()
