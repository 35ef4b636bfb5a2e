#!/usr/bin/env python3
"""Two groupd and two listd on one real PostgreSQL server (scale-out).

Usage: multinode_test.py BLINDLIST GROUPD CERTD LISTD [unittest args]
Needs BLINDLIST_TEST_STORE=postgres and BLINDLIST_PG_URL_FILE (the ctest
fixture `postgres`).

The deployment (DESIGN.md, "Storage and scale"): groupd A and groupd B share
one PostgreSQL database (harness.Deployment + extra_groupd); listd A and listd
B share another (their list database), each with its own spool and ports, and
both hand delivery to one SMTP sink (aiosmtpd) as their smarthost. Checked:
  1. a member removed through one groupd is refused (403 not-a-member) by the
     other on the very next request, in both directions (mTLS members), and a
     removed token member gets 401 from the other node; both nodes' audit show
     the refusals;
  2. a list created once in the shared database serves both listd: posts sent
     alternately to A and B reach every (post, member) pair exactly once, the
     spools drain, and a member reads a post forwarded by B through groupd A;
  3. listd B stopped mid-run while posts stream in (SIGTERM, then kill -9 in a
     second round), restarted on the same ports with the same spool: every
     post that got a 250 reaches every member (at least once); senders retry
     posts that got no 250, as an MTA would. The smarthost is taken away just
     before the stop, so B's spool surely holds accepted, undelivered posts
     (checked); it comes back on the same port with B. listd A keeps taking
     posts meanwhile, without a miss.
"""

import hashlib
import json
import os
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import listd_harness as lh  # noqa: E402

GROUP = "multinode@example.org"
LIST = GROUP
LIST_MEMBERS = ["m%02d@example.org" % i for i in range(10)]
SENDER = LIST_MEMBERS[0]  # posting policy "members": the sender is on the list


class PermanentFailure(AssertionError):
    pass


