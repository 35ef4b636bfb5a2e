#!/usr/bin/env python3
"""Revocation fails closed on path G (rewrap/certificate), against the real certd and groupd.

Usage: revocation_test.py BLINDLIST GROUPD CERTD [LISTD] [unittest args]

The attacker holds a membership certificate that groupd should not honour:
  - one signed by the real membership CA but never recorded by certd (a stolen CA
    signature, or certd stopped between signing and recording): `403 unknown-certificate`;
  - a removed member's certificate: `403 revoked-certificate`;
  - one whose record lost its revocation (recorded after the member's removal, as the
    sign-then-record race of old certd left it): `403 revoked-certificate`;
  - an expired, a not yet valid, a foreign (another CA) and another group's certificate:
    `403 expired-certificate`, `foreign-certificate`, `wrong-group`.
  - a current member's certificate copied without its key: no proof of possession, a proof by
    another key, for another RecipientInfo or group, stale or ahead by ten minutes, or with a
    flipped bit: `403 no-proof-of-possession` (the owner, signing, still reads).
Each refusal is the documented JSON error, is audited with the serial only, holds for bulk
`rewrap-certificate` too, and leaves groupd serving. The removal race itself (certd checked
the roster, then the member was removed, then certd records) is the store test
RecordsACertificateOnlyForACurrentMember and the PostgreSQL interleavings in store_test.cc.
"""

import datetime
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

A = "revocation-a@example.org"
B = "revocation-b@example.org"


def stamp(delta_hours):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=delta_hours)
    return t.strftime("%Y%m%d%H%M%SZ")


