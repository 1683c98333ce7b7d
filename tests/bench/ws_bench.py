#!/usr/bin/python3
"""The WebSocket daemon's own costs, over the wire of WS_PROTOCOL.md.

Starts `sandboxd-host serve` (its own daemons, on 127.0.0.1, port 0)
and prints, one labelled figure a line, asserting nothing but that things work:

  1. sandbox.create from the warm pool to the first stdout byte of `echo hi`
     (p50/p95 of WS_BENCH_SAMPLES, 20), and the share of creates served from
     the pool; the pool is let refill between samples.
  2. exec round trip of `true` (exec.start -> exec.exit), p50/p95 of 100 in one
     sandbox, and its ratio to the direct virtio round trip of exec-bench.
  3. stdout throughput of `head -c 64M /dev/zero` counted in binary frames,
     best of 3 runs, and its ratio to exec-bench's direct figure for the
     same command, also best of 3.
  4. host memory per idle pooled VM: the qemu children's VmRSS with a pool of
     WS_BENCH_POOL (4) plus the daemon's VmRSS growth over a pool-0 daemon.

The direct figures come from running `$EXEC_BENCH --direct-only 64` in the
same run (unset or empty: skipped, no ratios). Env: SANDBOXD_HOST, SANDBOXD_IMAGES, EXEC_BENCH.

Needs Debian's python3-websocket (websocket-client). The daemon, the client
and the /proc readers are tests/support/sandboxd_harness, as for ws_soak.py
and the integration tests.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness import procs  # noqa: E402
from sandboxd_harness.daemon import SANDBOXD_HOST, Daemon  # noqa: E402
from sandboxd_harness.frames import STDOUT, OutputFrame  # noqa: E402

EXEC_BENCH = os.environ.get("EXEC_BENCH", "")
MIB = 1 << 20
THROUGHPUT_MIB = 64  # under TCG the guest writes ~5-8 MB/s: about 10 s a run
THROUGHPUT_RUNS = 3  # the figure is the best run, on each side
CLIENT_TIMEOUT = 600


class BenchError(Exception):
    pass


# --- the figures ------------------------------------------------------------

def percentiles(values):
    """p50 and p95 as exec_bench.cpp takes them."""
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, int(q * len(v)))]
    return at(0.50), at(0.95)


def fmt_ms(s):
    return f"{s * 1000:.2f} ms"


def run_exec_bench():
    """The direct host<->guest figures: {'rt': (p50, p95) ms, 'mbs': MB/s}."""
    if not EXEC_BENCH:
        print("direct figures: skipped (EXEC_BENCH not set)")
        return None
    t = time.monotonic()
    proc = subprocess.run([EXEC_BENCH, "--direct-only", str(THROUGHPUT_MIB)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    for line in proc.stdout.splitlines():
        print("exec-bench| " + line)
    print(f"exec-bench took {time.monotonic() - t:.0f} s, exit {proc.returncode}")
    rt = re.search(r"exec round trip \(sandbox-agent\): p50 ([0-9.]+) ms, p95 ([0-9.]+) ms", proc.stdout)
    mbs = re.search(rf"stdout throughput, head -c {THROUGHPUT_MIB}M /dev/zero: ([0-9.]+) MB/s", proc.stdout)
    if proc.returncode != 0 or not rt or not mbs:
        raise BenchError("exec-bench failed or printed no figures")
    return {"rt": (float(rt.group(1)), float(rt.group(2))), "mbs": float(mbs.group(1))}


def bench_create_to_first_byte(daemon, samples):
    """1: sandbox.create (pool) -> first stdout frame of `echo hi`."""
    totals, creates, firsts, cold = [], [], [], []
    refill_timeouts = 0
    for i in range(samples):
        if not daemon.wait_pool_idle(timeout=120):
            refill_timeouts += 1
        c = daemon.connect(timeout=CLIENT_TIMEOUT)
        try:
            t0 = time.perf_counter()
            sandbox = c.call("sandbox.create")["sandbox"]
            t1 = time.perf_counter()
            exec_id = f"hi-{i}"
            rid = c.send("exec.start", sandbox=sandbox["id"], exec=exec_id, argv=["echo", "hi"])
            t2 = None
            out = bytearray()
            for m in c.exec_items(exec_id, request_id=rid):  # the last is exec.exit
                if isinstance(m, OutputFrame) and m.kind == STDOUT:
                    if t2 is None:
                        t2 = time.perf_counter()
                    out.extend(m.payload)
            if t2 is None or bytes(out) != b"hi\n" or m.get("exit_code") != 0:
                raise BenchError(f"echo hi: stdout {bytes(out)!r}, exit {m}")
            c.call("sandbox.destroy", sandbox=sandbox["id"])
        finally:
            c.close()
        if sandbox.get("from_pool") is True:
            totals.append(t2 - t0)
            creates.append(t1 - t0)
            firsts.append(t2 - t1)
        else:
            cold.append((t2 - t0, sandbox.get("boot_ms")))
    n = len(totals)
    print(f"ws create-from-pool share: {n}/{samples} = {100.0 * n / samples:.0f}% of creates came from the pool"
          + (f" ({refill_timeouts} times the pool was not idle-full within 120 s)" if refill_timeouts else ""))
    if n:
        p = percentiles(totals)
        print(f"ws create-from-pool to first stdout byte (echo hi): p50 {fmt_ms(p[0])}, p95 {fmt_ms(p[1])} (n={n})")
        p = percentiles(creates)
        print(f"ws   of which sandbox.create response (pool): p50 {fmt_ms(p[0])}, p95 {fmt_ms(p[1])}")
        p = percentiles(firsts)
        print(f"ws   of which exec.start to first stdout byte: p50 {fmt_ms(p[0])}, p95 {fmt_ms(p[1])}")
    for total, boot_ms in cold:
        print(f"ws create NOT from pool to first stdout byte: {fmt_ms(total)} (boot_ms {boot_ms})")


def bench_exec_round_trip(client, sandbox, direct):
    """2: exec.start -> exec.exit of `true`, 100 times in one sandbox."""
    for i in range(5):  # warm the guest's page cache, as exec-bench does
        ev, _, _ = client.run(sandbox, ["true"], exec=f"warm-{i}")
        if ev.get("exit_code") != 0:
            raise BenchError(f"true failed: {ev}")
    times = []
    for i in range(100):
        t = time.perf_counter()
        ev, _, _ = client.run(sandbox, ["true"], exec=f"true-{i}")
        times.append(time.perf_counter() - t)
        if ev.get("reason") != "exited" or ev.get("exit_code") != 0:
            raise BenchError(f"true failed: {ev}")
    p50, p95 = percentiles(times)
    print(f"ws exec round trip of true (exec.start -> exec.exit): p50 {fmt_ms(p50)}, p95 {fmt_ms(p95)} (n=100)")
    if direct:
        d50, d95 = direct["rt"]
        print(f"direct exec round trip of true (exec-bench, virtio): p50 {d50:.2f} ms, p95 {d95:.2f} ms")
        print(f"ws/direct exec round trip ratio: p50 {p50 * 1000 / d50:.2f}, p95 {p95 * 1000 / d95:.2f}"
              " (above 1: the WebSocket path is slower)")


def stream_head(daemon, client, sandbox, exec_id):
    """One `head -c 64M /dev/zero` counted in binary stdout frames:
    (MB/s, seconds, frames, client CPU s, daemon CPU s)."""
    size = THROUGHPUT_MIB * MIB
    cpu0, dcpu0 = time.process_time(), daemon.cpu_seconds()
    t = time.perf_counter()
    rid = client.send("exec.start", sandbox=sandbox, exec=exec_id, argv=["head", "-c", str(size), "/dev/zero"])
    got, frames, last_seq, err = 0, 0, 0, bytearray()
    for m in client.exec_items(exec_id, request_id=rid):  # the last is exec.exit
        if isinstance(m, OutputFrame):
            if m.seq <= last_seq:
                raise BenchError(f"seq went from {last_seq} to {m.seq}")
            last_seq = m.seq
            if m.kind == STDOUT:
                got += m.size
                frames += 1
            else:
                err.extend(m.payload)
    secs = time.perf_counter() - t
    if got != size or m.get("exit_code") != 0:
        raise BenchError(f"head -c {THROUGHPUT_MIB}M: {got} bytes, exit {m}, stderr {bytes(err)!r}")
    return size / 1e6 / secs, secs, frames, time.process_time() - cpu0, daemon.cpu_seconds() - dcpu0


def bench_stdout_throughput(daemon, client, sandbox, direct):
    """3: stdout MB/s over WS, best of THROUGHPUT_RUNS as exec-bench's direct
    figure is (a guest's first run pays for TCG translating its code)."""
    runs = [stream_head(daemon, client, sandbox, f"head-{THROUGHPUT_MIB}m-{i}") for i in range(THROUGHPUT_RUNS)]
    mbs, secs, frames, cpu, dcpu = max(runs)
    size = THROUGHPUT_MIB * MIB
    print(f"ws stdout throughput, head -c {THROUGHPUT_MIB}M /dev/zero: {mbs:.1f} MB/s, best of {THROUGHPUT_RUNS} "
          f"({', '.join(f'{r[0]:.1f}' for r in runs)}; best: {secs:.2f} s, {frames} frames, "
          f"{size / frames / 1024:.1f} KiB/frame; CPU: client {cpu:.2f} s, daemon {dcpu:.2f} s)")
    if direct:
        print(f"direct stdout throughput, head -c {THROUGHPUT_MIB}M /dev/zero (exec-bench, virtio): {direct['mbs']:.1f} MB/s")
        print(f"ws/direct stdout throughput ratio: {mbs / direct['mbs']:.2f} (below 1: the WebSocket path is slower)")


def bench_pool_memory(pool):
    """4: memory of `pool` idle pooled VMs, against a pool-0 daemon."""
    base = Daemon(pool_size=0, unix_socket=False, name="ws-pool0")
    try:
        # Its RSS once it has settled: no VM, and the daemon itself idle.
        if not base.wait_pool_idle(timeout=60, daemon_too=True):
            raise BenchError("the pool-0 daemon did not go idle within 60 s")
        base_rss = base.rss_kib()
    finally:
        problem = base.stop()
        base.cleanup()
        if problem:
            print("pool-0 daemon: " + problem)
    d = Daemon(pool_size=pool, unix_socket=False, name=f"ws-pool{pool}")
    try:
        t = time.monotonic()
        if not d.wait_pool_idle(timeout=300):
            raise BenchError(f"pool of {pool} not idle-full within 300 s: qemu children {d.qemu_pids()}")
        fill_s = time.monotonic() - t
        kids = d.qemu_pids()
        qemu_rss = sum(procs.vm_rss_kib(p) for p in kids)
        qemu_pss = sum(procs.pss_kib(p) for p in kids)
        rss = d.rss_kib()
    finally:
        problem = d.stop()
        d.cleanup()
        if problem:
            print(f"pool-{pool} daemon: " + problem)
    growth = rss - base_rss
    print(f"host RSS per idle pooled VM: {(qemu_rss + growth) / 1024 / pool:.1f} MiB "
          f"(pool {pool}: qemu VmRSS {qemu_rss / 1024 / pool:.1f} MiB/VM + daemon growth "
          f"{growth / 1024:.1f} MiB over pool 0 ({base_rss / 1024:.1f} -> {rss / 1024:.1f} MiB))")
    print(f"host PSS per idle pooled VM (qemu only, shared pages split): {qemu_pss / 1024 / pool:.1f} MiB")
    print(f"pool of {pool} filled and idle after {fill_s:.1f} s")


def main():
    samples = int(os.environ.get("WS_BENCH_SAMPLES", "20"))
    mem_pool = int(os.environ.get("WS_BENCH_POOL", "4"))
    print("sandboxd WebSocket benchmark")
    print(f"daemon: {SANDBOXD_HOST}")
    direct = run_exec_bench()

    # The same guest as exec-bench's direct figures (mini), so that the ratios
    # compare the paths and not the images.
    d = Daemon(pool_size=2, unix_socket=False, name="ws-main", extra_args=["--image", "mini"])
    ok = False
    try:
        bench_create_to_first_byte(d, samples)
        d.wait_pool_idle(timeout=120)
        c = d.connect(timeout=CLIENT_TIMEOUT)
        try:
            sandbox = c.call("sandbox.create")["sandbox"]["id"]
            d.wait_pool_idle(timeout=120)  # the refill boot would disturb the figures
            bench_exec_round_trip(c, sandbox, direct)
            bench_stdout_throughput(d, c, sandbox, direct)
            c.call("sandbox.destroy", sandbox=sandbox)
        finally:
            c.close()
        ok = True
    except Exception as e:
        print(f"benchmark failed: {e}\n{d.tail()}")
    finally:
        problem = d.stop()
        d.cleanup()
        if problem:
            print("daemon: " + problem)
            ok = False
    if not ok:
        return 1

    try:
        bench_pool_memory(mem_pool)
    except Exception as e:
        print(f"benchmark failed: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
