#!/usr/bin/env python3
"""sandboxctl against a real daemon: create, ls, exec, stdin, a wrong token,
cp in and out, an interactive shell on a pty, rm.

Starts its own `sandboxd-host serve` (tests/support/sandboxd_harness: port 0
of 127.0.0.1, no unix socket, no guest network), drives sandboxctl as a
subprocess for each check, and stops the daemon with SIGTERM at the end,
failing unless it stopped cleanly.

Env:
  SANDBOXD_HOST    path of sandboxd-host (default build/daemon/sandboxd-host)
  SANDBOXCTL       path of sandboxctl (default build/clients/sandboxctl)
  SANDBOXD_IMAGES  guest images, passed on to the daemon

The standard library and the harness. Run: python3 tests/integration/sandboxctl_test.py
"""
import errno
import fcntl
import hashlib
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.daemon import Daemon  # noqa: E402
from sandboxd_harness.waiting import wait_until  # noqa: E402

CTL = os.environ.get("SANDBOXCTL", "build/clients/sandboxctl")
# Creating a sandbox may boot a VM; under TCG that takes a while.
SLOW = 300
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


def ctl_env(daemon, **overrides):
    """sandboxctl's environment: this daemon, its token, and nothing of the caller's."""
    env = dict(os.environ)
    # Nothing from the caller's own setup may pick another daemon.
    for name in ("SANDBOXD_TOKEN_FILE", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    env["HOME"] = daemon.dir
    env["SANDBOXD_URL"] = daemon.url
    env["SANDBOXD_TOKEN"] = daemon.token
    env.update(overrides)
    return env


class SandboxctlAgainstDaemon(unittest.TestCase):
    daemon = None
    sandbox = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(pool_size=1, unix_socket=False, name="sandboxctl")

    @classmethod
    def tearDownClass(cls):
        if cls.sandbox:
            cls.ctl("rm", cls.sandbox)
        problem = cls.daemon.stop()
        cls.daemon.cleanup()
        if problem:
            raise AssertionError(problem)

    @classmethod
    def ctl(cls, *args, input=None, env=None, timeout=SLOW):
        return subprocess.run([CTL, *args], input=input, capture_output=True, timeout=timeout,
                              env=env or ctl_env(cls.daemon))

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

    def test_01a_create_with_a_layer_on_a_disk(self):
        r = self.ctl("--json", "create", "--disk", "96", "--disk-backing", "file")
        self.check(r)
        created = json.loads(r.stdout)
        try:
            self.assertEqual((created.get("disk_backing"), created.get("disk_mib")), ("file", 96), created)
            r = self.ctl("exec", created["id"], "--", "stat", "-f", "-c", "%T %b %S", "/run/sandbox/upper")
            self.check(r)
            fs_type, blocks, block_size = r.stdout.decode().split()
            self.assertEqual(fs_type, "ext2/ext3")
            self.assertGreater(int(blocks) * int(block_size), 80 << 20)
        finally:
            self.check(self.ctl("rm", created["id"]))
        r = self.ctl("create", "--disk-backing", "tape")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"--disk-backing", r.stderr)

    def test_01b_create_with_a_policy_then_set_network(self):
        with tempfile.TemporaryDirectory() as scratch:
            good = os.path.join(scratch, "policy.json")
            with open(good, "w") as f:
                json.dump({"rules": [{"host": "*.debian.org", "ports": [443], "verdict": "allow"}]}, f)
            r = self.ctl("--json", "create", "--image", "mini", "--policy", good)
            self.check(r)
            created = json.loads(r.stdout)
            try:
                self.assertEqual(created["egress"], "policy")
                self.assertEqual(created["network"]["rules"][0]["host"], "*.debian.org")
                r = self.ctl("--json", "set-network", created["id"], "--egress", "allow-all")
                self.check(r)
                changed = json.loads(r.stdout)
                self.assertEqual((changed["egress"], changed["network"]), ("allow-all", None))
                # Rules the daemon refuses: its error, naming the member.
                refused = os.path.join(scratch, "refused.json")
                with open(refused, "w") as f:
                    json.dump({"rules": [{"host": "a.test", "ports": [70000], "verdict": "allow"}]}, f)
                r = self.ctl("set-network", created["id"], "--policy", refused)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(b"network.rules[0].ports[0]", r.stderr)
                # Not JSON: refused before anything is sent.
                broken = os.path.join(scratch, "broken.json")
                with open(broken, "w") as f:
                    f.write("{rules: allow}")
                r = self.ctl("set-network", created["id"], "--policy", broken)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(b"not JSON", r.stderr)
                r = self.ctl("set-network", created["id"])
                self.assertEqual(r.returncode, 2, r.stderr)
            finally:
                self.check(self.ctl("rm", created["id"]))

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

    def test_04a_exec_as_the_sandbox_user(self):
        r = self.ctl("exec", "-u", "sandbox", self.need_sandbox(), "--", "sh", "-c", 'echo $(id -un) $HOME')
        self.check(r)
        self.assertEqual(r.stdout, b"sandbox /home/sandbox\n")
        r = self.ctl("exec", "--user", "nobody-at-all", self.need_sandbox(), "--", "true")
        self.check(r, 126)
        self.assertIn(b"no user 'nobody-at-all'", r.stderr)

    def test_05_stdin_round_trip(self):
        data = os.urandom(1 << 20)
        r = self.ctl("exec", "-i", self.need_sandbox(), "--", "cat", input=data)
        self.check(r)
        self.assertEqual(len(r.stdout), len(data))
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_06_wrong_token(self):
        env = ctl_env(self.daemon, SANDBOXD_TOKEN="x" * 64)
        r = self.ctl("exec", self.need_sandbox(), "--", "echo", "hi", env=env, timeout=60)
        self.check(r, 2)
        self.assertIn(b"the daemon refused the token (HTTP 401)", r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_06a_cp_in_and_out(self):
        sandbox = self.need_sandbox()
        with tempfile.TemporaryDirectory() as local:
            def path(*names):
                return os.path.join(local, *names)

            # Not a multiple of the 256 KiB frames: the last one is short.
            data = os.urandom(3 << 20) + b"tail"
            with open(path("blob.bin"), "wb") as f:
                f.write(data)
            # A trailing '/' on the sandbox side keeps the source's name.
            self.check(self.ctl("cp", path("blob.bin"), f"{sandbox}:/tmp/"))
            r = self.ctl("exec", sandbox, "--", "sha256sum", "/tmp/blob.bin")
            self.check(r)
            self.assertEqual(r.stdout.split()[0].decode(), hashlib.sha256(data).hexdigest())

            self.check(self.ctl("cp", f"{sandbox}:/tmp/blob.bin", path("back.bin")))
            with open(path("back.bin"), "rb") as f:
                self.assertEqual(f.read(), data)

            # Into an existing local directory: the remote file's name.
            os.mkdir(path("into"))
            self.check(self.ctl("cp", f"{sandbox}:/tmp/blob.bin", path("into")))
            with open(path("into", "blob.bin"), "rb") as f:
                self.assertEqual(f.read(), data)

            # A pipe of unknown length, and --mode.
            self.check(self.ctl("cp", "--mode", "600", "-", f"{sandbox}:/tmp/x", input=b"from stdin\n"))
            r = self.ctl("exec", sandbox, "--", "ls", "-l", "/tmp/x")
            self.check(r)
            self.assertTrue(r.stdout.startswith(b"-rw-------"), r.stdout)
            r = self.ctl("cp", f"{sandbox}:/tmp/x", "-")
            self.check(r)
            self.assertEqual(r.stdout, b"from stdin\n")

            r = self.ctl("cp", f"{sandbox}:/no/such/file", path("missing"))
            self.check(r, 1)
            self.assertIn(b"not_found", r.stderr)
            # Nothing is left behind locally: neither the file nor its temporary.
            self.assertEqual(sorted(os.listdir(local)), ["back.bin", "blob.bin", "into"])

            r = self.ctl("cp", path("blob.bin"), path("other.bin"))
            self.check(r, 2)
            self.assertFalse(os.path.exists(path("other.bin")))

    def test_07_shell_on_a_pty(self):
        sandbox = self.need_sandbox()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        cooked = termios.tcgetattr(slave)
        proc = subprocess.Popen([CTL, "shell", sandbox], stdin=slave, stdout=slave, stderr=slave,
                                env=ctl_env(self.daemon, TERM="xterm"), start_new_session=True)
        seen = bytearray()

        def read_until(pattern, timeout):
            """Reads the terminal until `pattern` matches what came since the
            call; the match, or None."""
            deadline = time.monotonic() + timeout
            start = len(seen)
            while True:
                found = re.search(pattern, ANSI.sub(b"", bytes(seen[start:])))
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                ready, _, _ = select.select([master], [], [], left)
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError as e:
                        if e.errno == errno.EIO:  # no process holds the slave side
                            return None
                        raise
                    seen.extend(chunk)

        try:
            self.assertTrue(read_until(rb"[#$>%] ?$", SLOW), f"no prompt; terminal: {bytes(seen)!r}")
            os.write(master, b"echo ready-$((6*7))\r")
            self.assertTrue(read_until(rb"ready-42", 60), f"terminal: {bytes(seen)!r}")

            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
            os.kill(proc.pid, signal.SIGWINCH)
            # The resize travels on its own (sandboxctl, the daemon, the
            # guest); ask until the remote side has it, each time once the
            # last question was answered.
            def remote_size():
                os.write(master, b"stty size\r")
                answer = read_until(rb"\n(\d+) (\d+)\n", 10)
                return answer and answer.groups() == (b"33", b"111")

            wait_until(remote_size, 60, lambda: f"stty size saying 33 111; terminal: {bytes(seen)!r}", interval=0)

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
