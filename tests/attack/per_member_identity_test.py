#!/usr/bin/env python3
"""Attack: who a per-member copy is wrapped to (issue 13), against the real groupd.

Usage: per_member_identity_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

rewrap/members wraps a post's key to each named member's registered certificate, for the
group's exploder (listd). Two ways to make the exploder read a member's copy, and one way to
keep a removed member reading:

  - keys, not certificates: the exploder's key in a second certificate (another serial, the
    same key) was taken as a member's (the clash check compared certificate fingerprints), and a
    member's key in a second certificate as the exploder's. The copy wrapped to that member is
    then opened by listd's own key. Both are 409 certificate-in-use now;
  - a clash already in the store (from before the registration checked, or written around it):
    rewrap/members must not wrap to a member whose key is the calling exploder's own;
  - the case of the domain: rewrap/members (and listd) find a member with the domain compared
    without case, member add/remove/set-cert/new-token compared it exactly. So a second spelling
    (bob@Example.ORG beside bob@example.org) was a second roster entry, removing one left the
    other matching the exploder's lookup (the removed member kept getting copies), and removing
    or changing a member under the spelling listd uses answered 404 while the member read on.
    Now one mailbox is one entry, and removal takes every spelling.
The local part keeps its case (RFC 5321): Bob@ and bob@ are two mailboxes, here as in listd.
"""

import hashlib
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_lib as al  # noqa: E402,F401
from attack_lib import harness  # noqa: E402
from harness import b64, unb64, quote  # noqa: E402

GROUP = "pm-ident@example.org"
OTHER = "pm-ident-other@example.org"

D = None
W = {}


def f(name):
    return os.path.join(W["tmp"], name)


def second_certificate(name, key, address):
    """Another certificate (new serial, new subject) for the existing key `key`."""
    p = D.pki
    csr = p.path(name, "csr")
    harness.openssl("req", "-new", "-key", key, "-subj", "/CN=%s" % address, "-out", csr)
    ext = harness.write(p.path(name, "ext"), "basicConstraints=critical,CA:FALSE\n"
                        "keyUsage=critical,digitalSignature,keyAgreement\n"
                        "extendedKeyUsage=emailProtection,clientAuth\nsubjectAltName=email:%s\n" % address)
    harness.openssl("x509", "-req", "-in", csr, "-CA", p.crt("ident-ca"), "-CAkey", p.key("ident-ca"),
                    "-set_serial", "0x5a%s" % os.urandom(8).hex(), "-days", "30", "-extfile", ext,
                    "-out", p.crt(name))
    return p.crt(name)


def setUpModule():
    global D
    D = harness.Deployment("per-member-identity", with_certd=False).start()
    p = D.pki
    W["tmp"] = harness.tempdir("per-member-identity-work")
    p.make_ca("ident-ca", "Identity member CA")
    W["exploder"] = (p.member("ident-exploder", "ident-ca", "ec", "listd@lists.example.org"),
                     p.key("ident-exploder"))
    W["alice"] = (p.member("ident-alice", "ident-ca", "ec", "alice@example.org"), p.key("ident-alice"))
    W["bob"] = (p.member("ident-bob", "ident-ca", "ec", "bob@example.org"), p.key("ident-bob"))
    W["bob2"] = (p.member("ident-bob2", "ident-ca", "ec", "bob@example.org"), p.key("ident-bob2"))
    W["dan"] = (p.member("ident-dan", "ident-ca", "ec", "dan@example.org"), p.key("ident-dan"))
    W["dan2"] = (p.member("ident-dan2", "ident-ca", "ec", "dan@example.org"), p.key("ident-dan2"))
    W["exploder-again"] = second_certificate("ident-exploder-again", W["exploder"][1], "mallory@example.org")
    W["alice-again"] = second_certificate("ident-alice-again", W["alice"][1], "listd@lists.example.org")
    D.create_group(GROUP, "p256")
    D.create_group(OTHER, "p256")
    D.admin("exploder", "set", GROUP, "--cert", W["exploder"][0])
    D.admin("member", "add", GROUP, "alice@example.org", "--cert", W["alice"][0])
    D.admin("member", "add", GROUP, "carol@example.org")
    cert = f("group.crt")
    D.public_certificate(GROUP, cert)
    ent = harness.write(f("entity.txt"), harness.entity("per-member identity secret"))
    W["plain"] = harness.read(ent)
    W["post"] = harness.osl_encrypt(ent, f("post.smime"), cert)
    W["ri"] = harness.recipient_infos(harness.cms_of(W["post"]))[0]


def tearDownModule():
    if D:
        D.stop()


def pem(path):
    return harness.read(path).decode()


def members_url(g=GROUP):
    return "/v1/groups/%s/members" % quote(g)


