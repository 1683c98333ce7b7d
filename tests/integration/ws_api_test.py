#!/usr/bin/env python3
"""The WebSocket control plane end to end: a real `sandboxd-host serve`,
real VMs (TCG here), clients speaking WS_PROTOCOL.md over a real WebSocket.

One daemon serves the cases of ApiTest; the cases about the daemon's own
life (SIGKILL and restart, SIGTERM) start daemons of their own.
"""
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness import procs  # noqa: E402
from sandboxd_harness.client import ConnectionClosed  # noqa: E402
from sandboxd_harness.daemon import Daemon  # noqa: E402
from sandboxd_harness.daemon_case import DaemonTestCase  # noqa: E402
from sandboxd_harness.frames import OutputFrame  # noqa: E402
from sandboxd_harness.waiting import wait_until  # noqa: E402

import websocket  # noqa: E402

OTHER_TOKEN = "other-tenant-token-0123456789abcdef"


class ApiTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_daemon(pool_size=2, extra_tokens=[OTHER_TOKEN], extra_args=["--log-level", "info"])
        cls.sandbox = cls.client.call("sandbox.create", labels={"suite": "api"})["sandbox"]["id"]

    def test_create_exec_echo_exit_event(self):
        c = self.client
        created = c.call("sandbox.create", cpus=1, memory_mib=256, labels={"case": "echo"})["sandbox"]
        self.assertEqual(created["state"], "ready")
        exit_event, out, err = c.run(created["id"], ["echo", "hello"])
        self.assertEqual(out, b"hello\n")
        self.assertEqual(err, b"")
        self.assertEqual(exit_event["reason"], "exited")
        self.assertEqual(exit_event["exit_code"], 0)
        exit_event, out, err = c.run(created["id"], ["sh", "-c", "echo oops >&2; exit 3"])
        self.assertEqual((exit_event["exit_code"], err), (3, b"oops\n"))
        listed = c.call("sandbox.list", labels={"case": "echo"})["sandboxes"]
        self.assertEqual([s["id"] for s in listed], [created["id"]])
        gone = c.call("sandbox.destroy", sandbox=created["id"])["sandbox"]
        self.assertEqual(gone["state"], "exited")
        self.assertEqual(c.error_of("sandbox.get", sandbox=created["id"])["code"], "not_found")

    def test_sequence_numbers_are_gapless_and_exit_is_last(self):
        c = self.client
        exec_id = c.call("exec.start", sandbox=self.sandbox, shell="for i in 1 2 3; do echo $i; done")["exec"]["id"]
        exit_event = c.wait_exit(exec_id)
        started = c.wait_event("exec.started", exec_id)
        outputs = c.output_frames(exec_id)
        seqs = [started["seq"]] + [f.seq for f in outputs] + [exit_event["seq"]]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertEqual(c.output_of(exec_id), b"1\n2\n3\n")

    def test_pty_prompt_resize_and_ctrl_c(self):
        c = self.client
        exec_id = c.call("exec.start", sandbox=self.sandbox, argv=["/bin/sh", "-i"],
                         pty={"cols": 80, "rows": 24, "term": "xterm"})["exec"]["id"]
        screen = b""

        def read_until(needle, timeout=30):
            nonlocal screen
            deadline = time.time() + timeout
            while True:
                screen += c.output_of(exec_id)  # what came meanwhile, too
                if needle in screen:
                    break
                if time.time() > deadline:
                    raise AssertionError(f"{needle!r} not seen; screen: {screen[-400:]!r}")
                c.receive()
            screen = screen[screen.index(needle) + len(needle):]

        read_until(b"# ")  # root's prompt
        shell_pid = c.wait_event("exec.started", exec_id)["pid"]
        c.send_stdin(exec_id, b"stty size\n")
        read_until(b"24 80")
        c.call("exec.resize", exec=exec_id, cols=120, rows=40)
        c.send_stdin(exec_id, b"stty size\n")
        read_until(b"40 120")
        c.send_stdin(exec_id, b"sleep 100; echo slept\n")
        # Ctrl-C only once `sleep 100` runs: a child of the shell named sleep,
        # seen from a second exec in the same guest.
        sleep_runs = ["sh", "-c", f"grep -qs '^[0-9]* (sleep) [A-Z] {shell_pid} ' /proc/[0-9]*/stat"]
        wait_until(lambda: c.run(self.sandbox, sleep_runs)[0]["exit_code"] == 0, 30,
                   f"sleep 100 running under the shell (pid {shell_pid})", interval=0)
        started = time.time()
        c.send_stdin(exec_id, b"\x03")
        c.send_stdin(exec_id, b"echo after-$?\n")
        read_until(b"after-130")
        self.assertLess(time.time() - started, 10, "Ctrl-C must interrupt sleep 100")
        self.assertNotIn(b"slept", screen)
        c.send_stdin(exec_id, b"exit 7\n")
        exit_event = c.wait_exit(exec_id)
        self.assertEqual((exit_event["reason"], exit_event["exit_code"]), ("exited", 7))
        self.assertEqual(c.error_of("exec.resize", exec=exec_id, cols=10, rows=10)["code"], "not_running")

    def test_50_mb_through_stdin_and_back(self):
        c = self.client
        size = 50 << 20
        chunk = os.urandom(64 << 10)
        exec_id = c.call("exec.start", sandbox=self.sandbox, argv=["cat"], stdin=True)["exec"]["id"]
        sent = hashlib.sha256()
        failure = []

        def feed():
            try:
                n = 0
                while n < size:
                    c.send_stdin(exec_id, chunk, eof=n + len(chunk) >= size)
                    sent.update(chunk)
                    n += len(chunk)
            except Exception as e:  # surfaced below
                failure.append(e)

        feeder = threading.Thread(target=feed)
        started = time.time()
        feeder.start()
        received = hashlib.sha256()
        total = 0
        for item in c.exec_items(exec_id):
            if isinstance(item, OutputFrame):
                received.update(item.payload)
                total += item.size
            else:
                exit_event = item  # the last is exec.exit
        feeder.join()
        self.assertEqual(failure, [])
        self.assertEqual(exit_event["exit_code"], 0, exit_event)
        self.assertEqual(total, size)
        self.assertEqual(received.hexdigest(), sent.hexdigest())
        print(f"\n50 MB through stdin and back: {size / 1e6 / (time.time() - started):.1f} MB/s", file=sys.stderr)

    def test_twenty_execs_at_once_across_five_sandboxes(self):
        c = self.client
        ids = [c.send("sandbox.create", labels={"case": "twenty"}) for _ in range(5)]
        sandboxes = [c.wait_response(i)["result"]["sandbox"]["id"] for i in ids]
        execs = {}
        for s, sandbox in enumerate(sandboxes):
            for k in range(4):
                tag = f"{s}-{k}"
                execs[tag] = c.call("exec.start", sandbox=sandbox,
                                    shell=f"echo begin-{tag}; sleep 1; echo end-{tag}")["exec"]["id"]
        for tag, exec_id in execs.items():
            exit_event = c.wait_exit(exec_id)
            self.assertEqual(exit_event["exit_code"], 0)
            self.assertEqual(c.output_of(exec_id), f"begin-{tag}\nend-{tag}\n".encode())
        for sandbox in sandboxes:
            c.call("sandbox.destroy", sandbox=sandbox)

    def test_dropped_client_resumes_by_sequence_and_loses_nothing(self):
        first = self.daemon.connect()
        exec_id = first.call("exec.start", sandbox=self.sandbox, exec="resume-1",
                             shell="i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); "
                                   "[ $((i % 50)) = 0 ] && sleep 0.2; done")["exec"]["id"]
        seen = b""
        last_seq = 0
        while seen.count(b"\n") < 60:
            f = first.next_item()
            if isinstance(f, OutputFrame):
                self.assertEqual(f.seq, last_seq + 1 if last_seq else f.seq)
                seen += f.payload
                last_seq = f.seq
        first.drop()
        # Output goes on while nobody listens: once the daemon has closed the
        # dropped connection (and so detached it), the exec's log grows
        # beyond where it stood then, or the exec ends.
        self.daemon.wait_connection_closed(first)
        second = self.daemon.connect()
        at_close = second.call("exec.get", exec=exec_id)["exec"]["last_seq"]
        wait_until(lambda: (lambda e: e["last_seq"] > at_close or e["state"] == "exited")(
                   second.call("exec.get", exec=exec_id)["exec"]), 60,
                   f"output of {exec_id} beyond seq {at_close} with nobody attached")
        second.call("exec.attach", exec=exec_id, after_seq=last_seq)
        exit_event = second.wait_exit(exec_id)
        outputs = second.output_frames(exec_id)
        self.assertEqual(outputs[0].seq, last_seq + 1)
        rest = b"".join(f.payload for f in outputs)
        self.assertEqual(exit_event["exit_code"], 0)
        self.assertEqual(seen + rest, b"".join(f"line-{i}\n".encode() for i in range(400)))
        # A retried start with the same id runs nothing and says so.
        again = second.call("exec.start", sandbox=self.sandbox, exec="resume-1", argv=["false"])
        self.assertTrue(again["existing"])
        self.assertEqual(again["exec"]["exit"]["exit_code"], 0)
        second.close()

    def test_same_exec_id_runs_once(self):
        c = self.client
        first = c.call("exec.start", sandbox=self.sandbox, exec="once-1", shell="echo ran >> /tmp/once; sleep 1")
        second = c.call("exec.start", sandbox=self.sandbox, exec="once-1", shell="echo ran >> /tmp/once; sleep 1")
        self.assertEqual((first["existing"], second["existing"]), (False, True))
        c.wait_exit("once-1")
        _, out, _ = c.run(self.sandbox, ["cat", "/tmp/once"])
        self.assertEqual(out, b"ran\n")

    def test_read_only_attach_watches_but_cannot_write(self):
        c = self.client
        exec_id = c.call("exec.start", sandbox=self.sandbox, argv=["cat"], stdin=True)["exec"]["id"]
        watcher = self.daemon.connect()
        watcher.call("exec.attach", exec=exec_id, read_only=True)
        watcher.send_stdin(exec_id, b"sneaky\n")
        self.assertEqual(watcher.wait_error()["code"], "read_only")
        self.assertEqual(watcher.error_of("exec.kill", exec=exec_id)["code"], "read_only")
        c.send_stdin(exec_id, b"from-owner\n", eof=True)
        watcher.wait_exit(exec_id)
        self.assertEqual(watcher.output_of(exec_id), b"from-owner\n")
        c.wait_exit(exec_id)
        self.assertEqual(c.output_of(exec_id), b"from-owner\n")
        watcher.close()

    def test_destroy_during_a_running_exec_ends_it_with_an_event(self):
        c = self.client
        sandbox = c.call("sandbox.create")["sandbox"]["id"]
        c.call("sandbox.subscribe", sandbox=sandbox)
        exec_id = c.call("exec.start", sandbox=sandbox, argv=["sleep", "100"])["exec"]["id"]
        c.wait_event("exec.started", exec_id)
        c.call("sandbox.destroy", sandbox=sandbox)
        exit_event = c.wait_exit(exec_id, timeout=10)
        self.assertEqual(exit_event["reason"], "sandbox_destroyed")
        state = c.wait_event("sandbox.state", state="exited")
        self.assertEqual(state["reason"], "destroyed")
        # The finished exec stays readable after its sandbox is gone.
        self.assertEqual(c.call("exec.get", exec=exec_id)["exec"]["exit"]["reason"], "sandbox_destroyed")

    def test_exec_timeout_kills_and_reports(self):
        c = self.client
        started = time.time()
        exec_id = c.call("exec.start", sandbox=self.sandbox, argv=["sleep", "100"], timeout_ms=1500)["exec"]["id"]
        timed_out = c.wait_event("exec.timed_out", exec_id, 30)
        exit_event = c.wait_exit(exec_id, 30)
        self.assertLess(timed_out["seq"], exit_event["seq"])
        self.assertEqual((exit_event["reason"], exit_event["signal"]), ("timeout", 9))
        self.assertLess(time.time() - started, 20)

    def test_bad_tokens_get_401(self):
        for header in ([], ["Authorization: Bearer wrong-token-wrong-token"], ["Authorization: Basic abc"]):
            with self.assertRaises(websocket.WebSocketBadStatusException) as e:
                websocket.create_connection(self.daemon.url, header=header, suppress_origin=True, timeout=10)
            self.assertEqual(e.exception.status_code, 401)
        with self.assertRaises(websocket.WebSocketBadStatusException) as e:
            websocket.create_connection(self.daemon.url, header=[f"Authorization: Bearer {self.daemon.token}"],
                                        origin="http://evil.example", timeout=10)
        self.assertEqual(e.exception.status_code, 403)
        # Browsers give the token in the query.
        ws = websocket.create_connection(self.daemon.url + "?access_token=" + self.daemon.token,
                                         suppress_origin=True, timeout=10)
        self.assertEqual(json.loads(ws.recv())["type"], "hello")
        ws.close()

    def test_another_tokens_sandbox_is_not_found(self):
        other = self.daemon.connect(token=OTHER_TOKEN)
        self.assertEqual(other.error_of("sandbox.get", sandbox=self.sandbox)["code"], "not_found")
        self.assertEqual(other.error_of("exec.start", sandbox=self.sandbox, argv=["true"])["code"], "not_found")
        self.assertEqual(other.error_of("sandbox.destroy", sandbox=self.sandbox)["code"], "not_found")
        self.assertEqual(other.call("sandbox.list")["sandboxes"], [])
        other.close()

    def test_malformed_input_gets_documented_errors_and_the_connection_lives(self):
        c = self.daemon.connect()
        c.ws.send("{not json")
        self.assertEqual(c.wait_error()["code"], "bad_json")
        c.ws.send(json.dumps({"id": "x", "op": "sandbox.teleport"}))
        self.assertEqual(c.wait_response("x")["code"], "unknown_op")
        self.assertEqual(c.error_of("exec.start", argv=["true"])["field"], "sandbox")
        self.assertEqual(c.error_of("sandbox.create", cpus="two")["field"], "cpus")
        self.assertEqual(c.error_of("sandbox.create", cpus=64)["code"], "limit_exceeded")
        self.assertEqual(c.error_of("exec.start", sandbox=self.sandbox, argv=[])["code"], "bad_request")
        c.send_stdin("no-such-exec", b"data")
        err = c.wait_error()
        self.assertEqual((err["code"], err["exec"]), ("unknown_exec", "no-such-exec"))
        c.ws.send_binary(b"\x99")
        self.assertEqual(c.wait_error()["code"], "bad_frame")
        self.assertEqual(c.call("hello", protocol=1), {"protocol": 1})
        self.assertEqual(c.error_of("hello", protocol=2)["code"], "unsupported_protocol")
        self.assertEqual(len(c.call("sandbox.list", labels={"suite": "api"})["sandboxes"]), 1)
        # A message declared larger than max_frame_bytes closes the connection
        # with 1009, from its header alone: the client sends no payload, so
        # no unread bytes turn the close into a reset.
        c.ws.sock.sendall(bytes([0x81, 0x80 | 127]) + struct.pack(">Q", 2 << 20) + b"mask")
        with self.assertRaises(ConnectionClosed) as closed:
            while True:
                c.receive()
        self.assertEqual((closed.exception.code, c.close_code), (1009, 1009))
        # The daemon keeps serving others.
        self.assertEqual(self.client.call("hello", protocol=1), {"protocol": 1})


