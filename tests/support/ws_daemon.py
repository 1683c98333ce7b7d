"""A sandboxd-host daemon for tests, and a small synchronous client of its
WebSocket protocol (WS_PROTOCOL.md), on Debian's python3-websocket.

The client keeps what arrives while it waits for something else: responses by
request id, events and output frames in arrival order, so a test can wait for
"the exit event of exec X" without losing the frames that came before it.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import websocket

HOST = os.environ.get("SANDBOXD_HOST", "build/daemon/sandboxd-host")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """sandboxd-host serve on a free port, with its own runtime dir and token."""

    def __init__(self, pool_size=2, extra_args=(), workdir=None, extra_tokens=()):
        self.dir = workdir or tempfile.mkdtemp(prefix="sandboxd-test-")
        self.runtime_dir = os.path.join(self.dir, "run")
        self.token_file = os.path.join(self.dir, "token")
        self.socket_path = os.path.join(self.runtime_dir, "api.sock")
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/v1"
        args = [HOST, "serve", "--listen", f"127.0.0.1:{self.port}", "--socket", self.socket_path,
                "--runtime-dir", self.runtime_dir, "--token-file", self.token_file,
                "--pool-size", str(pool_size), "--network", "none", *extra_args]
        if extra_tokens:
            path = os.path.join(self.dir, "extra-tokens")
            with open(path, "w") as f:
                f.write("\n".join(extra_tokens) + "\n")
            os.chmod(path, 0o600)
            args += ["--extra-tokens-file", path]
        self.log_path = os.path.join(self.dir, f"daemon-{self.port}.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while "sandboxd-host: ready" not in self.output():
            if self.proc.poll() is not None:
                raise RuntimeError("the daemon exited at start:\n" + self.output())
            if time.time() > deadline:
                raise RuntimeError("the daemon did not get ready:\n" + self.output())
            time.sleep(0.05)
        with open(self.token_file) as f:
            self.token = f.read().strip()

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def connect(self, token=None, **kw):
        return Client(self.url, self.token if token is None else token, **kw)

    def qemu_children(self):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid and b"qemu-system" in cmd:
                pids.append(int(entry))
        return pids

    def wait_pool(self, count, timeout=120):
        deadline = time.time() + timeout
        while len(self.qemu_children()) < count:
            if time.time() > deadline:
                raise RuntimeError(f"the pool did not reach {count} VMs")
            time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("the daemon did not stop within %ds:\n%s" % (timeout, self.output()))
        return self.proc.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerError(Exception):
    def __init__(self, frame):
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.frame = frame
        self.code = frame.get("code")


def process_alive(pid):
    """Whether pid runs (a zombie waiting for its reaper does not run)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def parse_binary(data):
    kind, n = data[0], data[1]
    exec_id = data[2:2 + n].decode()
    if kind in (1, 2):
        (seq,) = struct.unpack(">Q", data[2 + n:10 + n])
        return kind, exec_id, seq, data[10 + n:]
    return kind, exec_id, None, data[2 + n:]


def stdin_frame(exec_id, data, eof=False):
    return bytes([0x11 if eof else 0x10, len(exec_id)]) + exec_id.encode() + data


class Client:
    def __init__(self, url, token, timeout=120):
        header = [f"Authorization: Bearer {token}"] if token else []
        self.ws = websocket.create_connection(url, header=header, timeout=timeout, suppress_origin=True)
        self.hello = json.loads(self.ws.recv())
        self.next_id = 1
        self.responses = {}
        self.inbox = []  # events, output frames and id-less errors, in arrival order
        self.close_code = None

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    def drop(self):
        """Vanishes without a close frame, as a client whose network died."""
        self.ws.sock.shutdown(socket.SHUT_RDWR)
        self.ws.sock.close()

    def send(self, op, **members):
        rid = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": rid, "op": op, **members}))
        return rid

    def receive(self):
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_BINARY:
            kind, exec_id, seq, payload = parse_binary(data)
            self.inbox.append({"type": "output", "kind": kind, "exec": exec_id, "seq": seq, "data": payload})
            return
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self.close_code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
            raise ConnectionError(f"closed by the server with {self.close_code}")
        frame = json.loads(data)
        if frame.get("type") in ("response", "error") and frame.get("id") is not None:
            self.responses[frame["id"]] = frame
        else:
            self.inbox.append(frame)

    def wait_response(self, rid):
        while rid not in self.responses:
            self.receive()
        return self.responses.pop(rid)

    def call(self, op, **members):
        frame = self.wait_response(self.send(op, **members))
        if frame["type"] == "error":
            raise ServerError(frame)
        return frame["result"]

    def error_of(self, op, **members):
        frame = self.wait_response(self.send(op, **members))
        assert frame["type"] == "error", frame
        return frame

    def wait_inbox(self, match, timeout=120):
        deadline = time.time() + timeout
        while True:
            for i, item in enumerate(self.inbox):
                if match(item):
                    return self.inbox.pop(i)
            if time.time() > deadline:
                raise TimeoutError("nothing matched; inbox: %r" % self.inbox[-5:])
            self.receive()

    def wait_exit(self, exec_id, timeout=120):
        return self.wait_inbox(lambda f: f.get("event") == "exec.exit" and f.get("exec") == exec_id, timeout)

    def output_of(self, exec_id, kind=1):
        """Takes the output frames of exec_id out of the inbox, joined."""
        out = b"".join(f["data"] for f in self.inbox if f.get("type") == "output" and f["exec"] == exec_id
                       and f["kind"] == kind)
        self.inbox = [f for f in self.inbox if not (f.get("type") == "output" and f["exec"] == exec_id
                                                     and f["kind"] == kind)]
        return out

    def run(self, sandbox, argv, timeout=120, **members):
        """exec.start and wait for its exit: (exit event, stdout, stderr)."""
        exec_id = self.call("exec.start", sandbox=sandbox, argv=argv, **members)["exec"]["id"]
        exit_event = self.wait_exit(exec_id, timeout)
        return exit_event, self.output_of(exec_id, 1), self.output_of(exec_id, 2)