def member_url(address, g=GROUP):
    return "/v1/groups/%s/members/%s" % (quote(g), quote(address))


def rewrap(addresses):
    r = D.g.post("/v1/groups/%s/rewrap/members" % quote(GROUP),
                 {"recipient_info": b64(W["ri"]), "members": addresses}, cert=W["exploder"])
    assert r.status == 200, r
    return r.json["members"]


def exploder_opens(entry):
    """Whether listd's own key opens the copy made with `entry` (a rewrap/members answer)."""
    if entry["status"] != "ok":
        return False
    copy = harness.write(f("copy.der"), harness.replace_recipient(
        harness.cms_of(W["post"]), 0, unb64(entry["recipient_info"])))
    p = harness.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", copy, "-inkey", W["exploder"][1]],
                    check=False)
    return p.returncode == 0 and p.stdout == W["plain"]


def store_set_certificate(address, cert_path):
    """Writes `cert_path` as `address`'s registered certificate straight into groupd's store."""
    der = harness.cert_der(cert_path)
    fp = hashlib.sha256(der).hexdigest()
    url = D.store_url
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url[len("sqlite:"):], timeout=30)
        try:
            n = con.execute("UPDATE members SET certificate_der = ?, cert_fingerprint = ? WHERE address = ?",
                            (der, fp, address)).rowcount
            con.commit()
        finally:
            con.close()
    else:
        out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-c",
                              "UPDATE members SET certificate_der = decode('%s', 'hex'), cert_fingerprint = '%s' "
                              "WHERE address = '%s'" % (der.hex(), fp, address)],
                             check=True, capture_output=True).stdout.decode()
        n = int(out.strip().split()[-1])
    assert n == 1, (address, n)


class Keys(harness.TestCase):
    """One key, however many certificates carry it, is never an exploder's and a member's."""

    def test_a_exploders_key_in_another_certificate_as_a_member(self):
        r = D.g.post(members_url(), {"address": "mallory@example.org",
                                     "certificate": pem(W["exploder-again"])}, token=D.admin_token)
        if r.status == 201:
            opened = exploder_opens(rewrap(["mallory@example.org"])[0])
            D.g.request("DELETE", member_url("mallory@example.org"), token=D.admin_token)
            self.fail("a second certificate for the exploder's key was registered as a member's; the "
                      "exploder's own key opens that member's copy: %s" % opened)
        self.assertRefused(r, 409, "certificate-in-use")
        self.assertIn("exploder", r.json["message"])
        # And as a changed certificate of a member already there.
        r = D.g.request("PUT", member_url("carol@example.org") + "/certificate",
                        {"certificate": pem(W["exploder-again"])}, token=D.admin_token)
        if r.status == 200:
            opened = exploder_opens(rewrap(["carol@example.org"])[0])
            D.g.request("DELETE", member_url("carol@example.org"), token=D.admin_token)
            D.admin("member", "add", GROUP, "carol@example.org")
            self.fail("carol's certificate became one for the exploder's key; the exploder opens her "
                      "copy: %s" % opened)
        self.assertRefused(r, 409, "certificate-in-use")

    def test_b_members_key_in_another_certificate_as_the_exploder(self):
        for g in (GROUP, OTHER):
            with self.subTest(group=g):
                r = D.g.request("PUT", "/v1/groups/%s/exploder" % quote(g),
                                {"certificate": pem(W["alice-again"])}, token=D.admin_token)
                if r.status == 200:
                    if g == GROUP:
                        D.g.request("PUT", "/v1/groups/%s/exploder" % quote(g),
                                    {"certificate": pem(W["exploder"][0])}, token=D.admin_token)
                    self.fail("a second certificate for alice's key became %s's exploder: whoever holds "
                              "it opens alice's copies" % g)
                self.assertRefused(r, 409, "certificate-in-use")

    def test_c_a_clash_already_stored_is_not_served(self):
        # dan is added with a certificate of his own, then his row is given the exploder's
        # certificate in the store itself (as a clash stored before the checks would be).
        D.admin("member", "add", GROUP, "dan@example.org", "--cert", W["dan"][0])
        try:
            for what, cert in (("the exploder's certificate", W["exploder"][0]),
                               ("another certificate for the exploder's key", W["exploder-again"])):
                with self.subTest(stored=what):
                    store_set_certificate("dan@example.org", cert)
                    got = rewrap(["dan@example.org", "alice@example.org"])
                    self.assertFalse(exploder_opens(got[0]),
                                     "with %s stored as dan's, the exploder opens dan's copy" % what)
                    self.assertEqual(got[0]["status"], "unusable-certificate", got[0])
                    self.assertNotIn("recipient_info", got[0])
                    # The others are served as before.
                    self.assertEqual(got[1]["status"], "ok")
                    self.assertFalse(exploder_opens(got[1]))
            # Path F: the exploder's client certificate, stored as dan's, does not authenticate
            # as dan (it would get the raw message key of any post).
            store_set_certificate("dan@example.org", W["exploder"][0])
            r = D.g.post("/v1/groups/%s/unwrap" % quote(GROUP), {"recipient_info": b64(W["ri"])},
                         cert=W["exploder"])
            self.assertNotIn(b"cek", r.body, "the exploder's certificate authenticated as dan on path F")
            self.assertRefused(r, 409, "certificate-in-use")
        finally:
            D.g.request("DELETE", member_url("dan@example.org"), token=D.admin_token)


