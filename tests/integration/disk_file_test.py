#!/usr/bin/env python3
"""A writable layer in a file (sandbox.create's disk_backing "file") against
a real daemon and real VMs (TCG here): the sandbox's writes land on an ext4
disk in a nameless sparse file under the daemon's disk_dir, not in its
memory; it holds more than the guest's memory could; a full disk is ENOSPC
and no_space, and removing files gives the room back to the guest and the
host; a checkpoint of it boots elsewhere; nothing is left behind.
"""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness import procs  # noqa: E402
from sandboxd_harness.client import ServerError  # noqa: E402
from sandboxd_harness.daemon_case import DaemonTestCase  # noqa: E402
from sandboxd_harness.waiting import wait_until  # noqa: E402

MIB = 1 << 20


class DiskFileTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="sandboxd-disks-")
        cls.addClassCleanup(shutil.rmtree, cls.scratch, ignore_errors=True)
        cls.start_daemon(pool_size=0, name="disk-file",
                         extra_args=["--log-level", "info", "--image-store", os.path.join(cls.scratch, "images")])
        # The harness gives every daemon a disk_dir in its own directory.
        cls.disk_dir = os.path.join(cls.daemon.dir, "disks")

    def sh(self, sandbox, script, code=0):
        exit_event, out, err = self.client.run(sandbox, ["bash", "-c", script], timeout=600)
        self.assertEqual(exit_event.get("exit_code"), code, f"{script!r}: {exit_event} {err.decode(errors='replace')}")
        return out.decode(errors="replace"), err.decode(errors="replace")

    def disk_fds(self):
        """The disk files QEMU holds: (fd path, allocated bytes), by the
        daemon's disk_dir showing in the fd's link as a deleted file."""
        found = {}
        for pid in self.daemon.qemu_pids():
            fd_dir = f"/proc/{pid}/fd"
            for fd in os.listdir(fd_dir):
                path = os.path.join(fd_dir, fd)
                try:
                    target = os.readlink(path)
                    if target.startswith(self.disk_dir + "/") and target.endswith(" (deleted)"):
                        st = os.stat(path)
                        # QEMU holds the inherited fd and the one it opened through /proc.
                        found.setdefault((st.st_dev, st.st_ino), (path, st.st_blocks * 512))
                except FileNotFoundError:
                    continue
        return list(found.values())

    def test_refusals(self):
        bad = self.client.error_of("sandbox.create", disk_backing="tape")
        self.assertEqual((bad["code"], bad["field"]), ("bad_request", "disk_backing"))
        bad = self.client.error_of("sandbox.create", disk_backing=1)
        self.assertEqual((bad["code"], bad["field"]), ("bad_request", "disk_backing"))
        over = self.client.error_of("sandbox.create", disk_backing="file", disk_mib=65537)
        self.assertEqual((over["code"], over.get("limit")), ("limit_exceeded", "max_disk_mib"))
        # In memory the layer is bounded by the memory; in a file it is not.
        self.assertEqual(self.client.error_of("sandbox.create", memory_mib=256, disk_mib=1024)["field"], "disk_mib")
        mini = self.client.error_of("sandbox.create", image="mini", disk_backing="file", disk_mib=64)
        self.assertIn("not layered", mini["message"])
        self.assertEqual(self.daemon.qemu_pids(), [])
        self.assertEqual(os.listdir(self.disk_dir) if os.path.isdir(self.disk_dir) else [], [])

    def test_a_layer_in_a_file(self):
        created = self.client.call("sandbox.create", memory_mib=256, disk_backing="file", disk_mib=1024)["sandbox"]
        sandbox = created["id"]
        destroyed = False
        try:
            self.assertEqual((created["state"], created["disk_backing"], created["disk_mib"]), ("ready", "file", 1024))
            # The guest's writable layer is the ext4 disk, the host's file has no name and is sparse.
            out, _ = self.sh(sandbox, "stat -f -c %T /run/sandbox/upper; findmnt -n -o FSTYPE /")
            self.assertEqual(out.split(), ["ext2/ext3", "overlay"])
            self.assertEqual(os.listdir(self.disk_dir), [])
            [(fd_path, allocated)] = self.disk_fds()
            self.assertEqual(os.stat(fd_path).st_size, 1024 * MIB)
            self.assertLess(allocated, 64 * MIB)
            disk = self.client.call("sandbox.get", sandbox=sandbox)["sandbox"]["disk"]
            self.assertGreater(disk["size"], 900 * MIB)
            self.assertLessEqual(disk["size"], 1024 * MIB)

            # More than the guest's 256 MiB of memory could hold in a tmpfs.
            self.sh(sandbox, "dd if=/dev/zero of=/workspace/big bs=1M count=400 status=none && sync")
            out, _ = self.sh(sandbox, "stat -c %s /workspace/big; free -m | awk '/^Mem/ {print $2}'")
            size, guest_memory = out.split()
            self.assertEqual(int(size), 400 * MIB)
            self.assertLess(int(guest_memory), 400)
            self.assertGreaterEqual(os.stat(fd_path).st_blocks * 512, 400 * MIB)

            # Full: ENOSPC in the guest, no_space for file.write; rm makes room in both.
            exit_event, _, err = self.client.run(
                sandbox, ["bash", "-c", "dd if=/dev/zero of=/workspace/fill bs=1M count=2000 status=none"], timeout=600)
            self.assertNotEqual(exit_event["exit_code"], 0)
            self.assertIn(b"No space left on device", err)
            full = self.client.call("sandbox.get", sandbox=sandbox)["sandbox"]["disk"]
            self.assertLess(full["available"], 4 * MIB)
            with self.assertRaises(ServerError) as refused:
                self.client.write_file(sandbox, "/workspace/more", b"m" * (8 * MIB))
            self.assertEqual(refused.exception.code, "no_space")
            self.sh(sandbox, "rm /workspace/big /workspace/fill && sync && fstrim / 2>/dev/null; true")
            self.client.write_file(sandbox, "/workspace/kept.txt", b"written on a disk\n")
            after = self.client.call("sandbox.get", sandbox=sandbox)["sandbox"]["disk"]
            self.assertLess(after["used"], 64 * MIB)
            # The guest's deletes are discarded through to the host's file.
            wait_until(lambda: os.stat(fd_path).st_blocks * 512 < 200 * MIB, 120,
                       lambda: f"the host file to shrink ({os.stat(fd_path).st_blocks * 512 // MIB} MiB allocated)")

            # A checkpoint of a disk-backed layer boots like any other.
            image = self.client.call("sandbox.checkpoint", sandbox=sandbox, image="on-disk")["image"]
            self.assertEqual(image["name"], "on-disk")
            child = self.client.call("sandbox.create", image="on-disk", memory_mib=512)["sandbox"]
            try:
                out, _ = self.sh(child["id"], "cat /workspace/kept.txt; stat -f -c %T /run/sandbox/upper")
                self.assertEqual(out.splitlines(), ["written on a disk", "tmpfs"])
            finally:
                self.client.call("sandbox.destroy", sandbox=child["id"])
            self.client.call("image.delete", image="on-disk")

            self.client.call("sandbox.destroy", sandbox=sandbox)
            destroyed = True
            wait_until(lambda: not self.disk_fds(), 60, "QEMU to let go of the disk")
            self.assertEqual(os.listdir(self.disk_dir), [])
        finally:
            if not destroyed:
                self.client.call("sandbox.destroy", sandbox=sandbox)


if __name__ == "__main__":
    unittest.main(verbosity=2)
