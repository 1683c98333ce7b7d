#!/usr/bin/env python3
"""The WebSocket protocol's edges, each as WS_PROTOCOL.md states it, against a
real `sandboxd-host serve` with real VMs: how the daemon closes on clients
that do not read or send too much, events once per connection, errors that
name their exec, create keys and booting sandboxes, the causes in exec.exit,
sandbox.state's members, and the hello's limits.

Raw-socket cases speak WebSocket by hand (RawWebSocket below), so that the
client can do what no library would: never read, or send a whole oversized
message before it looks at the answer.
"""
import base64
import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.daemon import SANDBOXD_HOST, Daemon, sanitized  # noqa: E402
from sandboxd_harness.frames import stdin_frame  # noqa: E402
from sandboxd_harness.waiting import wait_until  # noqa: E402

MIB = 1 << 20


class RawWebSocket:
    """A client side of RFC 6455 by hand: the upgrade, masked frames out, and
    every frame that comes back parsed from the raw bytes."""

    def __init__(self, daemon):
        self.sock = daemon.open_tcp(timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /v1 HTTP/1.1\r\nHost: sandboxd\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Authorization: Bearer {daemon.token}\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            data += chunk
        head, self.pending = data.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace"))

    @staticmethod
    def frame(payload, opcode=0x1):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 1 << 16:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        return head + mask + masked

    def read_to_end(self, timeout=60):
        """Everything the daemon sends until it closes: [(opcode, payload)], and
        the error that ended reading, if it was not a clean end of stream. A
        close frame is answered with one, as a client finishes the closing
        handshake."""
        self.sock.settimeout(timeout)
        data, error, frames, i, answered_close = self.pending, None, [], 0, False
        while True:
            while i + 2 <= len(data):
                opcode, n, j = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
                if n == 126:
                    if j + 2 > len(data):
                        break
                    n, j = struct.unpack(">H", data[j:j + 2])[0], j + 2
                elif n == 127:
                    if j + 8 > len(data):
                        break
                    n, j = struct.unpack(">Q", data[j:j + 8])[0], j + 8
                if j + n > len(data):
                    break
                frames.append((opcode, data[j:j + n]))
                i = j + n
                if opcode == 0x8 and not answered_close:
                    answered_close = True
                    try:
                        self.sock.sendall(self.frame(data[j:j + min(n, 2)], opcode=0x8))
                    except OSError:
                        pass
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError as e:
                error = e
                break
            if not chunk:
                break
            data += chunk
        return frames, error

    @staticmethod
    def close_code(frames):
        for opcode, payload in frames:
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
        return None

    def close(self):
        self.sock.close()


class ProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(pool_size=1, name="protocol")
        cls.client = cls.daemon.connect()
        cls.sandbox = cls.client.call("sandbox.create")["sandbox"]["id"]

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.daemon.stop_and_check()
        cls.daemon.cleanup()

    def test_a_client_that_sends_100k_requests_and_never_reads_is_closed_with_1008_and_the_daemon_stays_small(self):
        raw = RawWebSocket(self.daemon)
        rss_before = self.daemon.rss_kib()
        batch = b"".join(RawWebSocket.frame(json.dumps({"id": i, "op": "sandbox.list"}).encode())
                         for i in range(1000))
        sent = 0
        for _ in range(100):
            raw.sock.sendall(batch)  # never blocks for long: a closing daemon still reads, and drops
            sent += 1000
        rss_after = self.daemon.rss_kib()
        growth_mib = (rss_after - rss_before) / 1024
        print(f"\n100k requests never read: daemon VmRSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB",
              file=sys.stderr)
        self.assertEqual(sent, 100_000)
        # 1 MiB of responses may wait, and the parser's buffers; under ASan the
        # allocator's quarantine of freed blocks (256 MiB at most) comes on top.
        limit = 128 if sanitized(SANDBOXD_HOST) else 16
        self.assertLess(growth_mib, limit, "the daemon must not hold what the client does not read")
        frames, error = raw.read_to_end()
        raw.close()
        self.assertIsNone(error)
        answered = sum(1 for opcode, _ in frames if opcode == 0x1)
        self.assertLess(answered, 100_000, "the daemon stopped answering once it decided to close")
        self.assertEqual(RawWebSocket.close_code(frames), 1008)
        # The daemon goes on serving everyone else.
        self.assertEqual(self.client.call("hello", protocol=1), {"protocol": 1})

    def test_a_message_above_max_frame_bytes_sent_whole_is_answered_1009_every_time(self):
        for attempt in range(10):
            raw = RawWebSocket(self.daemon)
            payload = b"{" + b" " * (2 * MIB - 2) + b"}"
            try:
                raw.sock.sendall(RawWebSocket.frame(payload))
                send_error = None
            except OSError as e:
                send_error = e
            frames, error = raw.read_to_end()
            raw.close()
            self.assertIsNone(send_error, f"attempt {attempt}: the daemon cut the client off while it wrote")
            self.assertIsNone(error, f"attempt {attempt}")
            self.assertEqual(RawWebSocket.close_code(frames), 1009, f"attempt {attempt}: {frames[-3:]!r}")

    def test_a_connection_subscribed_and_attached_gets_each_exec_event_once(self):
        c = self.daemon.connect()
        try:
            c.call("sandbox.subscribe", sandbox=self.sandbox)
            exec_id = c.call("exec.start", sandbox=self.sandbox, exec="once-evt", argv=["echo", "x"])["exec"]["id"]
            c.wait_exit(exec_id)
            # A response after the exit: whatever the daemon would send about it was sent before.
            c.call("sandbox.get", sandbox=self.sandbox)
            c.call("sandbox.get", sandbox=self.sandbox)
            started = [f for f in c.inbox if isinstance(f, dict) and f.get("event") == "exec.started"
                       and f.get("exec") == exec_id]
            exits = [f for f in c.inbox if isinstance(f, dict) and f.get("event") == "exec.exit"
                     and f.get("exec") == exec_id]
            self.assertEqual(len(started), 1, c.inbox)
            self.assertEqual(exits, [])  # the one exit was taken by wait_exit
            # A subscriber that is not attached still hears of it.
            watcher = self.daemon.connect()
            watcher.call("sandbox.subscribe", sandbox=self.sandbox)
            other = c.call("exec.start", sandbox=self.sandbox, argv=["true"])["exec"]["id"]
            watcher.wait_event("exec.started", other)
            watcher.wait_exit(other)
            watcher.close()
        finally:
            c.close()

    def test_errors_about_binary_frames_name_the_exec(self):
        c = self.daemon.connect()
        try:
            c.ws.send_binary(stdin_frame("nobody", b"data"))
            e = c.wait_error()
            self.assertEqual((e["code"], e["exec"], e["id"]), ("unknown_exec", "nobody", None))
            c.ws.send_binary(bytes([0x01, 3]) + b"abc" + struct.pack(">Q", 1) + b"data")
            e = c.wait_error()
            self.assertEqual((e["code"], e["exec"]), ("bad_frame", "abc"))
            no_stdin = c.call("exec.start", sandbox=self.sandbox, argv=["sleep", "30"])["exec"]["id"]
            c.ws.send_binary(stdin_frame(no_stdin, b"x"))
            e = c.wait_error()
            self.assertEqual((e["code"], e["exec"]), ("stdin_closed", no_stdin))
            watcher = self.daemon.connect()
            watcher.call("exec.attach", exec=no_stdin, read_only=True)
            watcher.ws.send_binary(stdin_frame(no_stdin, b"x"))
            e = watcher.wait_error()
            self.assertEqual((e["code"], e["exec"]), ("read_only", no_stdin))
            self.assertEqual(watcher.error_of("exec.close_stdin", exec=no_stdin)["code"], "read_only")
            watcher.close()
            c.call("exec.kill", exec=no_stdin)
            c.wait_exit(no_stdin)
            c.ws.send_binary(stdin_frame(no_stdin, b"x"))
            e = c.wait_error()
            self.assertEqual((e["code"], e["exec"]), ("not_running", no_stdin))
        finally:
            c.close()

    def test_an_exec_ended_by_its_sandbox_says_why_the_sandbox_ended(self):
        c = self.client
        # From the pool, so that the lifetime (which counts from the create)
        # is not spent booting.
        live = len(c.call("sandbox.list")["sandboxes"])
        self.assertTrue(self.daemon.wait_pool_idle(count=self.daemon.pool_size + live, timeout=180))
        doomed = c.call("sandbox.create", lifetime_s=3)["sandbox"]
        self.assertTrue(doomed["from_pool"])
        doomed = doomed["id"]
        exec_id = c.call("exec.start", sandbox=doomed, argv=["sleep", "100"])["exec"]["id"]
        exit_event = c.wait_exit(exec_id, timeout=60)
        self.assertEqual((exit_event["reason"], exit_event["sandbox_reason"]), ("sandbox_destroyed", "lifetime"))
        destroyed = c.call("sandbox.create")["sandbox"]["id"]
        exec_id = c.call("exec.start", sandbox=destroyed, argv=["sleep", "100"])["exec"]["id"]
        c.wait_event("exec.started", exec_id)
        c.call("sandbox.destroy", sandbox=destroyed)
        self.assertEqual(c.wait_exit(exec_id)["sandbox_reason"], "destroyed")
        exit_event, _, _ = c.run(self.sandbox, ["true"])
        self.assertIsNone(exit_event["sandbox_reason"])

    def test_a_create_with_a_key_is_idempotent_and_a_booting_sandbox_is_visible(self):
        c = self.daemon.connect()
        try:
            first = c.send("sandbox.create", key="job-7", labels={"case": "key"})
            again = c.send("sandbox.create", key="job-7", labels={"case": "key"})
            listed = c.call("sandbox.list", labels={"case": "key"})["sandboxes"]
            self.assertEqual(len(listed), 1, listed)
            self.assertEqual(listed[0]["key"], "job-7")
            a = c.wait_response(first)["result"]
            b = c.wait_response(again)["result"]
            self.assertEqual(a["sandbox"]["id"], b["sandbox"]["id"])
            self.assertEqual(sorted([a["existing"], b["existing"]]), [False, True])
            self.assertEqual(a["sandbox"]["state"], "ready")
            # Later retries find it too; after it ended the key is free again.
            self.assertTrue(c.call("sandbox.create", key="job-7")["existing"])
            c.call("sandbox.destroy", sandbox=a["sandbox"]["id"])
            fresh = c.call("sandbox.create", key="job-7")
            self.assertFalse(fresh["existing"])
            self.assertNotEqual(fresh["sandbox"]["id"], a["sandbox"]["id"])
            c.call("sandbox.destroy", sandbox=fresh["sandbox"]["id"])
        finally:
            c.close()

    def test_a_sandbox_boots_where_a_client_can_see_it_and_destroy_it(self):
        c = self.daemon.connect()
        try:
            # A shape the pool does not keep: the create boots a VM of its own.
            rid = c.send("sandbox.create", cpus=1, memory_mib=320, labels={"case": "booting"})
            booting = wait_until(lambda: [s for s in c.call("sandbox.list", labels={"case": "booting"})["sandboxes"]],
                                 30, "the booting sandbox in sandbox.list")
            self.assertEqual(booting[0]["state"], "booting")
            self.assertEqual(booting[0]["boot_ms"], 0)
            destroyed = c.call("sandbox.destroy", sandbox=booting[0]["id"])["sandbox"]
            self.assertEqual(destroyed["state"], "exited")
            answer = c.wait_response(rid, timeout=60)
            self.assertEqual(answer["code"], "unavailable", answer)
            self.assertEqual(c.call("sandbox.list", labels={"case": "booting"})["sandboxes"], [])
        finally:
            c.close()

    def test_sandbox_state_events_carry_reason_and_detail_as_documented(self):
        c = self.daemon.connect()
        try:
            s = c.call("sandbox.create")["sandbox"]["id"]
            c.call("sandbox.subscribe", sandbox=s)
            c.call("sandbox.destroy", sandbox=s)
            stopping = c.wait_event("sandbox.state", state="stopping")
            exited = c.wait_event("sandbox.state", state="exited")
            self.assertEqual((stopping["reason"], exited["reason"]), ("destroyed", "destroyed"))
            self.assertNotIn("detail", stopping)
            self.assertNotIn("detail", exited)
        finally:
            c.close()

    def test_a_program_that_cannot_start_has_no_exec_started(self):
        c = self.daemon.connect()
        try:
            exec_id = c.call("exec.start", sandbox=self.sandbox, argv=["/no/such/program"])["exec"]["id"]
            items = list(c.exec_items(exec_id))
            self.assertEqual([i.get("event") for i in items], ["exec.exit"], items)
            self.assertEqual((items[0]["reason"], items[0]["seq"]), ("start_failed", 1))
        finally:
            c.close()

    def test_the_hello_names_limits_by_their_config_keys(self):
        limits = self.client.hello["limits"]
        for key in ("max_frame_bytes", "max_pending_requests", "max_sandboxes_per_token", "max_cpus", "max_memory_mib"):
            self.assertIn(key, limits)
        self.assertEqual(limits["max_sandboxes"], limits["max_sandboxes_per_token"])

    def test_requests_without_an_id_are_refused_and_not_carried_out(self):
        c = self.daemon.connect()
        try:
            c.ws.send(json.dumps({"op": "sandbox.create", "labels": {"case": "no-id"}}))
            e = c.wait_error()
            self.assertEqual((e["code"], e["field"], e["id"]), ("bad_request", "id", None))
            self.assertEqual(c.call("sandbox.list", labels={"case": "no-id"})["sandboxes"], [])
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
