"""`sandboxd-host serve` for a test: its own directory (runtime dir, token,
log), a port the kernel picks, and the checks every test makes when it stops.

Ready means one thing: the daemon printed `sandboxd-host: ready` (it writes
<runtime_dir>/endpoints.json before that line), and then endpoints.json says
where it listens. A daemon that exits before that line fails the start with
the tail of its log. Its port is chosen by the kernel (`--listen
127.0.0.1:0`), so nothing guesses a free one.

A clean stop (`stop`) is: exit status 0 after SIGTERM, the line
`sandboxd-host: stopped` (not "stopped unexpectedly"), no AddressSanitizer or
UBSan report in the log, no QEMU process of the daemon's left running. The
log stays on disk when something went wrong, and every message names it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from sandboxd_harness import procs
from sandboxd_harness.waiting import wait_until

SANDBOXD_HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
READY_LINE = "sandboxd-host: ready"
STOPPED_LINE = "sandboxd-host: stopped"
# What ASan, LSan and UBSan print when they find something.
SANITIZER_REPORTS = ("AddressSanitizer", "LeakSanitizer", "runtime error")



def sanitized(binary=None):
    """Whether `binary` (default: the daemon under test) was built with
    AddressSanitizer, whose allocator keeps freed memory in quarantine (up to
    256 MiB): RSS then says little about what is held."""
    with open(binary or SANDBOXD_HOST, "rb") as f:
        return b"__asan_init" in f.read()

class DaemonError(Exception):
    """The daemon did not start, or did not stop cleanly."""


class Daemon:
    def __init__(self, pool_size=2, extra_args=(), workdir=None, extra_tokens=(), unix_socket=True,
                 network="none", ready_timeout=60, name="test"):
        """Starts the daemon and returns once it is ready.

        `workdir`: a directory of an earlier Daemon to start in again (its
        runtime dir, token and logs; it is then that Daemon's to remove).
        `unix_socket`: also listen on <runtime_dir>/api.sock. `extra_args`
        come last on the command line, so they override the defaults.
        """
        self._owns_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix=f"sandboxd-{name}-")
        self.runtime_dir = os.path.join(self.dir, "run")
        self.token_file = os.path.join(self.dir, "token")
        self.pool_size = pool_size
        self.failed = False
        self._qemu_seen = {}  # pid -> start ticks, of every QEMU seen below the daemon
        args = [SANDBOXD_HOST, "serve", "--listen", "127.0.0.1:0",
                "--socket", os.path.join(self.runtime_dir, "api.sock") if unix_socket else "none",
                "--runtime-dir", self.runtime_dir, "--token-file", self.token_file,
                "--pool-size", str(pool_size), "--network", network,
                # File-backed writable layers in the test's own directory.
                "--disk-dir", os.path.join(self.dir, "disks")]
        if extra_tokens:
            path = os.path.join(self.dir, "extra-tokens")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write("\n".join(extra_tokens) + "\n")
            args += ["--extra-tokens-file", path]
        args += list(extra_args)
        self.log_path, log = self._new_log()
        with log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        try:
            wait_until(self._ready, ready_timeout, lambda: f"the daemon's ready line\n{self.tail()}")
            with open(os.path.join(self.runtime_dir, "endpoints.json")) as f:
                self.endpoints = json.load(f)
            if self.endpoints.get("pid") != self.pid:
                raise DaemonError(f"endpoints.json is not this daemon's: {self.endpoints}\n{self.tail()}")
            with open(self.token_file) as f:
                self.token = f.read().strip()
        except BaseException:
            self.failed = True
            self.kill()
            raise
        self.url = self.endpoints["url"]
        host, port = self.endpoints["tcp"].rsplit(":", 1)
        self.tcp = (host, int(port))
        self.port = int(port)
        self.socket_path = self.endpoints["unix"]

    def _new_log(self):
        """A log file of its own, also when a second daemon starts in the same directory."""
        for n in range(1, 100):
            path = os.path.join(self.dir, "daemon.log" if n == 1 else f"daemon-{n}.log")
            try:
                return path, open(path, "x")
            except FileExistsError:
                continue
        raise DaemonError(f"no free log name in {self.dir}")

    def _ready(self):
        text = self.log_text()
        if any(line.startswith(READY_LINE) for line in text.splitlines()):
            return True
        if self.proc.poll() is not None:
            raise DaemonError(f"the daemon exited with {self.proc.returncode} before it was ready\n{self.tail()}")
        return False

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.stop_and_check()
        else:
            self.failed = True
            self.kill()
        self.cleanup()

    # --- reaching it ------------------------------------------------------

    def connect(self, token=None, timeout=120, **kw):
        """A Client with this daemon's token (or `token`)."""
        # Imported here: the rest of the harness runs without python3-websocket.
        from sandboxd_harness.client import Client
        return Client(self.url, self.token if token is None else token, timeout=timeout, **kw)

    def open_tcp(self, timeout=10):
        """A plain TCP connection to where the daemon listens, for bytes that
        are not (yet) WebSocket."""
        return socket.create_connection(self.tcp, timeout=timeout)

    def connection_ports(self):
        """Client ports of the TCP connections the daemon has not closed yet."""
        return procs.tcp_peer_ports(self.pid, self.port)

    def wait_no_connections(self, timeout=30):
        """Until the daemon has closed every TCP connection (their close reached it)."""
        wait_until(lambda: not self.connection_ports(), timeout,
                   lambda: f"the daemon still holds connections from ports {sorted(self.connection_ports())}")

    def wait_connection_closed(self, client, timeout=30):
        """Until the daemon has closed its end of `client`'s connection."""
        wait_until(lambda: client.local_port not in self.connection_ports(), timeout,
                   f"the daemon closing the connection from port {client.local_port}")

    # --- its log --------------------------------------------------------------

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_lines(self):
        return self.log_text().splitlines()

    def tail(self, n=40):
        """The last `n` lines of the log, for a failure message, and where the rest is."""
        lines = self.log_lines()
        return "\n".join([f"  daemon log {self.log_path} (last {min(n, len(lines))} of {len(lines)} lines):"]
                         + ["  daemon: " + line for line in lines[-n:]])

    # --- its process ------------------------------------------------------------

    def running(self):
        return self.proc.poll() is None

    def rss_kib(self):
        return procs.vm_rss_kib(self.pid)

    def fd_count(self):
        return procs.fd_count(self.pid)

    def cpu_seconds(self):
        return procs.cpu_seconds(self.pid)

    def qemu_pids(self):
        """The QEMU processes running below the daemon, sorted (remembered for `stop`)."""
        found = procs.qemu_descendants(self.pid)
        for st in found:
            self._qemu_seen[st.pid] = st.start_ticks
        return [st.pid for st in found]

    def wait_qemus(self, count, timeout=120):
        """Until at least `count` QEMU processes run below the daemon; their pids."""
        return wait_until(lambda: len(self.qemu_pids()) >= count and self.qemu_pids(), timeout,
                          lambda: f"{count} QEMU processes (running: {self.qemu_pids()})\n{self.tail()}", 0.2)

    def wait_pool_idle(self, count=None, timeout=180, window=1.5, max_busy=0.15, daemon_too=False):
        """Waits until exactly `count` (default: the pool size) QEMU processes
        run and none used more than `max_busy` of a CPU over `window` seconds
        (with `daemon_too`, nor the daemon): the pool is full and its VMs have
        booted. The window is a measurement of CPU use, not a guess at a
        duration. False on timeout; DaemonError if the daemon exits."""
        count = self.pool_size if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise DaemonError(f"the daemon exited with {self.proc.returncode}\n{self.tail()}")
            kids = self.qemu_pids()
            if len(kids) != count:
                time.sleep(0.25)
                continue
            watched = kids + ([self.pid] if daemon_too else [])
            before = {pid: procs.stat(pid) for pid in watched}
            time.sleep(window)
            after = {pid: procs.stat(pid) for pid in watched}
            if self.qemu_pids() != kids or any(after[p] is None or before[p] is None for p in watched):
                continue
            if all(after[p].cpu_seconds - before[p].cpu_seconds <= max_busy * window for p in watched):
                return True
        return False

    # --- its end ----------------------------------------------------------------

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the daemon (unless it has already exited, e.g. after a
        signal of the test's own) and waits for it. Returns what was wrong
        with how it stopped (see the module's header), with the log's tail,
        or None."""
        problems = []
        if self.running():
            self.qemu_pids()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"the daemon did not stop within {timeout} s of signal {sig}; killed")
                self.kill()
        rc = self.proc.returncode
        if not problems and rc != 0:
            problems.append(f"the daemon exited with {rc} after signal {sig}")
        text = self.log_text()
        if not any(line.startswith(STOPPED_LINE) and "unexpectedly" not in line for line in text.splitlines()):
            problems.append(f"no '{STOPPED_LINE}' line")
        reports = [word for word in SANITIZER_REPORTS if word in text]
        if reports:
            problems.append(f"sanitizer reports in the log ({', '.join(reports)})")
        left = self.qemu_left_running()
        if left:
            problems.append(f"QEMU processes left running: {left}")
        if not problems:
            return None
        self.failed = True
        return "; ".join(problems) + "\n" + self.tail()

    def stop_and_check(self, sig=signal.SIGTERM, timeout=60):
        """stop(), raising DaemonError if it did not stop cleanly."""
        problem = self.stop(sig, timeout)
        if problem:
            raise DaemonError(problem)

    def qemu_left_running(self):
        """The QEMU processes ever seen below the daemon that still run."""
        return sorted(pid for pid, start in self._qemu_seen.items() if procs.is_running(pid, start))

    def kill(self):
        """SIGKILL, no questions asked (its QEMUs die with it: PR_SET_PDEATHSIG)."""
        if self.running():
            self.proc.kill()
        self.proc.wait()

    def cleanup(self):
        """Kills the daemon if it still runs and removes its directory, unless
        something failed (the log is kept for whoever reads the failure) or
        the directory belongs to another Daemon."""
        if self.running():
            self.kill()
        if self._owns_dir and not self.failed:
            shutil.rmtree(self.dir, ignore_errors=True)
