#!/usr/bin/python3
"""Soak of the WebSocket daemon: SOAK_CYCLES (500) create / exec / destroy cycles.

Against its own `sandboxd-host serve` with a pool of 2 (--network none), each
cycle opens a connection, creates a sandbox, runs `echo soak` in it (stdout
must be "soak\\n", exit code 0), destroys it and closes the connection. Prints
the daemon's VmRSS and open fd count after the first 10 cycles (warm-up) and
at the end, each measured with no connection open and the pool full and idle,
and the cycles per second.

Fails (exit 1) if any cycle failed, the daemon's RSS grew by more than
10% + 8 MiB, its fd count grew by more than 4, or it did not stop cleanly.
Under TCG every cycle boots a VM (1.5-3 s of CPU), so 500 cycles take a while.
Env: SANDBOXD_HOST, SANDBOXD_IMAGES, SOAK_CYCLES.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.daemon import SANDBOXD_HOST, Daemon, DaemonError  # noqa: E402

MIB = 1 << 20
POOL = 2
WARMUP = 10
RSS_SLACK = (0.10, 8 * MIB)  # relative, bytes
FD_SLACK = 4


def cycle(daemon, i):
    """One cycle; returns (from_pool, None) or (None, what went wrong)."""
    c = daemon.connect(timeout=300)
    try:
        sandbox = c.call("sandbox.create", labels={"soak": str(i)})["sandbox"]
        ev, out, err = c.run(sandbox["id"], ["echo", "soak"], exec=f"soak-{i}")
        destroyed = c.call("sandbox.destroy", sandbox=sandbox["id"])["sandbox"]
    finally:
        c.close()
    problems = []
    if out != b"soak\n" or err:
        problems.append(f"stdout {out!r}, stderr {err!r}")
    if ev.get("reason") != "exited" or ev.get("exit_code") != 0:
        problems.append(f"exit {ev}")
    if destroyed.get("state") != "exited":
        problems.append(f"destroyed sandbox in state {destroyed.get('state')}")
    return sandbox.get("from_pool"), "; ".join(problems) or None


def measure(daemon, label):
    """RSS and fds with no connection open and the pool full and idle."""
    if not daemon.wait_pool_idle(timeout=180):
        print(f"soak {label}: warning: pool not idle-full within 180 s (qemu children {daemon.qemu_pids()})")
    daemon.wait_no_connections()  # the last connection's close has reached the daemon
    rss, fds = daemon.rss_kib() * 1024, daemon.fd_count()
    print(f"soak {label}: daemon VmRSS {rss / MIB:.1f} MiB, open fds {fds}, qemu children {len(daemon.qemu_pids())}")
    return rss, fds


def summarize_log(lines):
    """How many warnings and errors the daemon logged, and the commonest."""
    counts = {}
    for line in lines:
        m = re.match(r"\[[^]]*\] \[[^]]*\] \[(warning|error|critical)\] (.*)", line)
        if m:
            key = (m.group(1), re.sub(r"\b(sb-[0-9a-f]+|c-\d+|vm-\d+-\d+|\d+)\b", "#", m.group(2))[:160])
            counts[key] = counts.get(key, 0) + 1
    by_level = {}
    for (level, _), n in counts.items():
        by_level[level] = by_level.get(level, 0) + n
    print("soak daemon log: " + (", ".join(f"{n} {level} lines" for level, n in sorted(by_level.items())) or "no warnings"))
    for (level, text), n in sorted(counts.items(), key=lambda kv: -kv[1])[:5]:
        print(f"soak daemon log:   {n} x [{level}] {text}")


def main():
    cycles = int(os.environ.get("SOAK_CYCLES", "500"))
    warmup = WARMUP if cycles > WARMUP else 0
    print(f"sandboxd WebSocket soak: {cycles} cycles (create, exec echo soak, destroy), pool {POOL}")
    print(f"daemon: {SANDBOXD_HOST}")
    t_all = time.monotonic()
    d = Daemon(pool_size=POOL, unix_socket=False, name="ws-soak")
    failures = []
    from_pool = 0
    start = end = None
    measured, cycle_s = 0, 0.0
    try:
        d.wait_pool_idle(timeout=180)
        for i in range(cycles):
            if i == warmup:
                start = measure(d, f"start (after {warmup} warm-up cycles)")
                t = time.monotonic()
            try:
                pooled, problem = cycle(d, i)
            except Exception as e:  # noqa: BLE001 — a failed cycle, whatever broke
                pooled, problem = None, f"{type(e).__name__}: {e}"
            if pooled:
                from_pool += 1
            measured = i + 1 - warmup
            if problem:
                failures.append((i, problem))
                print(f"soak cycle {i} FAILED: {problem}")
                if not d.running():
                    print("soak: the daemon died\n" + d.tail())
                    break
                if len(failures) >= 20:
                    print("soak: 20 failed cycles, giving up")
                    break
            if (i + 1) % 50 == 0:
                print(f"soak progress: {i + 1}/{cycles} cycles, {time.monotonic() - t_all:.0f} s, "
                      f"daemon VmRSS {d.rss_kib() / 1024:.1f} MiB, fds {d.fd_count()}", flush=True)
        cycle_s = time.monotonic() - t if measured else 0.0
        if d.running():
            end = measure(d, f"end (after {cycles} cycles)")
            c = d.connect()
            try:
                left = c.call("sandbox.list")["sandboxes"]
            finally:
                c.close()
            if left:
                failures.append((cycles, f"sandbox.list still shows {[s['id'] for s in left]}"))
    finally:
        stop_problem = d.stop()
    total = time.monotonic() - t_all
    summarize_log(d.log_lines())
    d.cleanup()
    rate = measured / cycle_s if cycle_s else 0.0
    print(f"soak rate: {rate:.2f} cycles/s ({measured} cycles after warm-up in {cycle_s:.1f} s; "
          f"{from_pool}/{cycles} creates from the pool); whole run {total:.1f} s")

    verdict = []
    if failures:
        verdict.append(f"{len(failures)} failed cycles (first: cycle {failures[0][0]}: {failures[0][1]})")
    if start and end:
        rss_limit = start[0] * (1 + RSS_SLACK[0]) + RSS_SLACK[1]
        if end[0] > rss_limit:
            verdict.append(f"daemon RSS grew {start[0] / MIB:.1f} -> {end[0] / MIB:.1f} MiB "
                           f"(limit {rss_limit / MIB:.1f} MiB)")
        if end[1] > start[1] + FD_SLACK:
            verdict.append(f"daemon fds grew {start[1]} -> {end[1]} (slack {FD_SLACK})")
        print(f"soak growth: RSS {(end[0] - start[0]) / MIB:+.1f} MiB, fds {end[1] - start[1]:+d}")
    elif not failures:
        verdict.append("no start/end measurement")
    if stop_problem:
        verdict.append("daemon stop: " + stop_problem)
    if verdict:
        print("soak: FAIL: " + "; ".join(verdict))
        return 1
    print("soak: PASS")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DaemonError as e:
        print(f"soak failed: {e}")
        sys.exit(1)