class Revocation(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("revocation").start()
        cls.tmp = harness.tempdir("revocation-work")
        d.pki.make_ca("foreign-ca", "Not the membership CA")
        for g in (A, B):
            d.create_group(g, "p256")
        cls.tok = {}
        for who in ("alice", "dave", "erin"):
            cls.tok[who] = d.admin("member", "add", A, "%s@example.org" % who, "--token")["token"]
        cls.cert = {g: cls.f("%s.crt" % g) for g in (A, B)}
        for g in (A, B):
            d.public_certificate(g, cls.cert[g])
        cls.post = harness.osl_encrypt(harness.write(cls.f("entity.txt"), harness.entity("for A")),
                                       cls.f("post.smime"), cls.cert[A])
        cls.ri = harness.recipient_infos(harness.cms_of(cls.post))[0]

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def f(cls, name):
        return os.path.join(cls.tmp, name)

    # -- helpers
    def issue(self, group, name, token):
        csr = self.d.pki.csr(name, "ec", cn="member")
        r = self.d.c.post("/v1/groups/%s/certificates" % quote(group), {"csr": harness.read(csr, "r")},
                          token=token)
        self.assertEqual(r.status, 201, r)
        crt = harness.write(self.d.pki.crt(name), r.json["certificate"])
        return (crt, self.d.pki.key(name)), r.json["serial"]

    def rewrap(self, group, cert_path, ri=None, proof="sign"):
        """proof: "sign" (by the certificate's key), None (left out) or a proof object."""
        ri = b64(ri or self.ri)
        body = {"recipient_info": ri, "certificate": harness.read(cert_path, "r")}
        if proof == "sign":
            proof = harness.possession_proof(group, [ri], harness.key_of(cert_path))
        if proof is not None:
            body["proof"] = proof
        return self.d.g.post("/v1/groups/%s/rewrap/certificate" % quote(group), body)

    def bulk(self, group, cert_path, proof="sign"):
        items = [{"operation": "rewrap-certificate", "recipient_info": b64(self.ri)}]
        body = {"certificate": harness.read(cert_path, "r"), "requests": items}
        if proof == "sign":
            proof = harness.possession_proof(group, [b64(self.ri)], harness.key_of(cert_path))
        if proof is not None:
            body["proof"] = proof
        return self.d.g.post("/v1/groups/%s/bulk" % quote(group), body)

    def forged(self, name, *, start=-1, end=24, group=A, ca="membership"):
        """A certificate made with the openssl CLI, as an attacker holding a CA signature would."""
        if ca == "membership":
            ca_crt, ca_key = self.d.membership_ca_crt, self.d.membership_ca_plain_key()
        else:
            ca_crt, ca_key = self.d.pki.crt(ca), self.d.pki.key(ca)
        return self.d.pki.dated_certificate(name, ca_crt=ca_crt, ca_key=ca_key, start=stamp(start),
                                            end=stamp(end), san="URI:urn:blindlist:group:" + group)

    def refused_everywhere(self, group, crt, status, code):
        """Refused on rewrap/certificate, on bulk and by `blindlist open --method cert`; audited."""
        self.assertRefused(self.rewrap(group, crt), status, code)
        self.assertRefused(self.bulk(group, crt), status, code)
        self.assertAudited(self.d, group, "rewrap-certificate", code, caller="cert:" + harness.cert_serial(crt))
        p = self.d.open(group, "cert", self.post, member=(crt, crt[:-4] + ".key"), check=False)
        self.assertCliRefused(p, str(status), code)
        self.assertEqual(self.d.g.get("/healthz").status, 200)

    def store_sql(self, statement):
        """Runs one statement on the deployment's store (SQLite file or PostgreSQL via psql)."""
        url = self.d.store_url
        if url.startswith("sqlite:"):
            con = sqlite3.connect(url[len("sqlite:"):], timeout=30)
            try:
                con.execute(statement)
                con.commit()
            finally:
                con.close()
            return
        p = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))

    # -- the attacks
    def test_unrecorded_certificate_signed_by_the_real_ca_is_refused(self):
        crt = self.forged("unrecorded")
        # A genuine signature of the membership CA, valid now, for group A: only the record is missing.
        harness.openssl("verify", "-CAfile", self.d.membership_ca_crt, crt)
        self.refused_everywhere(A, crt, 403, "unknown-certificate")

    def test_removed_members_certificate_is_refused(self):
        member, serial = self.issue(A, "dave-g", self.tok["dave"])
        self.assertEqual(self.rewrap(A, member[0]).status, 200)
        self.d.admin("member", "remove", A, "dave@example.org")
        self.refused_everywhere(A, member[0], 403, "revoked-certificate")
        # Added back, the member does not revive the old certificate.
        self.d.admin("member", "add", A, "dave@example.org", "--token")
        self.assertRefused(self.rewrap(A, member[0]), 403, "revoked-certificate")

    def test_record_of_a_removed_member_without_its_revocation_is_refused(self):
        # What the sign-then-record race of old certd left: an unrevoked record of a removed member.
        member, serial = self.issue(A, "erin-g", self.tok["erin"])
        self.d.admin("member", "remove", A, "erin@example.org")
        self.store_sql("UPDATE issued_certificates SET revoked = 0, revoked_at = 0 "
                       "WHERE serial_hex = '%s'" % serial)
        self.refused_everywhere(A, member[0], 403, "revoked-certificate")

    def test_expired_not_yet_valid_foreign_and_other_group_certificates_are_refused(self):
        self.refused_everywhere(A, self.forged("expired", start=-48, end=-24), 403, "expired-certificate")
        self.refused_everywhere(A, self.forged("future", start=24, end=48), 403, "expired-certificate")
        self.refused_everywhere(A, self.forged("foreign", ca="foreign-ca"), 403, "foreign-certificate")
        self.refused_everywhere(A, self.forged("for-b", group=B), 403, "wrong-group")

    def test_a_copied_certificate_without_its_key_is_refused(self):
        # A current member's valid, recorded certificate, in the hands of someone without its key.
        d = self.d
        member, serial = self.issue(A, "alice-copied", self.tok["alice"])
        self.assertEqual(self.rewrap(A, member[0]).status, 200)
        ri = b64(self.ri)
        now = int(harness.time.time())
        stranger = d.pki.gen_key("stranger-pop", "ec")
        other_ri = b64(harness.recipient_infos(harness.cms_of(harness.osl_encrypt(
            harness.write(self.f("other.txt"), harness.entity("other")), self.f("other.smime"), self.cert[A])))[0])
        attempts = {
            "no proof": None,
            "not an object": "yes, I have the key",
            "no signature": {"time": now},
            "signature not base64": {"time": now, "signature": "!!"},
            "time as text": dict(harness.possession_proof(A, [ri], member[1]), time=str(now)),
            "another key": harness.possession_proof(A, [ri], stranger),
            "another RecipientInfo": harness.possession_proof(A, [other_ri], member[1]),
            "another group": harness.possession_proof(B, [ri], member[1]),
            "ten minutes old": harness.possession_proof(A, [ri], member[1], when=now - 600),
            "ten minutes ahead": harness.possession_proof(A, [ri], member[1], when=now + 600),
            "bit flipped": dict(harness.possession_proof(A, [ri], member[1])),
        }
        sig = bytearray(harness.unb64(attempts["bit flipped"]["signature"]))
        sig[len(sig) // 2] ^= 1
        attempts["bit flipped"]["signature"] = b64(bytes(sig))
        for what, proof in attempts.items():
            with self.subTest(what):
                self.assertRefused(self.rewrap(A, member[0], proof=proof), 403, "no-proof-of-possession")
                self.assertRefused(self.bulk(A, member[0], proof=proof), 403, "no-proof-of-possession")
        self.assertAudited(d, A, "rewrap-certificate", "no-proof-of-possession", caller="cert:" + serial)
        # The owner, with the key, still reads: through the API and with `blindlist open --method cert`.
        self.assertEqual(self.rewrap(A, member[0]).status, 200)
        self.assertContains(d.open(A, "cert", self.post, member=member).stdout.decode(), "for A")
        # The command needs the key for path G, even to splice.
        p = d.bl("open", *d.server_args(), "--group", A, "--method", "cert", "--member-cert", member[0],
                 "--splice-only", "-i", self.post, check=False)
        self.assertCliRefused(p, "--member-key")
        self.assertEqual(self.d.g.get("/healthz").status, 200)

    def test_a_current_members_certificate_still_works(self):
        member, serial = self.issue(A, "alice-g", self.tok["alice"])
        r = self.rewrap(A, member[0])
        self.assertEqual(r.status, 200, r)
        r = self.bulk(A, member[0])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["responses"][0]["status"], 200, r)
        p = self.d.open(A, "cert", self.post, member=member)
        self.assertContains(p.stdout.decode(), "for A")


if __name__ == "__main__":
    harness.main()