class DomainCase(harness.TestCase):
    """One mailbox, one roster entry, whatever the case of its domain."""

    def test_a_second_spelling_is_refused(self):
        r = D.g.post(members_url(), {"address": "bob@Example.ORG", "certificate": pem(W["bob"][0])},
                     token=D.admin_token)
        self.assertEqual(r.status, 201, r)
        try:
            r = D.g.post(members_url(), {"address": "bob@example.org", "certificate": pem(W["bob2"][0])},
                         token=D.admin_token)
            self.assertRefused(r, 409, "exists")
            self.assertIn("bob@Example.ORG", r.json["message"])
        finally:
            # The spelling listd uses removes him, every entry of him.
            r = D.g.request("DELETE", member_url("bob@example.org"), token=D.admin_token)
            self.assertEqual(r.status, 200, r)
        got = rewrap(["bob@example.org", "bob@Example.ORG", "bob@EXAMPLE.org"])
        self.assertEqual([m["status"] for m in got], ["not-member"] * 3,
                         "bob was removed, yet rewrap/members still finds him: %s" % got)
        members = D.g.get(members_url(), token=D.admin_token).json["members"]
        self.assertFalse([m for m in members if m["address"].lower() == "bob@example.org"], members)

    def test_b_remove_and_change_under_another_spelling(self):
        r = D.g.post(members_url(), {"address": "erin@Example.ORG"}, token=D.admin_token)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(rewrap(["erin@example.org"])[0]["status"], "no-certificate")
        r = D.g.request("PUT", member_url("erin@example.org") + "/certificate",
                        {"certificate": pem(W["dan2"][0])}, token=D.admin_token)
        self.assertEqual(r.status, 200, r)
        got = rewrap(["erin@example.org"])[0]
        self.assertEqual(got["status"], "ok")
        r = D.g.post(member_url("erin@example.org") + "/token", {}, token=D.admin_token)
        self.assertEqual(r.status, 200, r)
        r = D.g.request("DELETE", member_url("erin@example.org"), token=D.admin_token)
        self.assertEqual(r.status, 200, "removing erin under listd's spelling: %r; rewrap/members still "
                         "finds her: %s" % (r, rewrap(["erin@example.org"])))
        self.assertEqual(rewrap(["erin@example.org"])[0]["status"], "not-member")
        r = D.g.request("DELETE", member_url("erin@example.org"), token=D.admin_token)
        self.assertRefused(r, 404, "not-a-member")

    def test_c_stored_spellings_all_go(self):
        # Two spellings already in the store (from before member-add refused the second one).
        D.admin("member", "add", GROUP, "gus@EXAMPLE.org", "--cert", W["bob2"][0])
        url = D.store_url
        if url.startswith("sqlite:"):
            con = sqlite3.connect(url[len("sqlite:"):], timeout=30)
            try:
                con.execute("INSERT INTO members (group_id, address, certificate_der, cert_fingerprint, "
                            "token_hash, created_at) SELECT group_id, 'gus@example.org', x'', '', x'', "
                            "created_at FROM members WHERE address = 'gus@EXAMPLE.org'")
                con.commit()
            finally:
                con.close()
        else:
            subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c",
                            "INSERT INTO members (group_id, address, certificate_der, cert_fingerprint, "
                            "token_hash, created_at) SELECT group_id, 'gus@example.org', '', '', '', "
                            "created_at FROM members WHERE address = 'gus@EXAMPLE.org'"],
                           check=True, capture_output=True)
        r = D.g.request("DELETE", member_url("gus@example.org"), token=D.admin_token)
        self.assertEqual(r.status, 200, r)
        got = rewrap(["gus@example.org", "gus@EXAMPLE.org"])
        self.assertEqual([m["status"] for m in got], ["not-member", "not-member"],
                         "gus was removed, yet a second spelling keeps him reading: %s" % got)

    def test_d_local_part_keeps_its_case(self):
        # RFC 5321: the local part is the receiving host's; listd keeps it as written too.
        got = rewrap(["Alice@example.org", "alice@EXAMPLE.ORG"])
        self.assertEqual([m["status"] for m in got], ["not-member", "ok"])


if __name__ == "__main__":
    harness.main()
