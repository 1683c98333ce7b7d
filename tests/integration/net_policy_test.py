#!/usr/bin/env python3
"""Network policy rules in real VMs: a sandbox's flows judged by the name its
own DNS answer pinned to the address, through `sandboxd-host run --policy`
and through the daemon's sandbox.create / sandbox.set_network.

The guest is the `mini` image (busybox: wget, nc, nslookup); the servers are
on the host's loopback (tests/support/net_peer.py), reached through host
aliases, which the rules judge by their names like any other name.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.client import is_event  # noqa: E402
from sandboxd_harness.daemon_case import DaemonTestCase  # noqa: E402
from sandboxd_harness.host_peer import HostPeer  # noqa: E402

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
ALIASES = ["allowed.test", "denied.test", "unlisted.test", "api.wild.test"]


def alias_args():
    out = []
    for name in ALIASES:
        out += ["--host-alias", f"{name}=127.0.0.1"]
    return out


def counter(stderr, name):
    m = re.search(rf"{re.escape(name)}: (\d+)", stderr)
    return int(m.group(1)) if m else None


class RulesThroughRun(unittest.TestCase):
    """One VM per policy, a script of probes, the network counters after."""

    @classmethod
    def setUpClass(cls):
        cls.peer = HostPeer()
        cls.scratch = tempfile.mkdtemp(prefix="sandboxd-policy-")

    @classmethod
    def tearDownClass(cls):
        cls.peer.close()

    def run_with(self, policy, script):
        path = os.path.join(self.scratch, f"policy-{time.monotonic_ns()}.json")
        with open(path, "w") as f:
            json.dump(policy, f)
        argv = [HOST, "run", "--image", "mini", "--net", "stack", "--policy", path, *alias_args(), "--net-stats",
                "--", "sh", "-c", script]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def test_names_ports_wildcards_literals_and_dns(self):
        p = self.peer.http_port
        policy = {"rules": [
            {"host": "allowed.test", "ports": [p], "verdict": "allow"},
            {"host": "denied.test", "verdict": "deny"},
            {"host": "*.wild.test", "verdict": "allow", "name": "wildcard"},
        ]}
        script = f"""
