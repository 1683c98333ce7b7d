#!/usr/bin/env python3
"""The file API (WS_PROTOCOL.md, "Files") against real VMs (TCG here): the
metadata operations, transfers both ways with their flow control, every
error code a guest's errno maps to, and a 1 GiB file up and down with the
daemon's memory watched meanwhile.

One daemon and one Debian sandbox (3 GiB, so a 1 GiB file fits its tmpfs
writable layer, which takes up to half the guest's memory) serve every case.
"""
import hashlib
import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.client import ServerError, is_error  # noqa: E402
from sandboxd_harness.daemon import sanitized  # noqa: E402
from sandboxd_harness.daemon_case import DaemonTestCase  # noqa: E402

MIB = 1 << 20


def pseudo_random_pieces(total, piece=MIB, seed=b"sandboxd"):
    """`total` bytes that do not repeat, made fast: a random MiB with each
    piece's number in front."""
    block = hashlib.sha256(seed).digest() * (piece // 32)
    block = bytes(b ^ (i * 131 & 0xff) for i, b in enumerate(block))
    sent = 0
    n = 0
    while sent < total:
        take = min(piece, total - sent)
        yield (struct.pack(">Q", n) + block[8:])[:take]
        sent += take
        n += 1


class FileApiTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_daemon(pool_size=0, name="files", extra_args=["--log-level", "info"])
        created = cls.client.call("sandbox.create", memory_mib=3072)["sandbox"]
        assert created["state"] == "ready", created
        cls.sandbox = created["id"]

    def sh(self, script, user=None):
        members = {"user": user} if user else {}
        exit_event, out, err = self.client.run(self.sandbox, ["bash", "-c", script], timeout=600, **members)
        self.assertEqual(exit_event.get("exit_code"), 0, f"{script!r}: {exit_event} {err.decode(errors='replace')}")
        return out.decode(errors="replace")

    def call(self, op, **members):
        return self.client.call(op, sandbox=self.sandbox, **members)

    def code_of(self, op, **members):
        frame = self.client.error_of(op, sandbox=self.sandbox, **members)
        return frame["code"]

    def test_metadata_operations(self):
        self.call("file.mkdir", path="/workspace/meta/a/b", parents=True)
        self.call("file.mkdir", path="/workspace/meta/a/b", parents=True)  # exists: no error with parents
        self.client.write_file(self.sandbox, "/workspace/meta/a/b/hello.txt", b"hello\n")
        entry = self.call("file.stat", path="/workspace/meta/a/b/hello.txt")["entry"]
        self.assertEqual((entry["name"], entry["type"], entry["size"], entry["mode"]), ("hello.txt", "file", 6, 0o644))
        self.assertLess(abs(entry["mtime_ms"] / 1000 - time.time()), 120)
        self.call("file.chmod", path="/workspace/meta/a/b/hello.txt", mode=0o600)
        self.assertEqual(self.call("file.stat", path="/workspace/meta/a/b/hello.txt")["entry"]["mode"], 0o600)
        self.assertEqual(self.sh("stat -c %a /workspace/meta/a/b/hello.txt"), "600\n")
        # A listing, sorted, of every kind; a name that is not UTF-8 is marked.
        self.sh("cd /workspace/meta && ln -s a/b/hello.txt link && mkfifo pipe && touch $'bad\\xff' z")
        listing = self.call("file.list", path="/workspace/meta")
        names = [e["name"] for e in listing["entries"]]
        self.assertEqual(names, sorted(names))
        by_name = {e["name"]: e for e in listing["entries"]}
        self.assertEqual(by_name["a"]["type"], "directory")
        self.assertEqual((by_name["link"]["type"], by_name["link"]["target"]), ("symlink", "a/b/hello.txt"))
        self.assertEqual(by_name["pipe"]["type"], "other")
        self.assertTrue(by_name["bad\ufffd"]["lossy"])
        self.assertFalse(listing["truncated"])
        cut = self.call("file.list", path="/workspace/meta", limit=2)
        self.assertEqual((len(cut["entries"]), cut["truncated"]), (2, True))
        self.assertEqual(self.call("file.stat", path="/")["entry"]["name"], "/")
        # Rename, refusing to overwrite unless asked.
        self.client.write_file(self.sandbox, "/workspace/meta/other.txt", b"other")
        self.assertEqual(self.code_of("file.rename", **{"from": "/workspace/meta/other.txt", "to": "/workspace/meta/z"}),
                         "exists")
        self.call("file.rename", **{"from": "/workspace/meta/other.txt", "to": "/workspace/meta/z", "overwrite": True})
        self.assertEqual(self.client.read_file(self.sandbox, "/workspace/meta/z")[1], b"other")
        # A symlink is removed, not what it points to; a full directory only recursively.
        self.call("file.remove", path="/workspace/meta/link")
        self.call("file.stat", path="/workspace/meta/a/b/hello.txt")
        self.assertEqual(self.code_of("file.remove", path="/workspace/meta/a"), "not_empty")
        self.call("file.remove", path="/workspace/meta", recursive=True)
        self.assertEqual(self.code_of("file.stat", path="/workspace/meta"), "not_found")

    def test_user_owns_what_it_writes_and_is_refused_what_it_may_not(self):
        self.client.write_file(self.sandbox, "/workspace/mine.txt", b"x", user="sandbox")
        entry = self.call("file.stat", path="/workspace/mine.txt")["entry"]
        self.assertEqual((entry["uid"], entry["gid"]), (1000, 1000))
        self.assertEqual(self.code_of("file.write", path="/root/nope", size=0, transfer="t-perm", user="sandbox"),
                         "permission_denied")
        self.assertEqual(self.code_of("file.read", path="/etc/shadow", transfer="t-shadow", user="sandbox"),
                         "permission_denied")
        unknown = self.client.error_of("file.stat", sandbox=self.sandbox, path="/workspace/x", user="nobody-here")
        self.assertEqual((unknown["code"], unknown["field"]), ("bad_request", "user"))
        self.assertIn("nobody-here", unknown["message"])

    def test_every_error_code(self):
        self.sh("mkdir -p /mnt/small /mnt/ro /workspace/err && mount -t tmpfs -o size=1m tmpfs /mnt/small && "
                "mount -t tmpfs -o ro tmpfs /mnt/ro && cd /workspace/err && ln -sf loop1 loop2 && ln -sf loop2 loop1 "
                "&& echo data > file && mkdir -p full/x")
        cases = [
            ("not_found", "file.stat", {"path": "/workspace/err/missing"}),
            ("not_found", "file.write", {"path": "/workspace/err/no/such/dir/f", "size": 0, "transfer": "e1"}),
            ("exists", "file.mkdir", {"path": "/workspace/err/file"}),
            ("not_a_directory", "file.list", {"path": "/workspace/err/file"}),
            ("not_a_directory", "file.stat", {"path": "/workspace/err/file/x"}),
            ("is_a_directory", "file.read", {"path": "/workspace/err/full", "transfer": "e2"}),
            ("is_a_directory", "file.write", {"path": "/workspace/err/full", "size": 3, "transfer": "e3"}),
            ("not_empty", "file.remove", {"path": "/workspace/err/full"}),
            ("read_only", "file.write", {"path": "/mnt/ro/f", "size": 0, "transfer": "e4"}),
            ("read_only", "file.mkdir", {"path": "/mnt/ro/d"}),
            ("name_too_long", "file.stat", {"path": "/tmp/" + "n" * 256}),
            ("name_too_long", "file.write", {"path": "/tmp/" + "n" * 256, "size": 0, "transfer": "e7"}),
            ("symlink_loop", "file.read", {"path": "/workspace/err/loop1", "transfer": "e5"}),
            ("bad_request", "file.stat", {"path": "relative/path"}),
            ("bad_request", "file.read", {"path": "/dev/zero", "transfer": "e6"}),
            ("bad_request", "file.stat", {"path": "/" + "a/" * 2100}),
        ]
        for code, op, members in cases:
            with self.subTest(op=op, members=members):
                self.assertEqual(self.code_of(op, **members), code)
        # The write into the full directory, refused early, has its frames dropped without an answer.
        for _ in range(3):
            self.client.send_upload("e3", b"x")
        # A disk that fills: no_space, the old file untouched, no temporary left, and room again after rm.
        self.client.write_file(self.sandbox, "/mnt/small/keep", b"old")
        with self.assertRaises(ServerError) as full:
            self.client.write_file(self.sandbox, "/mnt/small/keep", b"y" * (2 * MIB))
        self.assertEqual(full.exception.code, "no_space")
        self.assertEqual(self.client.read_file(self.sandbox, "/mnt/small/keep")[1], b"old")
        self.assertEqual([e["name"] for e in self.call("file.list", path="/mnt/small")["entries"]], ["keep"])
        self.client.write_file(self.sandbox, "/mnt/small/keep", b"z" * (512 << 10))
        # Frames for no transfer, and cancelling one that is not running.
        self.client.send_upload("never-started", b"abc")
        err = self.client.wait_inbox(is_error)
        self.assertEqual((err["code"], err["transfer"]), ("unknown_transfer", "never-started"))
        self.assertEqual(self.client.error_of("file.cancel", transfer="nothing")["code"], "unknown_transfer")
        # A transfer id in use on the connection.
        rid = self.client.send("file.write", sandbox=self.sandbox, path="/workspace/err/dup", size=4, transfer="dup")
        self.assertEqual(self.client.error_of("file.read", sandbox=self.sandbox, path="/workspace/err/file",
                                              transfer="dup")["code"], "bad_request")
        # Too many bytes for a write: bad_frame, the write is cancelled.
        self.client.send_upload("dup", b"12345")
        err = self.client.wait_inbox(is_error)
        self.assertEqual((err["code"], err["transfer"]), ("bad_frame", "dup"))
        frame = self.client.wait_response(rid)
        self.assertEqual(frame["code"], "cancelled")
        self.assertEqual(self.code_of("file.stat", path="/workspace/err/dup"), "not_found")

    def test_a_cancelled_write_leaves_the_file_as_it_was(self):
        self.client.write_file(self.sandbox, "/workspace/atomic.txt", b"before")
        rid = self.client.send("file.write", sandbox=self.sandbox, path="/workspace/atomic.txt", size=8 * MIB,
                               transfer="cancel-me")
        for _ in range(4):
            self.client.send_upload("cancel-me", b"a" * (256 << 10))
        self.assertEqual(self.client.call("file.cancel", transfer="cancel-me"), {"transfer": "cancel-me"})
        self.assertEqual(self.client.wait_response(rid)["code"], "cancelled")
        self.assertEqual(self.client.read_file(self.sandbox, "/workspace/atomic.txt")[1], b"before")
        names = [e["name"] for e in self.call("file.list", path="/workspace")["entries"]]
        self.assertFalse([n for n in names if "upload" in n], names)

    def test_a_file_that_grows_is_read_up_to_its_size_at_open(self):
        self.sh("nohup bash -c 'while :; do printf 0123456789; done > /tmp/growing' >/dev/null 2>&1 & "
                "echo $! > /tmp/growing.pid; until [ -s /tmp/growing ]; do sleep 0.1; done")
        try:
            result, data = self.client.read_file(self.sandbox, "/tmp/growing")
            self.assertEqual(result["size"], len(data))
            self.assertGreater(len(data), 0)
            self.assertEqual(data, (b"0123456789" * (len(data) // 10 + 1))[:len(data)])
        finally:
            self.sh("kill $(cat /tmp/growing.pid)")

    def test_one_gib_up_and_down_in_bounded_memory(self):
        size = 1 << 30
        rss_before = self.daemon.rss_kib()
        peak = [rss_before]

        def pieces():
            for i, piece in enumerate(pseudo_random_pieces(size)):
                if i % 64 == 0:
                    peak[0] = max(peak[0], self.daemon.rss_kib())
                yield piece

        expected = hashlib.sha256()
        for piece in pseudo_random_pieces(size):
            expected.update(piece)
        started = time.monotonic()
        self.assertEqual(self.client.write_file(self.sandbox, "/workspace/big.bin", pieces(), size=size, timeout=1200)["size"],
                         size)
        up_s = time.monotonic() - started
        rss_after_up = self.daemon.rss_kib()
        self.assertEqual(self.call("file.stat", path="/workspace/big.bin")["entry"]["size"], size)
        got = hashlib.sha256()
        count = [0]

        def take(data):
            got.update(data)
            count[0] += 1
            if count[0] % 256 == 0:
                peak[0] = max(peak[0], self.daemon.rss_kib())

        started = time.monotonic()
        self.client.read_file(self.sandbox, "/workspace/big.bin", on_data=take, timeout=1200)
        down_s = time.monotonic() - started
        rss_after = self.daemon.rss_kib()
        self.call("file.remove", path="/workspace/big.bin")
        print(f"\n1 GiB: up {up_s:.1f} s ({size / MIB / up_s:.0f} MiB/s), down {down_s:.1f} s "
              f"({size / MIB / down_s:.0f} MiB/s); daemon RSS before {rss_before / 1024:.1f} MiB, "
              f"after upload {rss_after_up / 1024:.1f} MiB, after download {rss_after / 1024:.1f} MiB, "
              f"peak {peak[0] / 1024:.1f} MiB", file=sys.stderr)
        self.assertEqual(got.hexdigest(), expected.hexdigest())
        # Under ASan freed blocks stay in its quarantine (256 MiB at most), on top.
        slack = 300 * 1024 if sanitized() else 0
        self.assertLess(peak[0] - rss_before, 16 * 1024 + slack,
                        "the daemon's RSS grew by more than 16 MiB during the transfers")
        self.assertLess(rss_after - rss_before, 8 * 1024 + slack)

    def test_guest_checksum_matches_what_was_sent(self):
        data = b"".join(pseudo_random_pieces(8 * MIB, seed=b"guest"))
        self.client.write_file(self.sandbox, "/workspace/check.bin", data, mode=0o640)
        self.assertEqual(self.sh("sha256sum < /workspace/check.bin").split()[0], hashlib.sha256(data).hexdigest())
        self.assertEqual(self.sh("stat -c %a /workspace/check.bin"), "640\n")
        self.sh("head -c 3000000 /dev/urandom > /workspace/from-guest.bin")
        guest_sum = self.sh("sha256sum < /workspace/from-guest.bin").split()[0]
        self.assertEqual(hashlib.sha256(self.client.read_file(self.sandbox, "/workspace/from-guest.bin")[1]).hexdigest(),
                         guest_sum)
        # An empty file both ways.
        self.client.write_file(self.sandbox, "/workspace/empty", b"")
        result, data = self.client.read_file(self.sandbox, "/workspace/empty")
        self.assertEqual((result["size"], data), (0, b""))

    def test_disk_mib_bounds_the_writable_layer_and_sandbox_get_reports_its_use(self):
        self.assertEqual(self.client.error_of("sandbox.create", memory_mib=256, disk_mib=512)["field"], "disk_mib")
        self.assertEqual(self.client.error_of("sandbox.create", image="mini", disk_mib=32)["field"], "disk_mib")
        small = self.client.call("sandbox.create", memory_mib=512, disk_mib=48)["sandbox"]
        try:
            self.assertEqual(small["disk_mib"], 48)
            disk = self.client.call("sandbox.get", sandbox=small["id"])["sandbox"]["disk"]
            self.assertEqual(disk["size"], 48 * MIB)
            self.assertLess(disk["used"], 8 * MIB)
            # Filling it: ENOSPC in the guest, no_space for a file.write, the sandbox fine after rm.
            exit_event, _, err = self.client.run(small["id"], ["bash", "-c", "dd if=/dev/zero of=/workspace/fill bs=1M count=100"],
                                                 timeout=300)
            self.assertNotEqual(exit_event["exit_code"], 0)
            self.assertIn(b"No space left on device", err)
            full = self.client.call("sandbox.get", sandbox=small["id"])["sandbox"]["disk"]
            self.assertGreater(full["used"], 40 * MIB)
            self.assertLess(full["available"], MIB)
            with self.assertRaises(ServerError) as refused:
                self.client.write_file(small["id"], "/workspace/more", b"m" * (2 * MIB))
            self.assertEqual(refused.exception.code, "no_space")
            self.client.call("file.remove", sandbox=small["id"], path="/workspace/fill")
            self.client.write_file(small["id"], "/workspace/more", b"m" * (2 * MIB))
            exit_event, out, _ = self.client.run(small["id"], ["bash", "-c", "echo still here; df -m / | tail -1"])
            self.assertEqual(exit_event["exit_code"], 0)
            self.assertIn(b"still here", out)
            after = self.client.call("sandbox.get", sandbox=small["id"])["sandbox"]["disk"]
            self.assertLess(after["used"], 8 * MIB)
            # The writable layer's mount in the guest stays read-only where the guest sees it.
            exit_event, _, _ = self.client.run(small["id"], ["bash", "-c", "touch /run/sandbox/upper/x"])
            self.assertNotEqual(exit_event["exit_code"], 0)
        finally:
            self.client.call("sandbox.destroy", sandbox=small["id"])

    def test_other_tokens_and_unready_sandboxes(self):
        self.assertEqual(self.client.error_of("file.stat", sandbox="sb-000000000000", path="/")["code"], "not_found")


if __name__ == "__main__":
    unittest.main(verbosity=2)