class MultiNode(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls._set_up()
        except BaseException:
            cls.tearDownClass()  # unittest skips it when setUpClass fails: no sink or database left over
            raise

    @classmethod
    def _set_up(cls):
        if harness.store_kind() != "postgres":
            raise AssertionError("multinode_test needs BLINDLIST_TEST_STORE=postgres (and BLINDLIST_PG_URL_FILE): "
                                 "several nodes share state only through PostgreSQL")
        cls.drop_lists_db = lambda: None
        cls.sinks = []
        cls.listd = {}
        d = cls.d = harness.Deployment("multinode", with_certd=False).start()
        cls.work = harness.tempdir("multinode-work")
        p = d.pki
        # groupd B: same store, same keys (master key file), its own port and log.
        cls.groupd_b, cls.gb = d.extra_groupd("b", None)
        cls.ga = d.g
        for name, ep in (("A", cls.ga), ("B", cls.gb)):
            r = ep.get("/healthz")
            assert r.status == 200 and r.json.get("store") == "postgresql", (name, r)
        assert cls.ga.port != cls.gb.port

        p.make_ca("member-ca", "Integration member CA")
        cls.alice = (p.member("alice", "member-ca", "ec", "alice@example.org"), p.key("alice"))
        cls.bob = (p.member("bob", "member-ca", "rsa2048", "bob@example.org"), p.key("bob"))
        d.create_group(GROUP, "p256")
        cls.cert = os.path.join(cls.work, "group.crt")
        d.public_certificate(GROUP, cls.cert)
        cls.tokens = {}
        d.admin("member", "add", GROUP, "alice@example.org", "--cert", cls.alice[0])
        d.admin("member", "add", GROUP, "bob@example.org", "--cert", cls.bob[0])
        for m in ("carol@example.org", "dora@example.org"):
            cls.tokens[m] = d.admin("member", "add", GROUP, m, "--token")["token"]

        # listd's own database, shared by listd A and listd B.
        cls.lists_url, cls.drop_lists_db = harness._postgres_database("multinode_lists")
        assert cls.lists_url != d.store_url
        cls.sink = lh.Sink(os.path.join(cls.work, "sink-0")).start()
        cls.sinks.append(cls.sink)  # every incarnation of the smarthost (one directory each)
        for name in ("a", "b"):
            l = lh.Listd(d, name, store_url=cls.lists_url, lmtp=False,
                         delivery={"mode": "smtp", "smarthost": "127.0.0.1:%d" % cls.sink.port,
                                   "starttls": "never"})
            # A fixed status port too, so a restart comes back on exactly the same ports.
            l.sections["status"]["listen"] = "127.0.0.1:%d" % lh.free_port()
            l.write_config()
            cls.listd[name] = l
        # The list is created once, through listd A's store: the same database serves B.
        cls.listd["a"].lists("create", LIST, "--group", GROUP, "--certificate", cls.cert,
                             "--description", "Multi-node list")
        cls.listd["a"].lists("member", "add", LIST, *LIST_MEMBERS)
        for l in cls.listd.values():
            l.start()
        # The post every test sends: one ciphertext, a distinct outer Subject per post.
        base = lh.make_post(cls.work, cls.cert, "multinode-base", "Hello from both exploders.", to=LIST,
                            sender=SENDER)
        head, sep, body = base.partition(b"\r\n\r\n")
        cls.post_head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.startswith(b"Subject:"))
        cls.post_body = sep + body
        cls._subjects = {}  # (sink directory, file name) -> the post tag in its Subject (cache)

    @classmethod
    def tearDownClass(cls):
        bad = []
        for name, l in cls.listd.items():
            if l.daemon is not None and l.daemon.exit_status is None:
                status = l.stop()
                if status != 0:
                    bad.append("listd %s exited with %r after SIGTERM" % (name, status))
        for sink in cls.sinks:
            sink.stop()
        cls.drop_lists_db()
        if bad:
            raise AssertionError("; ".join(bad))

    # -- helpers
    def open_at(self, ep, infile, *, cert=None, token=None, check=True):
        """`blindlist open --method tls` (path F) against groupd `ep`."""
        return self.d.bl("open", *self.d.server_args(endpoint=ep, token=token, cert=cert), "--group", GROUP,
                         "--method", "tls", "-i", infile, check=check)

    def admin_at(self, ep, *args):
        p = self.d.bl("admin", *self.d.server_args(endpoint=ep, token=self.d.admin_token), "--json", *args)
        return p

    def audit_at(self, ep):
        r = ep.get("/v1/groups/%s/audit?limit=10000" % harness.quote(GROUP), token=self.d.admin_token)
        self.assertEqual(r.status, 200, r)
        return r.json["audit"]

    def post(self, tag):
        return b"Subject: mn-" + tag.encode() + b"\r\n" + self.post_head + self.post_body

    def send(self, port, tag, deadline_s=300):
        """Sends post `tag` to listd on `port` until it gets a 250 (retrying as an MTA would).

        Returns the number of attempts without a 250. A 5xx is a permanent refusal: a failure.
        """
        msg = self.post(tag)
        misses = 0
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                s = smtplib.SMTP("127.0.0.1", port, timeout=60)
                try:
                    refused = s.sendmail(SENDER, [LIST], msg)  # returns once DATA got its 250
                finally:
                    # The 250 is what counts: a stopping server may answer QUIT with 421 or hang up.
                    try:
                        s.quit()
                    except (OSError, smtplib.SMTPException):
                        s.close()
                if refused:
                    raise PermanentFailure("post %s: recipients refused %r" % (tag, refused))
                return misses
            except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as e:
                codes = [e.smtp_code] if isinstance(e, smtplib.SMTPResponseException) else \
                    [c for c, _ in e.recipients.values()]
                if any(500 <= c < 600 for c in codes):
                    raise PermanentFailure("post %s permanently refused by port %d: %r" % (tag, port, e))
            except (OSError, smtplib.SMTPException):
                pass  # connection refused or dropped, no reply: no 250, try again
            misses += 1
            if time.monotonic() > deadline:
                raise AssertionError("post %s got no 250 from port %d within %ds" % (tag, port, deadline_s))
            time.sleep(0.2)

    def sink_records(self):
        return [(sink, rec) for sink in self.sinks for rec in sink.deliveries()]

    def restart_sink(self):
        """The smarthost back on the same port, writing to a new directory (smtp_sink.py numbers its
        files from 1 again when restarted: in the old directory it would overwrite what it kept)."""
        sink = lh.Sink(os.path.join(self.work, "sink-%d" % len(self.sinks)), port=self.sink.port).start()
        type(self).sink = sink
        self.sinks.append(sink)

    def sink_pairs(self):
        """{post tag: {member: number of deliveries}} of every post of this test at the sink."""
        out = {}
        for sink, rec in self.sink_records():
            f = (sink.dir, rec["file"])
            if f not in self._subjects:
                text = sink.message(rec["file"])
                i = text.find(b"Subject: mn-")
                tag = None
                if i >= 0:
                    start = i + len(b"Subject: mn-")
                    tag = text[start:text.find(b"\r\n", start)].decode()
                self._subjects[f] = tag
            tag = self._subjects[f]
            if tag is not None:
                per = out.setdefault(tag, {})
                per[rec["rcpt"]] = per.get(rec["rcpt"], 0) + 1
        return out

    def wait_all_delivered(self, tags, timeout=600):
        def missing():
            pairs = self.sink_pairs()
            return [(t, m) for t in tags for m in LIST_MEMBERS if pairs.get(t, {}).get(m, 0) == 0]
        deadline = time.monotonic() + timeout
        while True:
            left = missing()
            if not left:
                return self.sink_pairs()
            if time.monotonic() > deadline:
                self.fail("%d (post, member) pairs never reached the sink, e.g. %r" % (len(left), left[:10]))
            time.sleep(2)

    def metric(self, l, name):
        """The sum of every series of metric `name` on listd `l`'s status port."""
        status, body = l.http("/metrics")
        self.assertEqual(status, 200)
        total = 0
        for line in body.decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.split()[-1])
        return total

    def spool_size(self, l):
        return self.metric(l, "listd_spool_incoming") + self.metric(l, "listd_spool_active")

    def wait_spools_drained(self):
        for name, l in self.listd.items():
            lh.wait_for(lambda l=l: self.spool_size(l) == 0, 300, "listd %s's spool to drain" % name)

    # -- 1. membership is the store's, not a node's
    def test_1_member_removed_through_one_groupd_is_refused_by_the_other(self):
        ga, gb = self.ga, self.gb
        post = harness.osl_encrypt(harness.write(os.path.join(self.work, "f-entity.txt"),
                                                 harness.entity("Path F across nodes.")),
                                   os.path.join(self.work, "f-post.smime"), self.cert)
        # Both members read through both nodes.
        for who in (self.alice, self.bob):
            for ep in (ga, gb):
                self.assertIn(b"Path F across nodes.", self.open_at(ep, post, cert=who).stdout)

        def refused_caller(member):
            fp = hashlib.sha256(harness.cert_der(member[0])).hexdigest()
            return "cert-sha256:" + fp[:16]

        # alice: read at A, removed through B, refused by A on the very next request.
        self.assertIn(b"Path F across nodes.", self.open_at(ga, post, cert=self.alice).stdout)
        self.admin_at(gb, "member", "remove", GROUP, "alice@example.org")
        p = self.open_at(ga, post, cert=self.alice, check=False)
        self.assertCliRefused(p, "403", "not-a-member")
        # ... and vice versa: bob read at B, removed through A, refused by B.
        self.assertIn(b"Path F across nodes.", self.open_at(gb, post, cert=self.bob).stdout)
        self.admin_at(ga, "member", "remove", GROUP, "bob@example.org")
        p = self.open_at(gb, post, cert=self.bob, check=False)
        self.assertCliRefused(p, "403", "not-a-member")
        # The raw API says the same on both nodes.
        for who in (self.alice, self.bob):
            for ep in (ga, gb):
                r = ep.post("/v1/groups/%s/unwrap" % harness.quote(GROUP),
                            {"recipient_info": harness.b64(harness.recipient_infos(harness.cms_of(post))[0])},
                            cert=who)
                self.assertRefused(r, 403, "not-a-member")
        # A token member: removed through B, its token is refused by A.
        carol = self.tokens["carol@example.org"]
        self.assertIn(b"Path F across nodes.", self.open_at(ga, post, token=carol).stdout)
        self.admin_at(gb, "member", "remove", GROUP, "carol@example.org")
        p = self.open_at(ga, post, token=carol, check=False)
        self.assertCliRefused(p, "401")
        # Both nodes' roster agrees.
        for ep in (ga, gb):
            members = [m["address"] for m in
                       json.loads(self.admin_at(ep, "member", "list", GROUP).stdout)["members"]]
            self.assertEqual(sorted(members), ["dora@example.org"], members)
        # The refusals are in the audit, whichever node is asked.
        for ep in (ga, gb):
            records = self.audit_at(ep)
            for who in (self.alice, self.bob):
                self.assertAudited(self.d, GROUP, "unwrap", "not-a-member", caller=refused_caller(who),
                                   records=records)
            self.assertAudited(self.d, GROUP, "member-remove", "ok", records=records)
            self.assertAudited(self.d, GROUP, "unwrap", "bad-token", records=records)

    # -- 2. either exploder serves the list
    def test_2_posts_through_both_listd_reach_every_member_once(self):
        a, b = self.listd["a"], self.listd["b"]
        tags = ["both-%02d" % i for i in range(24)]
        for i, tag in enumerate(tags):
            misses = self.send((a if i % 2 == 0 else b).smtp_port, tag)
            self.assertEqual(misses, 0, "listd refused or dropped post %s with both nodes up" % tag)
        pairs = self.wait_all_delivered(tags)
        self.wait_spools_drained()
        time.sleep(3)  # anything more would be a duplicate: give it a moment to show
        pairs = self.sink_pairs()
        dups = {(t, m): n for t in tags for m, n in pairs.get(t, {}).items() if n != 1}
        self.assertEqual(dups, {}, "duplicated (post, member) pairs with no node stopped")
        for t in tags:
            self.assertEqual(set(pairs[t]), set(LIST_MEMBERS), "post %s went to someone not on the list" % t)
        # Each node prepared exactly the posts it took (its own spool), none of the other's.
        for name, l in (("a", a), ("b", b)):
            self.assertTrue(l.daemon.proc.poll() is None, "listd %s died" % name)
            self.assertEqual(self.metric(l, "listd_posts_prepared_total"), len(tags) // 2,
                             "posts prepared by listd %s" % name)
        # A member reads a post forwarded by listd B through groupd A (and by A through groupd B).
        by_tag = {}
        for sink, rec in self.sink_records():
            tag = self._subjects.get((sink.dir, rec["file"]))
            if tag in ("both-00", "both-01"):
                by_tag[tag] = (sink, rec["file"])
        dora = self.tokens["dora@example.org"]
        for tag, ep in (("both-01", self.ga), ("both-00", self.gb)):  # both-01 went through listd B
            sink, name = by_tag[tag]
            delivered = sink.message(name)
            self.assertEqual(lh.smime_body(delivered), lh.smime_body(self.post(tag)), "ciphertext changed")
            f = harness.write(os.path.join(self.work, "delivered-%s.eml" % tag), delivered)
            self.assertIn(b"Hello from both exploders.", self.open_at(ep, f, token=dora).stdout)

    # -- 3. stopping one exploder mid-run loses nothing
    def _stop_mid_run(self, how):
        """Posts stream into listd B from SENDERS_B connections at once (and into listd A from one);
        once STOP_AFTER posts got their 250 from B, B is stopped (`how`), left down a moment, and
        restarted on the same ports with the same spool."""
        a, b = self.listd["a"], self.listd["b"]
        tags_b = ["%s-b-%02d" % (how, i) for i in range(45)]
        tags_a = ["%s-a-%02d" % (how, i) for i in range(10)]
        queue_b = list(reversed(tags_b))
        lock = threading.Lock()
        accepted_b = []
        misses = {"a": 0, "b": 0}
        errors = []
        time_to_stop = threading.Event()
        stopped = threading.Event()
        restarted = threading.Event()
        statuses = []
        pending = []  # posts in B's spool while it was down
        STOP_AFTER = 10

        def stopper():
            try:
                if not time_to_stop.wait(600):
                    raise AssertionError("listd B never accepted %d posts" % STOP_AFTER)
                if errors:
                    return
                # The smarthost goes away first, so that B surely holds accepted, undelivered
                # posts in its spool when it is stopped.
                self.sink.stop()
                lh.wait_for(lambda: len(accepted_b) >= STOP_AFTER + 6 or errors, 600,
                            "more posts accepted by listd B", interval=0.05)
                if errors:
                    return
                if how == "sigterm":
                    statuses.append(b.stop())
                else:
                    b.kill9()
                    statuses.append("killed")
                stopped.set()
                pending.append(sum(len(os.listdir(os.path.join(b.spool, sub)))
                                   for sub in ("incoming", "active")
                                   if os.path.isdir(os.path.join(b.spool, sub))))
                time.sleep(2)  # posts meant for B find nobody listening meanwhile
                self.restart_sink()
                b.start()
                restarted.set()
            except BaseException as e:  # noqa: B902 - reported by the main thread
                errors.append(e)
                time_to_stop.set()

        def sender_b():
            try:
                while not errors:
                    with lock:
                        if not queue_b:
                            return
                        tag = queue_b.pop()
                    m = self.send(b.smtp_port, tag)
                    with lock:
                        misses["b"] += m
                        accepted_b.append(tag)
                        if len(accepted_b) >= STOP_AFTER:
                            time_to_stop.set()
                    time.sleep(0.1)  # a steady stream, so the stop falls in the middle of it
            except BaseException as e:  # noqa: B902
                errors.append(e)
                time_to_stop.set()

        def sender_a():
            try:
                for tag in tags_a:
                    misses["a"] += self.send(a.smtp_port, tag)
                    time.sleep(0.3)
            except BaseException as e:  # noqa: B902
                errors.append(e)

        threads = [threading.Thread(target=stopper), threading.Thread(target=sender_a)]
        threads += [threading.Thread(target=sender_b) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
        time_to_stop.set()
        if errors:
            raise errors[0]
        self.assertTrue(stopped.is_set() and restarted.is_set(), "listd B was not stopped and restarted")
        if how == "sigterm":
            self.assertEqual(statuses, [0], "listd B's exit status after SIGTERM")
        self.assertGreater(pending[0], 0, "listd B's spool was empty when it stopped: nothing was at stake")
        self.assertEqual(sorted(accepted_b), sorted(tags_b), "every post to B got its 250 in the end")
        self.assertTrue(b.daemon.proc.poll() is None, "listd B did not come back")
        self.assertEqual(b.daemon.port, b.smtp_port)
        # listd A never missed a beat.
        self.assertEqual(misses["a"], 0, "listd A refused or dropped posts while B was down")
        pairs = self.wait_all_delivered(tags_b + tags_a)
        self.wait_spools_drained()
        # Nothing reached anyone not on the list; duplicates are allowed (at-least-once) after a stop.
        for t in tags_b + tags_a:
            self.assertEqual(set(pairs[t]), set(LIST_MEMBERS), t)
        dups = sum(1 for t in tags_b for n in pairs[t].values() if n > 1)
        sys.stderr.write("\n[%s] posts in B's spool while down: %d; attempts to B without a 250: %d; "
                         "duplicated (post, member) pairs: %d\n" % (how, pending[0], misses["b"], dups))
        self.assertGreater(misses["b"], 0, "no post to listd B ever went without a 250: B was not stopped "
                                           "mid-run")

    def test_3a_sigterm_listd_b_mid_run_loses_nothing(self):
        self._stop_mid_run("sigterm")

    def test_3b_kill9_listd_b_mid_run_loses_nothing(self):
        self._stop_mid_run("kill9")


if __name__ == "__main__":
    harness.main()