class DaemonLifeTest(unittest.TestCase):
    def test_sigkill_then_restart_leaves_nothing_behind(self):
        first = Daemon(pool_size=1)
        try:
            c = first.connect()
            for _ in range(3):
                c.call("sandbox.create")
            qemus = first.wait_qemus(4)
            self.assertGreaterEqual(len(qemus), 4)
            records = os.listdir(os.path.join(first.runtime_dir, "sandboxes"))
            self.assertGreaterEqual(len(records), 4)
            self.assertTrue(os.path.exists(first.socket_path))
            c.drop()
            first.kill()
            second = Daemon(pool_size=0, workdir=first.dir)
            try:
                out = second.log_text()
                found = re.search(r"cleaned up after an earlier run: (\d+) sandbox", out)
                self.assertTrue(found, out)
                self.assertGreaterEqual(int(found.group(1)), 4)
                for pid in qemus:
                    self.assertFalse(procs.is_running(pid), f"QEMU {pid} of the killed daemon still runs")
                self.assertEqual(os.listdir(os.path.join(second.runtime_dir, "sandboxes")), [])
                # The socket is the new daemon's, and it answers.
                probe = socket.socket(socket.AF_UNIX)
                probe.connect(second.socket_path)
                probe.close()
                # Where it listens is the new daemon's too.
                self.assertEqual(second.endpoints["pid"], second.pid)
                leftovers = [n for n in os.listdir(second.runtime_dir)
                             if n not in ("daemon.lock", "daemon.pid", "api.sock", "endpoints.json", "sandboxes")]
                self.assertEqual(leftovers, [])
            finally:
                second.stop_and_check()
            self.assertFalse(os.path.exists(second.socket_path))
            self.assertFalse(os.path.exists(os.path.join(second.runtime_dir, "endpoints.json")))
        finally:
            first.cleanup()

    def test_sigterm_ends_sessions_with_events_and_leaves_no_vm(self):
        d = Daemon(pool_size=1)
        try:
            c = d.connect()
            sandbox = c.call("sandbox.create")["sandbox"]["id"]
            c.call("sandbox.subscribe", sandbox=sandbox)
            exec_id = c.call("exec.start", sandbox=sandbox, argv=["sleep", "100"])["exec"]["id"]
            c.wait_event("exec.started")
            qemus = d.qemu_pids()
            d.proc.send_signal(signal.SIGTERM)
            exit_event = c.wait_exit(exec_id, 30)
            self.assertEqual(exit_event["reason"], "sandbox_destroyed")
            state = c.wait_event("sandbox.state", timeout=30, state="exited")
            self.assertEqual(state["reason"], "shutdown")
            self.assertEqual(d.proc.wait(60), 0)
            for pid in qemus:
                self.assertFalse(procs.is_running(pid), f"QEMU {pid} outlived the daemon")
            self.assertEqual(os.listdir(os.path.join(d.runtime_dir, "sandboxes")), [])
            d.stop_and_check()  # already stopped: the stopped line, no sanitizer report
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
