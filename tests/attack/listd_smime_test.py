#!/usr/bin/env python3
"""Attack: getting listd to forward what is not one whole S/MIME object (issue 11, item 2).

Usage: listd_smime_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

A real groupd serves three P-256 list certificates; a real blindlist-listd delivers to Maildirs.
Each attack goes in over SMTP, LMTP and pipe mode and must be refused with its reply (and pipe
mode's sysexits code), leave nothing in any Maildir or the spool, and leave the daemon serving:
  - the > 1 MiB bypass: a multipart post whose preamble is the base64 of a real CMS object naming
    the list, followed by a plaintext part (listd once peeked at the first 96 KB of base64 of a
    large post and forwarded it, plaintext included);
  - the same with an application/pkcs7-mime header over it;
  - trailing data after the CMS object: inside the base64, and after a valid padded end;
  - a plaintext post to an encrypted-only list;
  - a second Content-Type field;
  - an AES-CBC (EnvelopedData) post to a list that requires AEAD (require_aead).
Then a legitimate > 1 MiB post is still delivered to every member. On a path-B list the bypass
is refused at intake, and a post already in the queue that the re-wrap cannot parse (as an older
listd would have queued it) is held in the spool, never forwarded as received.
"""

import base64
import glob
import json
import os
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

TEAM = "team@example.org"      # direct, encrypted-only
AEAD = "aead@example.org"      # direct, encrypted-only, require_aead
PATHB = "secret@example.org"   # path B
SENDER = "alice@example.org"
MEMBERS = ["alice@example.org", "bob@example.org", "carol@example.org"]
BIG = 1_200_000  # entity bytes: each post is well over the 1 MiB where listd used to only peek


def b64_lines(data):
    text = base64.b64encode(data)
    return b"".join(text[i:i + 76] + b"\r\n" for i in range(0, len(text), 76))


def smime(der, subject, to, content_type=b"application/pkcs7-mime; smime-type=enveloped-data; "
                                         b"name=smime.p7m", extra_headers=b""):
    """An RFC 5322 S/MIME message around `der`, laid out as Thunderbird does."""
    head = (b"From: Alice <alice@example.org>\r\nTo: " + to.encode() + b"\r\nSubject: " +
            subject.encode() + b"\r\nMIME-Version: 1.0\r\nContent-Type: " + content_type + b"\r\n" +
            extra_headers + b"Content-Transfer-Encoding: base64\r\n\r\n")
    return head + b64_lines(der)


class ListdSmimeAttackTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("listd-smime", with_certd=False).start()
        p = d.pki
        cls.work = harness.tempdir("listd-smime-work")
        p.make_ca("member-ca", "Attack member CA")
        exploder = (p.client("exploder", "member-ca", "listd exploder"), p.key("exploder"))
        cls.certs = {}
        for g in (TEAM, AEAD, PATHB):
            d.create_group(g, "p256")
            cls.certs[g] = os.path.join(cls.work, "%s.crt" % g)
            d.public_certificate(g, cls.certs[g])
            for m in MEMBERS:
                d.admin("member", "add", g, m)
        d.admin("exploder", "set", PATHB, "--cert", exploder[0])
        groupd = {"url": d.g.url(), "public_url": d.g.url(), "client_certificate": exploder[0],
                  "client_key": exploder[1], "ca": p.crt("tls-ca")}
        store_url = None
        if harness.store_kind() == "postgres":
            store_url, cls.drop_lists_db = harness._postgres_database("listd_smime")
        cls.l = lh.Listd(d, "smime", groupd=groupd, store_url=store_url)
        cls.maildirs = cls.l.sections["delivery"]["maildir_root"]
        for lst, extra in ((TEAM, []), (AEAD, ["--require-aead"]), (PATHB, ["--reading", "path-b"])):
            cls.l.lists("create", lst, "--group", lst, "--certificate", cls.certs[lst], *extra)
            cls.l.lists("member", "add", lst, *MEMBERS)
        cls.l.start()
        cls.markers = []  # every refused post's marker: none may ever reach a Maildir

    @classmethod
    def tearDownClass(cls):
        drop = getattr(cls, "drop_lists_db", None)
        if drop:
            cls.l.stop()
            drop()

    # -- helpers
    def marker(self, what):
        m = "ATTACK-%s-%s" % (what, os.urandom(5).hex())
        self.markers.append(m)
        return m

    def der(self, lst, size, cipher="-aes-256-gcm", body="hello"):
        n = len(os.listdir(self.work))
        ent = os.path.join(self.work, "ent-%d.txt" % n)
        text = body + "\r\n"
        text += ("x" * 74 + "\r\n") * max(0, (size - len(text)) // 76)
        text += "y" * max(0, size - len(text))  # byte-exact, so lengths can be steered
        harness.write(ent, harness.entity(text))
        out = os.path.join(self.work, "post-%d.der" % n)
        harness.openssl("cms", "-encrypt", "-binary", "-outform", "DER", "-in", ent, "-out", out, cipher,
                        self.certs[lst])
        return harness.read(out)

    def der_with_padding(self, lst, size, padded):
        """A DER post whose base64 ends in '=' padding (or, if not padded, needs none)."""
        for extra in range(3):
            der = self.der(lst, size + extra)
            if (len(der) % 3 != 0) == padded:
                return der
        raise AssertionError("no post of the wanted length")

    def in_maildirs(self, needle):
        hits = []
        for path in glob.glob(os.path.join(self.maildirs, "**"), recursive=True):
            if os.path.isfile(path) and needle.encode() in harness.read(path):
                hits.append(path)
        return hits

    def in_spool(self, needle):
        hits = []
        for sub in ("incoming", "active", "tmp"):
            for path in glob.glob(os.path.join(self.l.spool, sub, "*")):
                if os.path.isfile(path) and needle.encode() in harness.read(path):
                    hits.append(path)
        return hits

    def assertRefusedEverywhere(self, lst, message, reply, words, sysexit, marker):
        """SMTP, LMTP and pipe mode each refuse `message` with `reply` and `words`."""
        self.assertGreater(len(message), 0)
        rc, out = lh.swaks(self.l.smtp_port, lst, message, sender=SENDER)
        self.assertNotEqual(rc, 0, "SMTP accepted it:\n" + out[-3000:])
        self.assertIn(reply, out)
        self.assertIn(words, out)
        rc, out = lh.swaks(self.l.lmtp_port, lst, message, sender=SENDER, protocol="LMTP")
        self.assertNotEqual(rc, 0, "LMTP accepted it:\n" + out[-3000:])
        self.assertIn(reply, out)
        self.assertIn(words, out)
        p = self.l.pipe(lst, message, sender=SENDER)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, sysexit, "pipe mode: " + err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, "pipe mode's reason is one line: %r" % err)
        self.assertIn(reply.split()[1], lines[0])
        self.assertIn(words, lines[0])
        self.assertEqual(self.in_maildirs(marker), [], "delivered")
        self.assertEqual(self.in_spool(marker), [], "queued")
        self.assertIsNone(self.l.daemon.proc.poll(), "listd died")

    def bypass(self, lst, marker, top_type):
        """The issue's > 1 MiB post: a real CMS prefix naming the list, then a plaintext part."""
        der = self.der(lst, BIG)
        return (b"From: Alice <alice@example.org>\r\nTo: " + lst.encode() + b"\r\nSubject: " + marker.encode() +
                b"\r\nMIME-Version: 1.0\r\nContent-Type: " + top_type +
                b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64_lines(der) +
                b"\r\n--pkcs7-mime\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                b"The plaintext the list must never carry: " + marker.encode() + b"\r\n--pkcs7-mime--\r\n")

    # -- attacks
    def test_a_large_multipart_bypass(self):
        m = self.marker("bypass")
        msg = self.bypass(TEAM, m, b'multipart/mixed; boundary="pkcs7-mime"')
        self.assertGreater(len(msg), 1024 * 1024)
        self.assertRefusedEverywhere(TEAM, msg, "550 5.7.1", "plaintext posts are not accepted on this list",
                                     77, m)

    def test_b_pkcs7_header_over_a_multipart_body(self):
        m = self.marker("pkcs7-over-multipart")
        msg = self.bypass(TEAM, m, b"application/pkcs7-mime; smime-type=enveloped-data")
        self.assertRefusedEverywhere(TEAM, msg, "554 5.6.0", "not one S/MIME object", 65, m)

    def test_c_trailing_data_after_the_cms_object(self):
        # Inside the base64: the decoded body goes on after the ContentInfo's outer length.
        m = self.marker("trailing-in-base64")
        der = self.der_with_padding(TEAM, BIG, padded=False)
        msg = smime(der + b"\r\n" + m.encode() + b" plaintext after the object\r\n", m, TEAM)
        self.assertRefusedEverywhere(TEAM, msg, "554 5.6.0", "trailing data after the CMS object", 65, m)
        # A second base64 run after an unpadded end.
        m = self.marker("trailing-second-run")
        msg = smime(der, m, TEAM) + b64_lines(b"plaintext " + m.encode())
        self.assertRefusedEverywhere(TEAM, msg, "554 5.6.0", "trailing data after the CMS object", 65, m)
        # After a valid padded end.
        m = self.marker("trailing-after-padding")
        der = self.der_with_padding(TEAM, BIG, padded=True)
        msg = smime(der, m, TEAM) + base64.b64encode(b"plaintext " + m.encode()) + b"\r\n"
        self.assertRefusedEverywhere(TEAM, msg, "554 5.6.0", "trailing data after the end of the base64",
                                     65, m)
        # A small one too: the same rule at every size.
        m = self.marker("trailing-small")
        msg = smime(self.der(TEAM, 2000) + self.der(TEAM, 2000), m, TEAM)
        self.assertRefusedEverywhere(TEAM, msg, "554 5.6.0", "trailing data after the CMS object", 65, m)

    def test_d_plaintext_to_an_encrypted_only_list(self):
        m = self.marker("plaintext")
        msg = harness.rfc5322(m, "a plaintext post " + m, to=TEAM)
        self.assertRefusedEverywhere(TEAM, msg, "550 5.7.1", "plaintext posts are not accepted on this list",
                                     77, m)

    def test_e_a_second_content_type(self):
        m = self.marker("two-content-types")
        msg = smime(self.der(TEAM, BIG), m, TEAM, extra_headers=b"Content-Type: text/plain\r\n")
        self.assertRefusedEverywhere(TEAM, msg, "554 5.6.0", "Content-Type fields", 65, m)

    def test_f_cbc_to_a_list_that_requires_aead(self):
        m = self.marker("cbc")
        msg = smime(self.der(AEAD, BIG, cipher="-aes-256-cbc"), m, AEAD)
        self.assertRefusedEverywhere(AEAD, msg, "554 5.7.6", "requires authenticated encryption", 77, m)
        # GCM to the same list goes through.
        ok = "AEAD-OK-%s" % os.urandom(4).hex()
        rc, out = lh.swaks(self.l.smtp_port, AEAD, smime(self.der(AEAD, 3000), ok, AEAD), sender=SENDER)
        self.assertEqual(rc, 0, out)
        self.wait_delivered(ok)

    def test_g_path_b_bypass_refused_at_intake(self):
        m = self.marker("path-b-bypass")
        msg = self.bypass(PATHB, m, b'multipart/mixed; boundary="pkcs7-mime"')
        self.assertRefusedEverywhere(PATHB, msg, "550 5.7.1", "plaintext posts are not accepted on this list",
                                     77, m)

    def test_h_path_b_holds_a_queued_post_it_cannot_parse(self):
        # A post an older listd accepted: it sits in incoming/ when this listd starts.
        m = self.marker("path-b-queued")
        message = self.bypass(PATHB, m, b'multipart/mixed; boundary="pkcs7-mime"')
        self.l.stop()
        post_id = "%017d-%08x" % (int(time.time() * 1e6), int.from_bytes(os.urandom(4), "big"))
        head = ("blindlist-queue 1 incoming\nid %s\nlist %s\nsender %s\nreceived-at %d\nmessage %d\n" %
                (post_id, PATHB, SENDER, int(time.time()), len(message))).encode()
        body = head + message + b"\n"
        harness.write(os.path.join(self.l.spool, "incoming", post_id),
                      body + b"end %08x\n" % (zlib.crc32(body) & 0xFFFFFFFF))
        self.l.start()
        reason_file = os.path.join(self.l.spool, "corrupt", post_id + ".incoming.reason")
        lh.wait_for(lambda: os.path.exists(reason_file), 60, "the post held in corrupt/")
        reason = harness.read(reason_file, "r")
        self.assertIn("held, not forwarded", reason)
        self.assertIn("plaintext post", reason)
        self.assertIn("held in the spool, not forwarded", self.l.log_text())
        time.sleep(2)
        self.assertEqual(self.in_maildirs(m), [], "forwarded as received")
        self.assertEqual([p for p in self.in_spool(m) if "/active/" in p], [])

    def test_z_still_serving_and_a_legit_large_post_is_delivered(self):
        ok = "LEGIT-%s" % os.urandom(4).hex()
        msg = smime(self.der(TEAM, BIG, body="legit large post"), ok, TEAM)
        self.assertGreater(len(msg), 1024 * 1024)
        rc, out = lh.swaks(self.l.smtp_port, TEAM, msg, sender=SENDER)
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0", out)
        rc, out = lh.swaks(self.l.lmtp_port, TEAM, smime(self.der(TEAM, BIG), ok + "-lmtp", TEAM),
                           sender=SENDER, protocol="LMTP")
        self.assertEqual(rc, 0, out)
        p = self.l.pipe(TEAM, smime(self.der(TEAM, BIG), ok + "-pipe", TEAM), sender=SENDER)
        self.assertEqual(p.returncode, 0, p.stderr)
        for marker in (ok, ok + "-lmtp", ok + "-pipe"):
            self.wait_delivered(marker)
        status, body = self.l.http("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["store"],
                         "postgresql" if harness.store_kind() == "postgres" else "sqlite")
        for m in self.markers:
            self.assertEqual(self.in_maildirs(m), [], m)

    def wait_delivered(self, marker):
        def everyone():
            folders = {os.path.basename(os.path.dirname(os.path.dirname(p))) for p in self.in_maildirs(marker)}
            return folders if folders >= set(MEMBERS) else None
        lh.wait_for(everyone, 120, "delivery of %s to every member" % marker)


if __name__ == "__main__":
    harness.main()