probe() {{ if "$@" >/dev/null 2>&1; then echo "$1-ok"; else echo "$1-no"; fi; }}
fast() {{
  start=$(cut -d' ' -f1 /proc/uptime)
  if echo | nc "$@" >/dev/null 2>&1; then r=open; else r=refused; fi
  end=$(cut -d' ' -f1 /proc/uptime)
  echo "$r $(echo "$start $end" | awk '{{print $2 - $1}}')"
}}
echo allowed=$(wget -q -O - http://allowed.test:{p}/small)
echo wild=$(wget -q -O - http://api.wild.test:{p}/small)
echo port=$(fast allowed.test {p + 1})
echo literal=$(fast 1.2.3.4 80)
for n in denied.test unlisted.test wild.test; do
  if nslookup $n 10.0.2.2 >/dev/null 2>&1; then echo $n=resolved; else echo $n=unresolved; fi
done
nslookup -type=txt allowed.test 10.0.2.2 2>&1 | grep -c 'text =' | sed s/^/txt-records=/
nslookup -type=aaaa allowed.test 10.0.2.2 2>&1 | grep -c 'has AAAA' | sed s/^/aaaa-records=/
# UDP needs a rule that says udp; another resolver is not reachable.
if nslookup -timeout=1 -retry=1 round.trip 10.0.2.100:{self.peer.udp_port} >/dev/null 2>&1; then echo udp=answered; else echo udp=silent; fi
if nslookup -timeout=1 -retry=1 example.com 8.8.8.8 >/dev/null 2>&1; then echo other-dns=answered; else echo other-dns=silent; fi
"""
        r = self.run_with(policy, script)
        out = r.stdout
        self.assertIn("allowed=hello from the host", out)
        self.assertIn("wild=hello from the host", out)
        for probe in ("port", "literal"):
            m = re.search(rf"{probe}=(\w+) ([0-9.]+)", out)
            self.assertIsNotNone(m, out)
            self.assertEqual(m.group(1), "refused", out)
            self.assertLess(float(m.group(2)), 2.0, f"{probe}: a denied connection must be refused at once")
        self.assertIn("denied.test=unresolved", out)
        self.assertIn("unlisted.test=unresolved", out)
        self.assertIn("wild.test=unresolved", out)  # *.wild.test is not wild.test
        self.assertIn("txt-records=0", out)
        self.assertIn("aaaa-records=0", out)
        self.assertIn("udp=silent", out)
        self.assertIn("other-dns=silent", out)
        self.assertGreaterEqual(counter(r.stderr, "tcp denied"), 2, r.stderr)
        self.assertGreaterEqual(counter(r.stderr, "udp flows denied"), 2, r.stderr)

    def test_a_name_that_resolves_to_loopback_is_refused(self):
        # `localhost` resolves on the host to 127.0.0.1 (/etc/hosts): an
        # allowed name whose answer is loopback must give the guest nothing.
        policy = {"rules": [{"host": "*", "verdict": "allow"}], "denied_names": "refused"}
        script = """
nslookup localhost 10.0.2.2 2>&1 | tail -3
if nslookup localhost 10.0.2.2 >/dev/null 2>&1; then echo localhost=resolved; else echo localhost=unresolved; fi
"""
        r = self.run_with(policy, script)
        self.assertIn("localhost=unresolved", r.stdout)
        self.assertNotIn("127.0.0.1", r.stdout.replace("10.0.2.2", ""))
        self.assertGreaterEqual(counter(r.stderr, "dns answers refused"), 1, r.stderr)

    def test_a_bad_policy_file_is_refused_before_anything_boots(self):
        path = os.path.join(self.scratch, "bad.json")
        with open(path, "w") as f:
            f.write('{"rules": [{"host": "x.test", "ports": [70000], "verdict": "allow"}]}')
        r = subprocess.run([HOST, "run", "--image", "mini", "--net", "stack", "--policy", path, "--", "true"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rules[0].ports[0]", r.stderr)


class RulesThroughTheDaemon(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = HostPeer()
        cls.addClassCleanup(cls.peer.close)
        cls.start_daemon(pool_size=0, network="stack", name="net-policy",
                         extra_args=["--log-level", "info", *alias_args()])

    def fetch(self, sandbox, name):
        exit_event, out, err = self.client.run(
            sandbox, ["curl", "-sS", "-m", "10", f"http://{name}:{self.peer.http_port}/small"], timeout=300)
        return exit_event.get("exit_code"), out.decode(errors="replace")

    def test_create_with_rules_then_replace_them(self):
        rules = {"rules": [{"host": "allowed.test", "verdict": "allow"}]}
        # The Debian image, for curl's clear exit codes (busybox wget -T in
        # `mini` has been seen to die of SIGSEGV on a completed transfer).
        created = self.client.call("sandbox.create", network=rules)["sandbox"]
        sid = created["id"]
        self.addCleanup(self.client.call, "sandbox.destroy", sandbox=sid)
        self.assertEqual(created["egress"], "policy")
        self.assertEqual(created["network"]["rules"][0]["host"], "allowed.test")
        self.client.call("sandbox.subscribe", sandbox=sid)
        self.assertEqual(self.fetch(sid, "allowed.test"), (0, "hello from the host\n"))
        self.assertNotEqual(self.fetch(sid, "denied.test")[0], 0)
        self.assertNotEqual(self.fetch(sid, "192.0.2.10")[0], 0)
        # Each new flow and its verdict reach the sandbox's subscribers.
        def flow(**members):
            return self.client.wait_inbox(
                lambda f: is_event(f, "net.flow") and all(f.get(k) == v for k, v in members.items()), 120)
        allowed = flow(sandbox=sid, name="allowed.test", verdict="allowed")
        self.assertEqual(allowed["connected_to"], f"127.0.0.1:{self.peer.http_port}")
        self.assertEqual(allowed["to"], f"10.0.2.100:{self.peer.http_port}")
        self.assertEqual(allowed["protocol"], "tcp")
        literal = flow(sandbox=sid, to=f"192.0.2.10:{self.peer.http_port}")
        self.assertEqual((literal["verdict"], literal["name"], literal["connected_to"]), ("denied", None, None))
        self.assertIn("denied by default", literal["reason"])

        # New rules apply to the next flow; the Sandbox object shows them.
        swapped = {"rules": [{"host": "denied.test", "verdict": "allow"}]}
        changed = self.client.call("sandbox.set_network", sandbox=sid, network=swapped)["sandbox"]
        self.assertEqual(changed["network"]["rules"][0]["host"], "denied.test")
        self.assertEqual(self.fetch(sid, "denied.test"), (0, "hello from the host\n"))
        self.assertNotEqual(self.fetch(sid, "allowed.test")[0], 0)
        got = self.client.call("sandbox.get", sandbox=sid)["sandbox"]
        self.assertEqual(got["network"], changed["network"])

        # A mode is a policy too: deny-all still reaches the host aliases.
        moded = self.client.call("sandbox.set_network", sandbox=sid, egress="deny-all")["sandbox"]
        self.assertEqual((moded["egress"], moded["network"]), ("deny-all", None))
        self.assertEqual(self.fetch(sid, "allowed.test")[0], 0)

    def test_refusals(self):
        bad = self.client.error_of("sandbox.create", image="mini",
                                   network={"rules": [{"address": "10.0.0.1/8", "verdict": "allow"}]})
        self.assertEqual((bad["code"], bad["field"]), ("bad_request", "network.rules[0].address"))
        bad = self.client.error_of("sandbox.create", image="mini", egress="deny-all", network={"rules": []})
        self.assertEqual((bad["code"], bad["field"]), ("bad_request", "network"))
        bad = self.client.error_of("sandbox.create", image="mini", network="allow everything")
        self.assertEqual(bad["code"], "bad_request")
        bad = self.client.error_of("sandbox.set_network", sandbox="sb-000000000000", network={"rules": []})
        self.assertEqual(bad["code"], "not_found")
        bad = self.client.error_of("sandbox.set_network", sandbox="sb-000000000000")
        self.assertEqual((bad["code"], bad["field"]), ("bad_request", "network"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
