#!/usr/bin/env python3
"""`blindlist post` as a sender uses it day to day: a submission server with SMTP AUTH,
and groupd down.

Usage: post_submission_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]

The submission server is Debian's python3-aiosmtpd with STARTTLS and AUTH PLAIN/LOGIN
(submission_server.py), not Postfix: Postfix's SMTP AUTH needs a SASL back end (Cyrus
saslauthd or Dovecot's auth service) configured system-wide, which an unprivileged test
cannot set up; aiosmtpd speaks the same RFC 4954 exchange and records what the client
sent, so the test can also show that no password crossed a plaintext connection.
Checked:
  - PLAIN and LOGIN over verified STARTTLS, the password from a 0600 file;
  - a wrong password, a server that offers AUTH without TLS (nothing sent), a password
    file open to others: each refused with a clear error;
  - the list certificate is cached; with groupd stopped the post goes out with the cached
    certificate (said on stderr) and a member reads it; a cache that does not match the pin
    is refused;
  - a rotation: a newer certificate signed by the pinned deployment CA is accepted; without
    the deployment CA it is refused until --accept-new-certificate; a certificate that does
    not chain to the pinned deployment CA, and another deployment CA, are refused.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

LIST = "team@lists.test"
SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "submission_server.py")


class Submission:
    def __init__(self, directory, pki, *, tls=True, mechanisms="PLAIN,LOGIN", plaintext_auth=False,
                 password="s3cret pass"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.password_file = harness.write(os.path.join(directory, "server-password"), password + "\n")
        port_file = os.path.join(directory, "port")
        args = [lh.SYSTEM_PYTHON, SERVER_SCRIPT, "--dir", directory, "--port-file", port_file,
                "--user", "alice", "--password-file", self.password_file, "--mechanisms", mechanisms]
        if tls:
            args += ["--cert", pki.crt("submission"), "--key", pki.key("submission")]
        if plaintext_auth:
            args.append("--plaintext-auth")
        self.log = open(os.path.join(directory, "server.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        lh.wait_for(lambda: os.path.exists(port_file) or self.proc.poll() is not None, 60, "submission server")
        if self.proc.poll() is not None:
            raise AssertionError("submission server failed:\n" +
                                 harness.read(os.path.join(directory, "server.log")).decode())
        self.port = int(harness.read(port_file, "r"))

    def records(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return []
        return [json.loads(l) for l in harness.read(path, "r").splitlines() if l.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.log.close()


class PostSubmissionTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = harness.Deployment("post-submission", with_certd=False).start()
        cls.work = harness.tempdir("post-submission-work")
        d.pki.server("submission", "tls-ca")
        d.create_group(LIST, "p256")
        cls.token = d.admin("member", "add", LIST, "alice@example.org", "--token")["token"]
        cls.password = harness.write(os.path.join(cls.work, "password"), "s3cret pass\n")
        os.chmod(cls.password, 0o600)
        cls.servers = []

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.stop()

    def server(self, name, **kw):
        s = Submission(os.path.join(self.work, name), self.d.pki, **kw)
        self.servers.append(s)
        return s

    def user_env(self, name):
        """A sender's own XDG config and cache directories."""
        home = os.path.join(self.work, "home-" + name)
        os.makedirs(home, exist_ok=True)
        return {"XDG_CONFIG_HOME": os.path.join(home, "config"), "XDG_CACHE_HOME": os.path.join(home, "cache"),
                "HOME": home}

    def post(self, env, port, *extra, subject="hello", check=False, deployment_ca=True, auth=True):
        msg = harness.write(os.path.join(self.work, "msg-%s.eml" % subject),
                            harness.rfc5322(subject, "the body of " + subject, to=LIST))
        args = ["post", *self.d.server_args(), "--list", LIST, "--from", "alice@example.org",
                "--smtp", "127.0.0.1:%d" % port, "--smtp-ca", self.d.pki.crt("tls-ca"), "-i", msg]
        if auth:
            args += ["--smtp-user", "alice", "--smtp-password-file", self.password]
        if deployment_ca:
            args += ["--deployment-ca", self.d.pki.crt("deploy-ca")]
        p = self.d.bl(*args, *extra, env=env, check=check)
        return p.returncode, p.stderr.decode(errors="replace")

    def read_as_member(self, path):
        p = self.d.open(LIST, "tls", path, token=self.token)
        return p.stdout.decode(errors="replace")

    def test_auth_plain_and_login_over_starttls(self):
        env = self.user_env("auth")
        for mech in ("PLAIN", "LOGIN"):
            s = self.server("auth-" + mech, mechanisms=mech)
            rc, err = self.post(env, s.port, subject="auth-" + mech)
            self.assertEqual(rc, 0, err)
            auth = s.records("auth.jsonl")
            self.assertEqual(auth, [{"mechanism": mech, "ok": True, "tls": True, "login": "alice"}])
            (delivery,) = s.records("deliveries.jsonl")
            self.assertTrue(delivery["tls"], delivery)
            self.assertEqual(delivery["login"], "alice")
            self.assertEqual(delivery["rcpt"], [LIST])
            posted = os.path.join(s.dir, delivery["file"])
            self.assertIn(b"application/pkcs7-mime", harness.read(posted))
            self.assertNotIn(b"the body of", harness.read(posted))
            self.assertIn("the body of auth-" + mech, self.read_as_member(posted))

    def test_auth_refusals(self):
        env = self.user_env("refusals")
        # A wrong password: the server's refusal, nothing sent.
        s = self.server("wrong", password="another password")
        rc, err = self.post(env, s.port, subject="wrong")
        self.assertNotEqual(rc, 0)
        self.assertIn("refused the login", err)
        self.assertEqual(s.records("deliveries.jsonl"), [])
        # AUTH offered without STARTTLS: the password is never sent.
        s = self.server("plaintext", tls=False, plaintext_auth=True)
        rc, err = self.post(env, s.port, subject="plain")
        self.assertNotEqual(rc, 0)
        self.assertIn("does not offer STARTTLS", err)
        self.assertEqual(s.records("auth.jsonl"), [])
        self.assertEqual(s.records("deliveries.jsonl"), [])
        # A password file others can read; a user without a CA to verify the server.
        s = self.server("modes")
        loose = harness.write(os.path.join(self.work, "loose-password"), "s3cret pass\n")
        os.chmod(loose, 0o644)
        rc, err = self.post(env, s.port, "--smtp-password-file", loose, subject="loose", auth=False,
                            deployment_ca=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("go together", err)
        rc, err = self.post(env, s.port, "--smtp-user", "alice", "--smtp-password-file", loose,
                            subject="loose2", auth=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("mode 0644", err)
        self.assertEqual(s.records("auth.jsonl"), [])
        # The password is not an option.
        p = self.d.bl("post", "--smtp-password", "x", check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_cached_certificate_while_groupd_is_down(self):
        env = self.user_env("offline")
        s = self.server("offline")
        # Never posted before and groupd down: nothing cached, a clear refusal.
        self.assertEqual(self.post(env, s.port, subject="first")[0], 0)
        cache = os.path.join(env["XDG_CACHE_HOME"], "blindlist", "lists", LIST + ".pem")
        self.assertTrue(os.path.exists(cache))
        self.assertTrue(os.path.exists(cache[:-4] + ".ca.pem"))
        d = self.d
        self.assertEqual(d.groupd.stop(), 0)
        try:
            rc, err = self.post(env, s.port, subject="offline")
            self.assertEqual(rc, 0, err)
            self.assertIn("groupd cannot be reached", err)
            self.assertIn("using the cached certificate of " + LIST, err)
            # Another user with no cache cannot post.
            rc, err = self.post(self.user_env("nocache"), s.port, subject="nocache")
            self.assertNotEqual(rc, 0)
            self.assertIn("no cached certificate", err)
            # A cache that does not hold the pinned certificate is refused.
            saved = harness.read(cache)
            harness.write(cache, harness.read(d.pki.crt("tls-ca")))
            rc, err = self.post(env, s.port, subject="swapped")
            self.assertNotEqual(rc, 0)
            self.assertIn("does not hold the pinned certificate", err)
            harness.write(cache, saved)
        finally:
            d.restart_groupd()
        files = [r["file"] for r in s.records("deliveries.jsonl")]
        self.assertEqual(len(files), 2, files)
        self.assertIn("the body of offline", self.read_as_member(os.path.join(s.dir, files[1])))

    def test_rotation_and_foreign_certificates(self):
        s = self.server("rotation")
        pinned_ca = self.user_env("rot-ca")
        no_ca = self.user_env("rot-noca")
        other = self.user_env("rot-other")
        self.d.pki.make_ca("other-ca", "Another deployment CA")
        self.assertEqual(self.post(pinned_ca, s.port, subject="before-ca")[0], 0)
        self.assertEqual(self.post(no_ca, s.port, subject="before-noca", deployment_ca=False)[0], 0)
        # A sender who pinned another CA: the served certificate does not chain to it.
        rc, err = self.post(other, s.port, "--deployment-ca", self.d.pki.crt("other-ca"), subject="other",
                            deployment_ca=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("not a valid certificate of the pinned deployment CA", err)
        # A different deployment CA than the pinned one.
        rc, err = self.post(pinned_ca, s.port, "--deployment-ca", self.d.pki.crt("other-ca"),
                            subject="ca-swap", deployment_ca=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("is not the one pinned", err)

        time.sleep(1.1)  # the new certificate's notBefore is later
        self.d.admin("group", "rotate", LIST)
        # Pinned CA (given again, or only pinned): the rotation is accepted.
        rc, err = self.post(pinned_ca, s.port, subject="after-ca", deployment_ca=False)
        self.assertEqual(rc, 0, err)
        self.assertIn("key rotation", err)
        # No CA: refused loudly until the sender accepts it.
        rc, err = self.post(no_ca, s.port, subject="after-noca", deployment_ca=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("changed (pinned", err)
        rc, err = self.post(no_ca, s.port, "--accept-new-certificate", subject="after-noca2",
                            deployment_ca=False)
        self.assertEqual(rc, 0, err)
        self.assertIn("accepted the new certificate", err)
        self.assertEqual(len(s.records("deliveries.jsonl")), 4)


if __name__ == "__main__":
    harness.main()
