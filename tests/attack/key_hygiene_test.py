#!/usr/bin/env python3
"""Key hygiene of groupd and certd, against the real daemons.

Usage: key_hygiene_test.py BLINDLIST GROUPD CERTD [LISTD] [unittest args]

An attacker with a local account reads secrets that are open to group or others;
one who reads the membership CA file tries passphrases offline; one who gets into
groupd after a key version was destroyed hopes the key is still usable. So:
  - groupd refuses to start when its master key, TLS key or deployment CA key is
    readable (or writable) by group or others, certd when its CA key, CA passphrase
    file or TLS key is: one line on stderr naming the file and its mode, non-zero exit;
  - `certd init-ca` creates the CA key with mode 0600 in the open(2) call itself
    (O_CREAT|O_EXCL, never written first and chmod-ed after; checked with strace) and
    encrypts it with PBES2 scrypt (N=16384, r=8, p=5) and AES-256-CBC, which
    `openssl pkey` still reads;
  - a destroyed key version stops working at once on both groupd nodes sharing the store
    (the decoded key leaves each node's memory: groupd_key_ring_test).
"""

import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import b64, quote  # noqa: E402

G = "hygiene@example.org"
START_TIMEOUT = 60  # a daemon that starts anyway would serve until killed


class KeyHygiene(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = harness.Deployment("hygiene").start()
        cls.tmp = harness.tempdir("hygiene-work")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    @classmethod
    def f(cls, name):
        return os.path.join(cls.tmp, name)

    def copy_with_mode(self, src, name, mode):
        dst = self.f(name)
        if os.path.exists(dst):
            os.unlink(dst)
        shutil.copyfile(src, dst)
        os.chmod(dst, mode)
        return dst

    def config_with(self, name, original, section, key, value):
        """A copy of a daemon's TOML with one `key = "value"` of `section` replaced."""
        text = harness.read(original, "r")
        pattern = r"(\[%s\][^\[]*?\n%s = )\"[^\"]*\"" % (re.escape(section), re.escape(key))
        changed, n = re.subn(pattern, lambda m: m.group(1) + '"%s"' % value, text, count=1)
        self.assertEqual(n, 1, "no %s.%s in %s" % (section, key, original))
        return harness.write(self.f(name), changed)

    def refuses_to_start(self, argv, path, mode, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=full_env)
        try:
            out, err = proc.communicate(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.communicate()
            self.fail("%s started with %s at mode %04o" % (argv[0], path, mode))
        self.assertNotEqual(proc.returncode, 0, err)
        # One line for the operator (the JSON log carries the same record for the journal).
        lines = [line for line in err.decode(errors="replace").strip().splitlines() if not line.startswith("{")]
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(os.path.basename(argv[0]) + ": "), lines)
        self.assertIn(path, lines[0])
        self.assertIn("mode %04o" % mode, lines[0])
        self.assertIn("group or others", lines[0])

    def groupd_argv(self, config, port_name):
        return [harness.groupd_bin(), "--config", config, "--listen", "127.0.0.1:0",
                "--port-file", self.f(port_name)]

    # -- readable secrets
    def test_groupd_refuses_a_master_key_open_to_group_or_others(self):
        for mode in (0o644, 0o640, 0o604, 0o620):
            with self.subTest(mode="%04o" % mode):
                key = self.copy_with_mode(self.d.f("master.key"), "master-%o.key" % mode, mode)
                argv = self.groupd_argv(self.d.groupd_config_file, "g.port") + ["--master-key-file", key]
                self.refuses_to_start(argv, key, mode)

    def test_groupd_refuses_a_tls_or_ca_key_open_to_others(self):
        d = self.d
        tls = self.copy_with_mode(d.pki.key("groupd-%s" % d.name), "groupd-tls.key", 0o644)
        config = self.config_with("groupd-tls.toml", d.groupd_config_file, "server", "private_key", tls)
        self.refuses_to_start(self.groupd_argv(config, "g2.port"), tls, 0o644)
        ca = self.copy_with_mode(d.pki.key("deploy-ca"), "deploy-ca.key", 0o640)
        config = self.config_with("groupd-ca.toml", d.groupd_config_file, "keys", "ca_private_key", ca)
        self.refuses_to_start(self.groupd_argv(config, "g3.port"), ca, 0o640)

    def test_certd_refuses_a_ca_key_passphrase_or_tls_key_open_to_others(self):
        d = self.d
        env = {"BLINDLIST_CA_PASSPHRASE": d.CA_PASSPHRASE}
        argv = lambda config: [harness.certd_bin(), "--config", config, "--listen", "127.0.0.1:0",  # noqa: E731
                               "--port-file", self.f("c.port")]
        ca = self.copy_with_mode(d.membership_ca_key, "membership-ca.key", 0o644)
        config = self.config_with("certd-ca.toml", d.certd_config, "ca", "private_key", ca)
        self.refuses_to_start(argv(config), ca, 0o644, env)
        tls = self.copy_with_mode(d.pki.key("certd-%s" % d.name), "certd-tls.key", 0o640)
        config = self.config_with("certd-tls.toml", d.certd_config, "server", "private_key", tls)
        self.refuses_to_start(argv(config), tls, 0o640, env)
        passfile = harness.write(self.f("ca.pass"), d.CA_PASSPHRASE + "\n")
        os.chmod(passfile, 0o644)
        text = harness.read(d.certd_config, "r").replace(
            "[ca]\n", '[ca]\npassphrase_file = "%s"\n' % passfile, 1)
        config = harness.write(self.f("certd-pass.toml"), text)
        self.refuses_to_start(argv(config), passfile, 0o644)
        # The same files at 0600 are accepted (the refusal is about the mode, nothing else).
        os.chmod(passfile, 0o600)
        os.chmod(ca, 0o600)
        os.chmod(tls, 0o600)
        p = harness.run([harness.certd_bin(), "--config", config, "init-ca"], check=False)
        self.assertIn(b"exist", p.stderr)  # gets past the passphrase file to the existing CA

    # -- init-ca
    def test_init_ca_creates_the_key_0600_from_the_first_byte_with_scrypt(self):
        d = self.d
        key, crt = self.f("new-ca.key"), self.f("new-ca.crt")
        text = harness.read(d.certd_config, "r")
        text = text.replace(d.membership_ca_key, key).replace(d.membership_ca_crt, crt)
        config = harness.write(self.f("certd-new.toml"), text)
        trace = self.f("init-ca.strace")
        # umask 0: whatever mode the open(2) asks for is the mode the file has at its first byte.
        harness.run(["sh", "-c", 'umask 0 && exec strace -f -qq -o "$0" -e trace=%file,fchmod,write "$@"',
                     trace, harness.certd_bin(), "--config", config, "init-ca"],
                    env={"BLINDLIST_CA_PASSPHRASE": d.CA_PASSPHRASE})
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(crt).st_mode), 0o644)
        calls = harness.read(trace, "r")
        about_key = [line for line in calls.splitlines() if '"%s"' % key in line]
        opens = [line for line in about_key if re.search(r"\bopen(at)?\(", line)]
        self.assertEqual(len(opens), 1, calls[-3000:])
        self.assertRegex(opens[0], r"open(at)?\(.*O_CREAT\|O_EXCL.*, 0600\) = \d+")
        self.assertFalse([line for line in about_key if "chmod" in line], about_key)
        # The key file: PBES2, scrypt, AES-256-CBC; openssl reads it with the passphrase.
        asn1 = harness.openssl("asn1parse", "-in", key).stdout.decode()
        for part in ("PBES2", ":scrypt", "aes-256-cbc", "INTEGER           :4000"):
            self.assertIn(part, asn1)
        self.assertNotIn("PBKDF2", asn1)
        harness.openssl("pkey", "-in", key, "-passin", "pass:" + d.CA_PASSPHRASE, "-noout")
        # Never over an existing CA.
        p = harness.run([harness.certd_bin(), "--config", config, "init-ca"], check=False,
                        env={"BLINDLIST_CA_PASSPHRASE": d.CA_PASSPHRASE})
        self.assertNotEqual(p.returncode, 0)

    # -- destroyed keys
    def test_a_destroyed_key_version_is_unusable_at_once_on_every_node(self):
        d = self.d
        other, ep = d.extra_groupd("hygiene-b", d.limits)
        d.create_group(G, "p256")
        token = d.admin("member", "add", G, "alice@example.org", "--token")["token"]
        cert = self.f("g1.crt")
        d.public_certificate(G, cert)
        post = harness.osl_encrypt(harness.write(self.f("old.txt"), harness.entity("old post")),
                                   self.f("old.smime"), cert)
        ri = harness.recipient_infos(harness.cms_of(post))[0]
        nodes = (d.g, ep)
        for node in nodes:  # each node unseals version 1 and keeps it
            r = node.post("/v1/groups/%s/unwrap" % quote(G), {"recipient_info": b64(ri)}, token=token)
            self.assertEqual((r.status, r.json.get("key_version")), (200, 1), r)
        d.admin("group", "rotate", G)
        d.admin("group", "destroy-key", G, "--version", "1")
        for node in nodes:
            r = node.post("/v1/groups/%s/unwrap" % quote(G), {"recipient_info": b64(ri)}, token=token)
            self.assertRefused(r, 400, "unwrap-failed")
        self.assertEqual(ep.get("/healthz").status, 200)
        self.assertIsNone(other.proc.poll())


if __name__ == "__main__":
    harness.main()
