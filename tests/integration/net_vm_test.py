#!/usr/bin/env python3
"""The guest's network through the daemon's own stack, in real VMs.

Each case boots a sandbox with `sandboxd-host run --net stack`, runs a shell
script in the guest (busybox: wget, nc, ping, nslookup) against servers on
the host's loopback (tests/support/net_peer.py) reached through a host
alias, and checks what came back.
"""
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.host_peer import HostPeer, blob_sha256  # noqa: E402

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
MB64 = 64 << 20


def run_guest(script, *options, timeout=600):
    # busybox's wget, nc and ping: the initramfs image
    argv = [HOST, "run", "--image", "mini", "--net", "stack", *options, "--", "sh", "-c", script]
    started = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    r.elapsed = time.monotonic() - started
    return r


class NetworkThroughTheStack(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = HostPeer()
        cls.alias = ["--host-alias", "host.test=127.0.0.1"]

    @classmethod
    def tearDownClass(cls):
        cls.peer.close()

    def check(self, r, code=0):
        self.assertEqual(r.returncode, code, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")

    def test_dhcp_dns_ping_udp_and_many_connections(self):
        p = self.peer.http_port
        script = f"""
set -e
ip -4 addr show eth0 | grep -o 'inet [0-9./]*'
ip route | grep default
cat /etc/resolv.conf | grep nameserver
ping -c 3 -W 2 10.0.2.2 | grep -c 'bytes from'
nslookup host.test 10.0.2.2 | grep -A1 'Name:' | grep -o 'Address[: 1]*[0-9.]*' | tail -1
nslookup round.trip 10.0.2.100:{self.peer.udp_port} | grep -o 192.0.2.7 | sed s/^/udp-/
i=0; ok=0
while [ $i -lt 100 ]; do
  if wget -q -O - http://host.test:{p}/small | grep -q 'hello from the host'; then ok=$((ok+1)); fi
  i=$((i+1))
done
echo sequential=$ok
i=0
while [ $i -lt 20 ]; do wget -q -O /tmp/par$i http://host.test:{p}/blob/100000 & i=$((i+1)); done
wait
echo parallel=$(cat /tmp/par* | wc -c)
"""
        r = run_guest(script, "--egress", "deny-all", *self.alias, "--net-stats")
        self.check(r)
        out = r.stdout
        self.assertIn("inet 10.0.2.15/24", out)
        self.assertIn("default via 10.0.2.2", out)
        self.assertIn("nameserver 10.0.2.2", out)
        self.assertRegex(out, r"(?m)^3$")  # three echo replies
        self.assertIn("10.0.2.100", out)  # the alias's address in the guest
        self.assertIn("udp-192.0.2.7", out)  # a UDP round trip to the host's server
        self.assertIn("sequential=100", out)
        self.assertIn(f"parallel={20 * 100000}", out)
        self.assertIn("tcp connected upstream: 120", r.stderr)

    def test_64_mib_download_and_upload_with_checksums(self):
        p = self.peer.http_port
        script = f"""
set -e
wget -q -O /tmp/blob http://host.test:{p}/blob/{MB64}
sha256sum /tmp/blob
# busybox wget sends an empty body with --post-file: nc carries the request.
printf 'POST /upload HTTP/1.0\r\nContent-Length: {MB64}\r\n\r\n' > /tmp/head
cat /tmp/head /tmp/blob | nc host.test {p} | tail -1
"""
        r = run_guest(script, "--memory", "512", "--egress", "deny-all", *self.alias)
        self.check(r)
        expected = blob_sha256(MB64)
        self.assertIn(f"{expected}  /tmp/blob", r.stdout)  # the download
        self.assertIn(f"{MB64} {expected}", r.stdout)       # the upload, as the host received it

    def test_large_mtu_link(self):
        p = self.peer.http_port
        script = f"""
set -e
cat /sys/class/net/eth0/mtu
wget -q -O - http://host.test:{p}/blob/{16 << 20} | sha256sum
"""
        r = run_guest(script, "--mtu", "65520", "--egress", "deny-all", *self.alias, "--net-stats")
        self.check(r)
        self.assertRegex(r.stdout, r"(?m)^65520$")
        self.assertIn(blob_sha256(16 << 20), r.stdout)

    def test_denied_destination_fails_fast(self):
        script = """
start=$(cut -d' ' -f1 /proc/uptime)
if echo | nc 1.2.3.4 80 >/dev/null 2>&1; then echo reached; else echo refused; fi
end=$(cut -d' ' -f1 /proc/uptime)
echo elapsed=$(echo "$start $end" | awk '{print $2 - $1}')
if nslookup example.com 10.0.2.2 >/dev/null 2>&1; then echo resolved; else echo unresolved; fi
nslookup example.com 10.0.2.2 2>&1 | tail -2
if wget -q -T 5 -O - http://10.0.2.2:8080/ >/dev/null 2>&1; then echo gateway-open; else echo gateway-closed; fi
"""
        r = run_guest(script, "--egress", "deny-all", "--net-stats")
        self.check(r)
        self.assertIn("refused", r.stdout)
        elapsed = float(re.search(r"elapsed=([0-9.]+)", r.stdout).group(1))
        self.assertLess(elapsed, 2.0, "a denied connection must be refused at once, not time out")
        self.assertIn("unresolved", r.stdout)
        self.assertIn("gateway-closed", r.stdout)
        self.assertRegex(r.stderr, r"tcp denied: [1-9]")


if __name__ == "__main__":
    unittest.main(verbosity=2)
