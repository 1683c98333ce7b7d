#!/usr/bin/env python3
"""Guest network throughput: the daemon's stack against QEMU's slirp.

One run, the same guest image, the same host server (tests/support/net_peer.py
on 127.0.0.1): each peer boots a sandbox that, timed inside the guest,
downloads 64 MiB (busybox wget), uploads 64 MiB (busybox ftpput, which hands
the file to the socket with sendfile; the host checks length and SHA-256),
and opens 100 HTTP connections one after another. Peers: our stack at MTU
1500 and 65520, slirp (QEMU's -netdev user) at its MTU 1500.

Under TCG on two cores one run of a peer can be off by a factor of two, so
the peers take turns, NET_BENCH_ROUNDS times (3), and each figure is the
median of its rounds. Prints MB/s, connections per second, host CPU per MB
(below), and the ratios ours/slirp.

Under TCG the guest's vCPU, not the network path, sets the pace, so the
throughput ratios understate what the stack does for a guest that keeps up
(KVM). The host's own cost of carrying the bytes shows that part: CPU time
per MB of the download and upload phases, summed over the sandboxd-host
process and QEMU's threads other than its vCPU threads (slirp runs in QEMU's
main loop; our stack runs in sandboxd-host while QEMU's main loop moves the
frames over the socket), sampled from /proc when the guest prints each
phase's start and end.
"""
import os
import re
import statistics
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness import procs  # noqa: E402
from sandboxd_harness.host_peer import HostPeer, blob_sha256  # noqa: E402

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
SIZE = 64 << 20
CONNECTIONS = 100
# The first host alias's address in the guest: URLs use it, as slirp's use
# 10.0.2.2, so neither peer pays for DNS in these figures.
ALIAS_IP = "10.0.2.100"

SCRIPT = """
set -e
t() {{ cut -d' ' -f1 /proc/uptime; }}
wget -q -O /tmp/blob http://{host}:{port}/blob/{size}
echo phase download begin
a=$(t); wget -q -O /dev/null http://{host}:{port}/blob/{size}; b=$(t)
echo phase download end
echo download $a $b
echo phase upload begin
a=$(t); ftpput -P {ftp_port} {host} blob /tmp/blob; b=$(t)
echo phase upload end
echo upload $a $b
echo stored $(wget -q -O - http://{host}:{port}/last-stored)
rm /tmp/blob
a=$(t); i=0; while [ $i -lt {n} ]; do wget -q -O /dev/null http://{host}:{port}/small; i=$((i+1)); done; b=$(t)
echo connections $a $b
"""


def host_network_cpu(run_pid):
    """CPU seconds so far of sandboxd-host and of QEMU's non-vCPU threads."""
    total = procs.cpu_seconds(run_pid)
    for qemu in procs.qemu_descendants(run_pid):
        for tid in procs.threads(qemu.pid):
            t = procs.stat(qemu.pid, tid)
            if t and not t.comm.startswith("CPU "):  # vCPU threads are "CPU n/TCG" or "CPU n/KVM"
                total += t.cpu_seconds
    return total


def run_peer(name, net_args, host, ports, blob_digest):
    script = SCRIPT.format(host=host, port=ports[0], ftp_port=ports[1], size=SIZE, n=CONNECTIONS)
    # busybox's wget and ftpput: the initramfs image
    argv = [HOST, "run", "--image", "mini", "--memory", "512", *net_args, "--", "sh", "-c", script]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines = []
    drain = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    drain.start()
    timer = threading.Timer(900, proc.kill)
    timer.start()
    out_lines, phase_cpu = [], 0.0
    try:
        for line in proc.stdout:
            out_lines.append(line)
            m = re.fullmatch(r"phase \w+ (begin|end)", line.strip())
            if m:
                now = host_network_cpu(proc.pid)
                phase_cpu += now if m.group(1) == "end" else -now
        proc.wait()
    finally:
        timer.cancel()
    drain.join(timeout=10)
    out, err = "".join(out_lines), "".join(err_lines)
    if proc.returncode != 0:
        print(f"{name}: failed ({proc.returncode})\n{out}\n{err}")
        return None
    if f"stored {SIZE} {blob_digest}" not in out:
        print(f"{name}: the host did not receive the upload intact\n{out}")
        return None
    spans = {}
    for kind, a, b in re.findall(r"(?m)^(download|upload|connections) ([0-9.]+) ([0-9.]+)$", out):
        spans[kind] = float(b) - float(a)
    return {
        "download": SIZE / 1e6 / spans["download"],
        "upload": SIZE / 1e6 / spans["upload"],
        "cps": CONNECTIONS / spans["connections"],
        "host_cpu_ms_per_mb": phase_cpu * 1000 / (2 * SIZE / 1e6),
    }


def median_of(rounds):
    """Per figure, the median over the rounds; None if any round failed."""
    if not rounds or any(r is None for r in rounds):
        return None
    out = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if r[key] is not None]
        out[key] = statistics.median(values) if values else None
    return out


def main():
    rounds = int(os.environ.get("NET_BENCH_ROUNDS", "3"))
    blob_digest = blob_sha256(SIZE)
    peer = HostPeer()
    ports = (peer.http_port, peer.ftp_port)
    alias = ["--host-alias", "host.test=127.0.0.1", "--egress", "deny-all", "--net-stats"]
    peers = {
        "slirp": (["--net", "slirp"], "10.0.2.2"),
        "stack 1500": (["--net", "stack", "--mtu", "1500", *alias], ALIAS_IP),
        "stack 65520": (["--net", "stack", "--mtu", "65520", *alias], ALIAS_IP),
    }
    runs = {name: [] for name in peers}
    try:
        for i in range(rounds):
            for name, (net_args, host) in peers.items():
                r = run_peer(name, net_args, host, ports, blob_digest)
                runs[name].append(r)
                if r:
                    print(f"round {i + 1} {name:<12} download {r['download']:.1f} MB/s, upload {r['upload']:.1f} MB/s, "
                          f"{r['cps']:.1f} conn/s, host CPU {r['host_cpu_ms_per_mb']:.2f} ms/MB", flush=True)
    finally:
        peer.close()
    results = {name: median_of(rs) for name, rs in runs.items()}
    print(f"medians of {rounds} rounds:")
    print(f"{'peer':<12} {'download MB/s':>14} {'upload MB/s':>12} {'conn/s':>8} {'host CPU ms/MB':>15}")
    for name, r in results.items():
        if r is None:
            print(f"{name:<12} failed")
            continue
        print(f"{name:<12} {r['download']:>14.1f} {r['upload']:>12.1f} {r['cps']:>8.1f} {r['host_cpu_ms_per_mb']:>15.2f}")
    base = results.get("slirp")
    if base:
        for name in ("stack 1500", "stack 65520"):
            r = results.get(name)
            if r:
                print(f"ratio {name} / slirp: download {r['download'] / base['download']:.2f}, "
                      f"upload {r['upload'] / base['upload']:.2f}, connections/s {r['cps'] / base['cps']:.2f}; "
                      f"host CPU per MB, slirp / ours: {base['host_cpu_ms_per_mb'] / r['host_cpu_ms_per_mb']:.2f}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
