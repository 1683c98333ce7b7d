#!/usr/bin/python3
"""The WebSocket daemon's own costs, over the wire of WS_PROTOCOL.md.

Starts `sandboxd-host serve` (its own daemons, on a free port of 127.0.0.1)
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

Needs Debian's python3-websocket (websocket-client). Also the library of
ws_soak.py: Daemon, Client and the /proc helpers live here.
"""
import collections
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import websocket

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
EXEC_BENCH = os.environ.get("EXEC_BENCH", "")
MIB = 1 << 20
THROUGHPUT_MIB = 64  # under TCG the guest writes ~5-8 MB/s: about 10 s a run
THROUGHPUT_RUNS = 3  # the figure is the best run, on each side
TICK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


# --- /proc ------------------------------------------------------------------

def proc_stat(pid):
    """(comm, state, ppid, cpu seconds) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1]), (int(rest[11]) + int(rest[12])) / TICK


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def qemu_descendants(root):
    """Live (not zombie) qemu processes below `root`."""
    parent = {}
    info = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st:
            parent[int(name)] = st[2]
            info[int(name)] = st
    found = []
    for pid, st in info.items():
        p = parent.get(pid)
        while p and p != root:
            p = parent.get(p)
        if p == root and st[0].startswith("qemu") and st[1] != "Z":
            found.append(pid)
    return sorted(found)


def percentiles(values):
    """p50 and p95 as exec_bench.cpp takes them."""
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, int(q * len(v)))]
    return at(0.50), at(0.95)


# --- the daemon -------------------------------------------------------------

class Daemon:
    """`sandboxd-host serve` on 127.0.0.1, any free port, in a temp dir."""

    def __init__(self, pool_size, name="bench"):
        self.pool_size = pool_size
        self.dir = tempfile.mkdtemp(prefix=f"sandboxd-ws-{name}-")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.log = []
        self.port = None
        self.seen_qemu = set()
        self._ready = threading.Event()
        argv = [HOST, "serve", "--listen", "127.0.0.1:0", "--socket", "none",
                "--runtime-dir", os.path.join(self.dir, "run"),
                "--token-file", os.path.join(self.dir, "token"),
                "--pool-size", str(pool_size), "--network", "none"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 60
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(2)
                self.kill()
                raise BenchError(f"daemon did not get ready (exit {self.proc.returncode}):\n" + self.tail())
        if self.port is None:
            raise BenchError("daemon ready but printed no listening address:\n" + self.tail())
        with open(os.path.join(self.dir, "token")) as f:
            self.token = f.read().strip()
        self.url = f"ws://127.0.0.1:{self.port}/v1"

    def _read_stderr(self):
        with open(self.log_path, "w") as out:
            for line in self.proc.stderr:
                out.write(line)
                out.flush()
                self.log.append(line.rstrip("\n"))
                m = re.search(r"listening on ws://[0-9.]+:(\d+)/v1", line)
                if m:
                    self.port = int(m.group(1))
                if "sandboxd-host: ready" in line:
                    self._ready.set()

    def tail(self, n=30):
        return "\n".join("  daemon: " + line for line in self.log[-n:])

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        return vm_rss_kib(self.pid)

    def fds(self):
        return fd_count(self.pid)

    def cpu_s(self):
        st = proc_stat(self.pid)
        return st[3] if st else 0.0

    def qemus(self):
        found = qemu_descendants(self.pid)
        self.seen_qemu.update(found)
        return found

    def wait_pool_idle(self, count=None, timeout=180, window=1.5, max_busy=0.15):
        """Waits until exactly `count` (default: the pool size) qemu children run
        and none of them uses more than `max_busy` of a CPU over `window`
        seconds: the pool is full and its VMs have booted. False on timeout."""
        count = self.pool_size if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError("daemon exited:\n" + self.tail())
            kids = self.qemus()
            if len(kids) != count:
                time.sleep(0.25)
                continue
            before = {pid: proc_stat(pid) for pid in kids}
            time.sleep(window)
            after = {pid: proc_stat(pid) for pid in kids}
            if self.qemus() != kids or any(after[p] is None or before[p] is None for p in kids):
                continue
            if all(after[p][3] - before[p][3] <= max_busy * window for p in kids):
                return True
        return False

    def stop(self, timeout=60):
        """SIGTERM; returns a problem description or None."""
        problem = None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problem = f"daemon did not stop within {timeout} s of SIGTERM; killed"
                self.kill()
        self._reader.join(5)
        rc = self.proc.returncode
        if problem is None and rc != 0:
            problem = f"daemon exited with {rc} after SIGTERM"
        if problem is None and not any("sandboxd-host: stopped" in line and "unexpectedly" not in line
                                       for line in self.log):
            problem = "daemon stopped without its 'stopped' line"
        time.sleep(0.2)
        left = [p for p in self.seen_qemu if proc_stat(p) and proc_stat(p)[0].startswith("qemu")
                and proc_stat(p)[1] != "Z"]
        if left:
            problem = (problem + "; " if problem else "") + f"qemu processes left running: {left}"
        if problem:
            problem += "\n" + self.tail()
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problem

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


# --- a client ---------------------------------------------------------------

class Output:
    """A binary output frame: kind (1 stdout, 2 stderr), exec id, seq, payload."""
    __slots__ = ("kind", "exec", "seq", "data", "offset")

    def __init__(self, data):
        if len(data) < 2:
            raise BenchError(f"binary frame of {len(data)} bytes")
        n = data[1]
        self.kind = data[0]
        self.exec = data[2:2 + n].decode("ascii")
        self.seq = struct.unpack_from(">Q", data, 2 + n)[0]
        self.data = data
        self.offset = 10 + n

    def size(self):
        return len(self.data) - self.offset

    def payload(self):
        return self.data[self.offset:]


class ApiError(BenchError):
    def __init__(self, message):
        super().__init__(f"{message.get('code')}: {message.get('message')}")
        self.reply = message


class Client:
    def __init__(self, daemon, timeout=600):
        self.ws = websocket.create_connection(daemon.url, header=["Authorization: Bearer " + daemon.token],
                                              suppress_origin=True, timeout=timeout)
        self.ids = itertools.count(1)
        self.backlog = collections.deque()
        hello = self.recv()
        if not isinstance(hello, dict) or hello.get("type") != "hello" or hello.get("protocol") != 1:
            raise BenchError(f"expected a hello, got {hello!r}")
        self.hello = hello

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    def recv(self):
        """The next frame off the wire: a dict (text) or an Output (binary)."""
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return json.loads(data)
        if opcode == websocket.ABNF.OPCODE_BINARY:
            return Output(data)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
            raise BenchError(f"server closed the connection ({code} {data[2:]!r})")
        raise BenchError(f"unexpected opcode {opcode}")

    def next(self):
        return self.backlog.popleft() if self.backlog else self.recv()

    def send(self, op, **fields):
        rid = next(self.ids)
        self.ws.send(json.dumps({"id": rid, "op": op, **fields}))
        return rid

    def wait_reply(self, rid):
        while True:
            m = self.recv()
            if isinstance(m, dict) and m.get("type") in ("response", "error") and m.get("id") == rid:
                return m
            self.backlog.append(m)

    def call(self, op, **fields):
        reply = self.wait_reply(self.send(op, **fields))
        if reply["type"] == "error":
            raise ApiError(reply)
        return reply["result"]

    def run(self, sandbox, exec_id, argv):
        """exec.start and everything up to its exec.exit: (exit event, stdout, stderr)."""
        rid = self.send("exec.start", sandbox=sandbox, exec=exec_id, argv=argv)
        out, err = bytearray(), bytearray()
        replied = False
        while True:
            m = self.next()
            if isinstance(m, Output):
                if m.exec == exec_id:
                    (out if m.kind == 1 else err).extend(m.payload())
                continue
            if m.get("id") == rid and m.get("type") == "error":
                raise ApiError(m)
            if m.get("id") == rid:
                replied = True
                if m["result"].get("existing"):
                    raise BenchError(f"exec id {exec_id} already existed")
            elif m.get("type") == "event" and m.get("event") == "exec.exit" and m.get("exec") == exec_id:
                if not replied:
                    raise BenchError(f"exec.exit of {exec_id} before the exec.start response")
                return m, bytes(out), bytes(err)


# --- the figures ------------------------------------------------------------

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
        c = Client(daemon)
        try:
            t0 = time.perf_counter()
            sandbox = c.call("sandbox.create")["sandbox"]
            t1 = time.perf_counter()
            exec_id = f"hi-{i}"
            rid = c.send("exec.start", sandbox=sandbox["id"], exec=exec_id, argv=["echo", "hi"])
            t2 = None
            out = bytearray()
            while True:
                m = c.recv()
                if isinstance(m, Output):
                    if m.exec == exec_id and m.kind == 1:
                        if t2 is None:
                            t2 = time.perf_counter()
                        out.extend(m.payload())
                    continue
                if m.get("id") == rid and m.get("type") == "error":
                    raise ApiError(m)
                if m.get("type") == "event" and m.get("event") == "exec.exit" and m.get("exec") == exec_id:
                    break
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
        ev, _, _ = client.run(sandbox, f"warm-{i}", ["true"])
        if ev.get("exit_code") != 0:
            raise BenchError(f"true failed: {ev}")
    times = []
    for i in range(100):
        t = time.perf_counter()
        ev, _, _ = client.run(sandbox, f"true-{i}", ["true"])
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
    cpu0, dcpu0 = time.process_time(), daemon.cpu_s()
    t = time.perf_counter()
    rid = client.send("exec.start", sandbox=sandbox, exec=exec_id, argv=["head", "-c", str(size), "/dev/zero"])
    got, frames, last_seq, err = 0, 0, 0, bytearray()
    while True:
        m = client.next()
        if isinstance(m, Output):
            if m.exec != exec_id:
                continue
            if m.seq <= last_seq:
                raise BenchError(f"seq went from {last_seq} to {m.seq}")
            last_seq = m.seq
            if m.kind == 1:
                got += m.size()
                frames += 1
            else:
                err.extend(m.payload())
            continue
        if m.get("id") == rid and m.get("type") == "error":
            raise ApiError(m)
        if m.get("type") == "event" and m.get("event") == "exec.exit" and m.get("exec") == exec_id:
            break
    secs = time.perf_counter() - t
    if got != size or m.get("exit_code") != 0:
        raise BenchError(f"head -c {THROUGHPUT_MIB}M: {got} bytes, exit {m}, stderr {bytes(err)!r}")
    return size / 1e6 / secs, secs, frames, time.process_time() - cpu0, daemon.cpu_s() - dcpu0


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
    base = Daemon(0, "pool0")
    try:
        time.sleep(3)
        base_rss = base.rss_kib()
    finally:
        problem = base.stop()
        if problem:
            print("pool-0 daemon: " + problem)
    d = Daemon(pool, f"pool{pool}")
    try:
        t = time.monotonic()
        if not d.wait_pool_idle(timeout=300):
            raise BenchError(f"pool of {pool} not idle-full within 300 s: qemu children {d.qemus()}")
        fill_s = time.monotonic() - t
        kids = d.qemus()
        qemu_rss = sum(vm_rss_kib(p) for p in kids)
        qemu_pss = sum(pss_kib(p) for p in kids)
        rss = d.rss_kib()
    finally:
        problem = d.stop()
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
    print(f"daemon: {HOST}")
    direct = run_exec_bench()

    d = Daemon(2, "main")
    ok = False
    try:
        bench_create_to_first_byte(d, samples)
        d.wait_pool_idle(timeout=120)
        c = Client(d)
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
