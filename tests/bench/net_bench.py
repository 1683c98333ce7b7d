#!/usr/bin/env python3
"""Guest network throughput: the daemon's stack against QEMU's slirp.

One run, the same guest image, the same host server (tests/support/net_peer.py
on 127.0.0.1): each peer boots a sandbox that, timed inside the guest,
downloads 64 MiB, uploads 64 MiB, and opens 100 HTTP connections one after
another. Peers: our stack at MTU 1500 and 65520, slirp (QEMU's -netdev user)
at its MTU 1500. Prints MB/s, connections per second, host CPU per MB, and
the ratios ours/slirp.
"""
import os
import re
import subprocess
import sys

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "net_peer.py")
SIZE = 64 << 20
CONNECTIONS = 100
# The first host alias's address in the guest: URLs use it, as slirp's use
# 10.0.2.2, so neither peer pays for DNS in these figures.
ALIAS_IP = "10.0.2.100"

SCRIPT = """
set -e
t() {{ cut -d' ' -f1 /proc/uptime; }}
a=$(t); wget -q -O /dev/null http://{host}:{port}/blob/{size}; b=$(t)
echo download $a $b
wget -q -O /tmp/blob http://{host}:{port}/blob/{size}
printf 'POST /upload HTTP/1.0\r\nContent-Length: {size}\r\n\r\n' > /tmp/head
a=$(t); cat /tmp/head /tmp/blob | nc {host} {port} > /tmp/reply; b=$(t)
grep -q '^{size} ' /tmp/reply
echo upload $a $b
rm /tmp/blob
a=$(t); i=0; while [ $i -lt {n} ]; do wget -q -O /dev/null http://{host}:{port}/small; i=$((i+1)); done; b=$(t)
echo connections $a $b
"""


def run_peer(name, net_args, host, port):
    script = SCRIPT.format(host=host, port=port, size=SIZE, n=CONNECTIONS)
    argv = [HOST, "run", "--memory", "512", *net_args, "--", "sh", "-c", script]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        print(f"{name}: failed ({proc.returncode})\n{out}\n{err}")
        return None
    spans = {}
    for kind, a, b in re.findall(r"(?m)^(download|upload|connections) ([0-9.]+) ([0-9.]+)$", out):
        spans[kind] = float(b) - float(a)
    cpu = re.search(r"daemon cpu seconds: ([0-9.]+)", err)
    return {
        "download": SIZE / 1e6 / spans["download"],
        "upload": SIZE / 1e6 / spans["upload"],
        "cps": CONNECTIONS / spans["connections"],
        "daemon_cpu_per_mb": float(cpu.group(1)) / (3 * SIZE / 1e6) if cpu else None,
    }


def main():
    peer = subprocess.Popen([sys.executable, PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(peer.stdout.readline().split()[1])
    alias = ["--host-alias", "host.test=127.0.0.1", "--egress", "deny-all", "--net-stats"]
    try:
        results = {
            "slirp": run_peer("slirp", ["--net", "slirp"], "10.0.2.2", port),
            "stack 1500": run_peer("stack 1500", ["--net", "stack", "--mtu", "1500", *alias], ALIAS_IP, port),
            "stack 65520": run_peer("stack 65520", ["--net", "stack", "--mtu", "65520", *alias], ALIAS_IP, port),
        }
    finally:
        peer.stdin.close()
        peer.wait(timeout=10)
    print(f"{'peer':<12} {'download MB/s':>14} {'upload MB/s':>12} {'conn/s':>8} {'daemon CPU ms/MB':>17}")
    for name, r in results.items():
        if r is None:
            print(f"{name:<12} failed")
            continue
        cpu = f"{r['daemon_cpu_per_mb'] * 1000:.2f}" if r["daemon_cpu_per_mb"] is not None else "(in QEMU)"
        print(f"{name:<12} {r['download']:>14.1f} {r['upload']:>12.1f} {r['cps']:>8.1f} {cpu:>17}")
    base = results.get("slirp")
    if base:
        for name in ("stack 1500", "stack 65520"):
            r = results.get(name)
            if r:
                print(f"ratio {name} / slirp: download {r['download'] / base['download']:.2f}, "
                      f"upload {r['upload'] / base['upload']:.2f}, connections/s {r['cps'] / base['cps']:.2f}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
