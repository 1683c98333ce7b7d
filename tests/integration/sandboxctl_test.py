#!/usr/bin/env python3
"""sandboxctl against a real daemon: create, ls, exec, stdin, a wrong token,
an interactive shell on a pty, rm.

Starts its own `sandboxd-host serve` on a free port of 127.0.0.1, without a
unix socket and with no guest network, with a token file this test writes,
waits (up to 60 s) until the port accepts connections, drives sandboxctl as a
subprocess for each check, and stops the daemon with SIGTERM at the end.

Env:
  SANDBOXD_HOST    path of sandboxd-host (default build/daemon/sandboxd-host)
  SANDBOXCTL       path of sandboxctl (default build/clients/sandboxctl)
  SANDBOXD_IMAGES  guest images, passed on to the daemon

Only the standard library. Run: python3 tests/integration/sandboxctl_test.py
"""
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")
CTL = os.environ.get("SANDBOXCTL", "build/clients/sandboxctl")
# Creating a sandbox may boot a VM; under TCG that takes a while.
SLOW = 300
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


class Daemon:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sandboxctl-test-")
        self.token = secrets.token_hex(32)
        self.token_file = os.path.join(self.dir, "token")
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/v1"
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.log = open(self.log_path, "wb")
        argv = [HOST, "serve", "--listen", f"127.0.0.1:{self.port}", "--socket", "none",
                "--runtime-dir", os.path.join(self.dir, "run"), "--token-file", self.token_file,
                "--pool-size", "1", "--network", "none"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port, self.proc):
            self.stop()
            raise RuntimeError(f"the daemon did not accept connections on port {self.port} within 60 s "
                               f"(exit {self.proc.returncode}):\n{self.tail()}")

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("  daemon: " + line for line in lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def env(self, **overrides):
        env = dict(os.environ)
        # Nothing from the caller's own setup may pick another daemon.
        for name in ("SANDBOXD_TOKEN_FILE", "XDG_CONFIG_HOME"):
            env.pop(name, None)
        env["HOME"] = self.dir
        env["SANDBOXD_URL"] = self.url
        env["SANDBOXD_TOKEN"] = self.token
        env.update(overrides)
        return env


class SandboxctlAgainstDaemon(unittest.TestCase):
    daemon = None
    sandbox = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()

    @classmethod
    def tearDownClass(cls):
        if cls.sandbox:
            cls.ctl("rm", cls.sandbox)
        cls.daemon.stop()
        if cls.daemon.proc.returncode not in (0, -signal.SIGTERM):
            print(f"daemon exited {cls.daemon.proc.returncode}:\n{cls.daemon.tail()}", file=sys.stderr)
        shutil.rmtree(cls.daemon.dir, ignore_errors=True)

    @classmethod
    def ctl(cls, *args, input=None, env=None, timeout=SLOW):
        return subprocess.run([CTL, *args], input=input, capture_output=True, timeout=timeout,
                              env=env or cls.daemon.env())

    def check(self, r, code=0):
        self.assertEqual(r.returncode, code,
                         f"stdout: {r.stdout[:2000]!r}\nstderr: {r.stderr[:2000]!r}\n{self.daemon.tail()}")

    def need_sandbox(self):
        if not type(self).sandbox:
            self.skipTest("no sandbox (create failed)")
        return type(self).sandbox

    def test_01_create_prints_an_id(self):
        r = self.ctl("create", "--label", "suite=sandboxctl")
        self.check(r)
        out = r.stdout.decode()
        self.assertRegex(out, r"^sb-[A-Za-z0-9]+\n$")
        type(self).sandbox = out.strip()

    def test_02_ls_shows_it(self):
        sandbox = self.need_sandbox()
        r = self.ctl("ls")
        self.check(r)
        lines = r.stdout.decode().splitlines()
        self.assertTrue(lines and lines[0].split()[:2] == ["ID", "STATE"], lines)
        self.assertTrue(any(line.split()[0] == sandbox for line in lines[1:]), lines)

        r = self.ctl("--json", "ls", "--label", "suite=sandboxctl")
        self.check(r)
        listed = json.loads(r.stdout)
        self.assertIsInstance(listed, list)
        mine = [s for s in listed if s.get("id") == sandbox]
        self.assertEqual(len(mine), 1, listed)
        self.assertEqual(mine[0].get("labels"), {"suite": "sandboxctl"})
        self.assertEqual(mine[0].get("state"), "ready")

    def test_03_exec_echo(self):
        r = self.ctl("exec", self.need_sandbox(), "--", "echo", "hi")
        self.check(r)
        self.assertEqual(r.stdout, b"hi\n")

    def test_04_exec_exit_status(self):
        r = self.ctl("exec", self.need_sandbox(), "--", "sh", "-c", "exit 3")
        self.check(r, 3)

    def test_05_stdin_round_trip(self):
        data = os.urandom(1 << 20)
        r = self.ctl("exec", "-i", self.need_sandbox(), "--", "cat", input=data)
        self.check(r)
        self.assertEqual(len(r.stdout), len(data))
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_06_wrong_token(self):
        env = self.daemon.env(SANDBOXD_TOKEN="x" * 64)
        r = self.ctl("exec", self.need_sandbox(), "--", "echo", "hi", env=env, timeout=60)
        self.check(r, 2)
        self.assertIn(b"the daemon refused the token (HTTP 401)", r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_07_shell_on_a_pty(self):
        sandbox = self.need_sandbox()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        cooked = termios.tcgetattr(slave)
        proc = subprocess.Popen([CTL, "shell", sandbox], stdin=slave, stdout=slave, stderr=slave,
                                env=self.daemon.env(TERM="xterm"), start_new_session=True)
        seen = bytearray()

        def read_until(pattern, timeout):
            """Reads the terminal until `pattern` matches what came since `start`."""
            deadline = time.monotonic() + timeout
            start = len(seen)
            while time.monotonic() < deadline:
                text = ANSI.sub(b"", bytes(seen[start:]))
                if re.search(pattern, text):
                    return True
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError as e:
                        if e.errno == errno.EIO:  # no process holds the slave side
                            return False
                        raise
                    seen.extend(chunk)
            return False

        try:
            self.assertTrue(read_until(rb"[#$>%] ?$", SLOW), f"no prompt; terminal: {bytes(seen)!r}")
            os.write(master, b"echo ready-$((6*7))\r")
            self.assertTrue(read_until(rb"ready-42", 60), f"terminal: {bytes(seen)!r}")

            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
            os.kill(proc.pid, signal.SIGWINCH)
            # The resize travels on its own; ask until the remote side has it.
            resized = False
            for _ in range(20):
                time.sleep(0.5)
                os.write(master, b"stty size\r")
                if read_until(rb"\n33 111\n", 3):
                    resized = True
                    break
            self.assertTrue(resized, f"stty size never said 33 111; terminal: {bytes(seen)!r}")

            os.write(master, b"exit 5\r")
            self.assertEqual(proc.wait(timeout=60), 5, f"terminal: {bytes(seen)!r}")
            # sandboxctl gave the terminal back as it found it.
            self.assertEqual(termios.tcgetattr(slave), cooked)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
            os.close(slave)

    def test_08_rm(self):
        sandbox = self.need_sandbox()
        r = self.ctl("rm", sandbox)
        self.check(r)
        self.assertEqual(r.stdout.decode().split(), [sandbox])
        type(self).sandbox = None

        r = self.ctl("--json", "ls")
        self.check(r)
        self.assertNotIn(sandbox, [s.get("id") for s in json.loads(r.stdout)])

        r = self.ctl("rm", sandbox)
        self.check(r, 1)
        self.assertIn(sandbox.encode(), r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
