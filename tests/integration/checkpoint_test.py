#!/usr/bin/env python3
"""sandbox.checkpoint and image.delete against a real daemon and real VMs
(TCG here): a package pip installs in one sandbox is in every sandbox booted
from its checkpoint and in no sandbox of the image below; the checkpointed
sandbox carries on; names, images and owners are checked; deleting an image
gives its layer back.
"""
import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.daemon_case import DaemonTestCase  # noqa: E402
from sandboxd_harness.waiting import wait_until  # noqa: E402

OTHER_TOKEN = "checkpoint-other-tenant-0123456789"
WHEEL = "hello_ckpt-1.0-py3-none-any.whl"


def make_wheel():
    """A pure-Python wheel pip installs offline: hello_ckpt with a module big
    enough (~256 KiB) that the layer is more than metadata."""
    files = {
        "hello_ckpt/__init__.py": b"VALUE = 42\n",
        "hello_ckpt/table.py": b"ROWS = [\n" + b"".join(b"    %d,\n" % (i * 7919) for i in range(24000)) + b"]\n",
        "hello_ckpt-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: hello-ckpt\nVersion: 1.0\n",
        "hello_ckpt-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: sandboxd-test\nRoot-Is-Purelib: true\n"
                                          b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append("hello_ckpt-1.0.dist-info/RECORD,,")
    files["hello_ckpt-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return out.getvalue()


class CheckpointTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.store = tempfile.mkdtemp(prefix="sandboxd-store-")
        cls.addClassCleanup(shutil.rmtree, cls.store, ignore_errors=True)
        cls.start_daemon(pool_size=0, name="checkpoint", extra_tokens=[OTHER_TOKEN],
                         extra_args=["--log-level", "info", "--image-store", cls.store])
        cls.made = []

    def create(self, image=None, client=None):
        members = {"image": image} if image else {}
        created = (client or self.client).call("sandbox.create", memory_mib=512, **members)["sandbox"]
        self.assertEqual(created["state"], "ready")
        self.addCleanup(lambda: (client or self.client).call("sandbox.destroy", sandbox=created["id"]))
        return created["id"]

    def sh(self, sandbox, script, code=0):
        exit_event, out, err = self.client.run(sandbox, ["bash", "-c", script], timeout=300)
        self.assertEqual(exit_event.get("exit_code"), code, f"{script!r}: {exit_event} {err.decode(errors='replace')}")
        return out.decode()

    def checkpoint(self, sandbox, name):
        started = time.monotonic()
        image = self.client.call("sandbox.checkpoint", sandbox=sandbox, image=name)["image"]
        return image, time.monotonic() - started

    def test_a_pip_install_survives_the_checkpoint_into_every_fork(self):
        origin = self.create()
        # The wheel comes in on stdin, as a file a client uploads would.
        upload = self.client.call("exec.start", sandbox=origin, argv=["sh", "-c", f"cat > /tmp/{WHEEL}"],
                                  stdin=True)["exec"]["id"]
        self.client.send_stdin(upload, make_wheel(), eof=True)
        self.assertEqual(self.client.wait_exit(upload)["exit_code"], 0)
        self.sh(origin, f"pip install --quiet --no-index --break-system-packages /tmp/{WHEEL} && "
                        "echo kept > /workspace/note && rm /etc/issue && mkdir -p /opt/empty")
        # A process that runs through the checkpoint: paused, then continued.
        ticker = self.client.call("exec.start", sandbox=origin,
                                  shell="while :; do date +%s%N > /tmp/tick; sleep 0.1; done")["exec"]["id"]
        pid = self.client.wait_event("exec.started", ticker)["pid"]

        image, seconds = self.checkpoint(origin, "with-hello")
        self.made.append("with-hello")
        self.assertEqual([layer["name"] for layer in image["layers"]], ["base", "with-hello"])
        top = image["layers"][-1]
        print(f"\ncheckpoint after pip install of a 0.3 MB wheel: {seconds:.1f} s, new layer "
              f"{top['size'] / 1e6:.2f} MB ({top['fs']})", file=sys.stderr)
        self.assertEqual(len(top["sha256"]), 64)

        # The origin carries on, its ticker included.
        self.assertNotIn("stopped", self.sh(origin, f"grep State /proc/{pid}/status"))
        first = self.sh(origin, "cat /tmp/tick")
        wait_until(lambda: self.sh(origin, "cat /tmp/tick") != first, 30, "the ticker ticking after the checkpoint")
        self.client.call("exec.kill", exec=ticker)

        forks = [self.create("with-hello") for _ in range(2)]
        for fork in forks:
            self.assertEqual(self.sh(fork, "python3 -c 'import hello_ckpt, hello_ckpt.table as t; "
                                           "print(hello_ckpt.VALUE, len(t.ROWS))'"), "42 24000\n")
            self.assertEqual(self.sh(fork, "cat /workspace/note; test -e /etc/issue || echo issue-gone; "
                                           "test -d /opt/empty && echo dir-kept; test -e /tmp/tick || echo tmp-not-kept"),
                             "kept\nissue-gone\ndir-kept\ntmp-not-kept\n")
        self.sh(forks[0], "echo mine > /workspace/only-first")
        self.assertEqual(self.sh(forks[1], "test -e /workspace/only-first || echo absent"), "absent\n")

        plain = self.create()
        self.sh(plain, "python3 -c 'import hello_ckpt'", code=1)
        self.assertEqual(self.sh(plain, "test -e /etc/issue && echo present"), "present\n")

        # A checkpoint of a fork stacks one more layer.
        self.sh(forks[0], "echo second > /workspace/second")
        image, _ = self.checkpoint(forks[0], "with-hello-2")
        self.made.append("with-hello-2")
        self.assertEqual([layer["name"] for layer in image["layers"]], ["base", "with-hello", "with-hello-2"])
        third = self.create("with-hello-2")
        self.assertEqual(self.sh(third, "cat /workspace/note /workspace/second /workspace/only-first"),
                         "kept\nsecond\nmine\n")

    def test_checkpoints_that_cannot_be(self):
        sandbox = self.create()
        for name in ["", "-x", "../up", "a/b", "x" * 65, "default", "mini"]:
            error = self.client.error_of("sandbox.checkpoint", sandbox=sandbox, image=name)
            self.assertEqual(error["code"], "bad_request", name)
        self.assertEqual(self.client.error_of("sandbox.checkpoint", sandbox="sb-nope", image="x1")["code"],
                         "not_found")
        self.assertEqual(self.client.error_of("sandbox.checkpoint", sandbox=sandbox)["code"], "bad_request")
        mini = self.create("mini")
        error = self.client.error_of("sandbox.checkpoint", sandbox=mini, image="from-mini")
        self.assertEqual(error["code"], "bad_request")
        self.assertIn("no layers", error["message"])
        # Another tenant's sandbox is not found, as for every other operation.
        other = self.daemon.connect(token=OTHER_TOKEN)
        try:
            self.assertEqual(other.error_of("sandbox.checkpoint", sandbox=sandbox, image="theirs")["code"],
                             "not_found")
        finally:
            other.close()
        self.assertEqual(sorted(os.listdir(self.store)), sorted(self.made))  # nothing half-made left

    def test_a_guest_that_sends_no_squashfs_makes_no_image(self):
        sandbox = self.create()
        # The guest is root's to change: its mksquashfs now writes noise.
        self.sh(sandbox, "printf '#!/bin/sh\\nhead -c 3000000 /dev/urandom > \"$2\"\\n' > /usr/local/sbin/mksquashfs && "
                         "chmod +x /usr/local/sbin/mksquashfs")
        error = self.client.error_of("sandbox.checkpoint", sandbox=sandbox, image="noise")
        self.assertEqual(error["code"], "unavailable")
        self.assertIn("not a squashfs", error["message"])
        self.assertFalse(os.path.exists(os.path.join(self.store, "noise")))
        self.assertEqual([e for e in os.listdir(self.store) if e.startswith(".")], [])
        self.assertTrue(self.daemon.running())
        self.assertEqual(self.sh(sandbox, "echo still-here"), "still-here\n")

    def test_deleting_an_image_gives_its_layer_back(self):
        sandbox = self.create()
        self.sh(sandbox, "head -c 1000000 /dev/urandom > /workspace/blob")
        image, _ = self.checkpoint(sandbox, "to-delete")
        own_layer = os.path.join(self.store, "to-delete", "layers", "to-delete.squashfs")
        self.assertEqual(os.stat(own_layer).st_nlink, 1)  # no other image has it
        self.assertEqual(os.stat(own_layer).st_size, image["layers"][-1]["size"])
        self.assertGreater(image["layers"][-1]["size"], 1000000)

        other = self.daemon.connect(token=OTHER_TOKEN)
        try:
            self.assertEqual(other.error_of("image.delete", image="to-delete")["code"], "not_found")
        finally:
            other.close()
        booted = self.create("to-delete")
        self.client.call("image.delete", image="to-delete")
        self.assertFalse(os.path.exists(os.path.join(self.store, "to-delete")))
        self.assertEqual([e for e in os.listdir(self.store) if e.startswith(".")], [])
        self.assertEqual(self.client.error_of("image.delete", image="to-delete")["code"], "not_found")
        self.assertEqual(self.client.error_of("sandbox.create", image="to-delete")["code"], "unavailable")
        # A sandbox booted from it before keeps its disks.
        self.assertEqual(self.sh(booted, "wc -c < /workspace/blob"), "1000000\n")

    def test_the_host_administrator_removes_any_checkpoint_image(self):
        sandbox = self.create()
        self.sh(sandbox, "echo kept > /workspace/kept")
        self.checkpoint(sandbox, "admin-rm")
        host = os.environ["SANDBOXD_HOST"]

        def image_rm(*names):
            return subprocess.run([host, "image", "rm", "--image-store", self.store, *names], capture_output=True,
                                  text=True, timeout=60)

        removed = image_rm("admin-rm")
        self.assertEqual((removed.returncode, removed.stdout), (0, "admin-rm\n"), removed.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.store, "admin-rm")))
        self.assertEqual(self.client.error_of("sandbox.create", image="admin-rm")["code"], "unavailable")
        again = image_rm("admin-rm", "default")
        self.assertEqual(again.returncode, 125)
        self.assertIn("admin-rm: no such image", again.stderr)
        self.assertIn("default: not a checkpoint image", again.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
