#!/usr/bin/env python3
"""The layered Debian images (`default`, `node`, `build`) in real VMs (TCG
here): the agent boots from the initramfs into bookworm stacked from read-only
layers under a writable tmpfs, and execs run there, as root or as the image's
`sandbox` account.

One daemon serves every case; each image boots cold (the pool keeps none).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.daemon_case import DaemonTestCase  # noqa: E402

HELLO_C = r'''#include <stdio.h>
int main(void) { printf("hello from gcc %d\n", __GNUC__); return 0; }
'''


def image_roots():
    return [r for r in os.environ.get("SANDBOXD_IMAGES", "").split(":") if r]


class DebianImageTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        # A copy of the default image whose layer file is not what its manifest
        # says, in a root of its own searched first.
        cls.broken_root = tempfile.mkdtemp(prefix="sandboxd-images-")
        cls.addClassCleanup(shutil.rmtree, cls.broken_root, ignore_errors=True)
        source = next(os.path.join(r, "default") for r in image_roots()
                      if os.path.isfile(os.path.join(r, "default", "layers", "base.squashfs")))
        broken = os.path.join(cls.broken_root, "broken")
        os.makedirs(os.path.join(broken, "layers"))
        for name in ("vmlinuz", "initramfs.cpio", "manifest.json"):
            shutil.copyfile(os.path.join(source, name), os.path.join(broken, name))
        with open(os.path.join(broken, "layers", "base.squashfs"), "wb") as f:
            f.write(b"not a squashfs")
        os.environ["SANDBOXD_IMAGES"] = ":".join([cls.broken_root] + image_roots())
        cls.start_daemon(pool_size=0, network="stack", name="debian", extra_args=["--log-level", "info"])
        cls.sandbox = cls.create(None)

    @classmethod
    def create(cls, image):
        """A sandbox of `image`; None names none, which is the Debian default."""
        members = {"image": image} if image else {}
        created = cls.client.call("sandbox.create", memory_mib=512, **members)["sandbox"]
        assert created["state"] == "ready", created
        assert created["image"] == (image or "default"), created
        return created["id"]

    def sh(self, script, sandbox=None, **members):
        """Runs `script` under bash; returns stdout, failing the test on a non-zero exit."""
        exit_event, out, err = self.client.run(sandbox or self.sandbox, ["bash", "-c", script], timeout=300, **members)
        self.assertEqual(exit_event.get("exit_code"), 0, f"{script!r}: {exit_event} {err.decode(errors='replace')}")
        return out.decode()

    def test_python_with_ssl_and_sqlite(self):
        out = self.sh('python3 -c "import ssl, sqlite3; print(42)"')
        self.assertEqual(out, "42\n")
        self.assertIn('VERSION_CODENAME=bookworm', self.sh("cat /etc/os-release"))

    def test_the_tools_an_agent_expects_are_there(self):
        out = self.sh("for t in apt-get pip3 git curl openssl ps ip less vi sqlite3; do command -v $t; done")
        self.assertEqual(len(out.split()), 10, out)
        self.assertIn("pip", self.sh("python3 -m pip --version"))
        self.assertIn("venv", self.sh("python3 -m venv --help | head -1"))
        self.assertTrue(os.path.basename(self.sh("readlink -f /etc/ssl/certs/ca-certificates.crt").strip()))
        self.assertGreater(int(self.sh("grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt")), 100)

    def test_the_root_is_an_overlay_with_tmpfs_beside_it(self):
        self.assertEqual(self.sh("stat -f -c %T /").strip(), "overlayfs")
        self.assertEqual(self.sh("stat -f -c %T /tmp /dev/shm").split(), ["tmpfs", "tmpfs"])
        self.assertEqual(self.sh("stat -c %a /tmp").strip(), "1777")
        self.assertEqual(self.sh("hostname").strip(), "sandbox")
        self.assertEqual(self.sh("grep -c ^nameserver /etc/resolv.conf").strip(), "1")
        self.assertIn("sandbox", self.sh("getent hosts sandbox"))

    def test_git_init_and_commit_as_the_sandbox_user(self):
        out = self.sh("id -u; id -gn; echo $HOME $USER; cd /workspace && git init -q repo && cd repo && "
                      "echo hi > f && git add f && git -c user.name=a -c user.email=a@b commit -qm one && "
                      "git log --format=%s && stat -c %U .git", user="sandbox")
        self.assertEqual(out.split(), ["1000", "sandbox", "/home/sandbox", "sandbox", "one", "sandbox"])
        # sandbox is not root: the image's own files are not its to change
        exit_event, _, err = self.client.run(self.sandbox, ["touch", "/etc/owned"], user="sandbox")
        self.assertEqual(exit_event["exit_code"], 1)
        self.assertIn(b"Permission denied", err)
        self.assertEqual(self.sh("id -u; echo $HOME").split(), ["0", "/root"])

    def test_an_unknown_user_is_refused_by_name(self):
        exit_event, _, _ = self.client.run(self.sandbox, ["true"], user="nobody-here")
        self.assertEqual((exit_event["reason"], exit_event["exit_code"]), ("start_failed", 126))
        self.assertIn("no user 'nobody-here'", exit_event["message"])

    def test_writes_land_in_the_sandbox_own_layer(self):
        self.sh("echo mine > /etc/marker && rm /etc/issue && apt-get --version >/dev/null")
        other = self.create("default")
        try:
            self.assertEqual(self.sh("cat /etc/marker; test -e /etc/issue || echo gone"), "mine\ngone\n")
            self.assertEqual(self.sh("test -e /etc/marker || echo absent; test -e /etc/issue && echo present",
                                     sandbox=other), "absent\npresent\n")
        finally:
            self.client.call("sandbox.destroy", sandbox=other)

    def test_a_full_writable_layer_is_enospc_and_rm_makes_room(self):
        sandbox = self.create(None)
        try:
            out = self.sh("dd if=/dev/zero of=/fill bs=1M 2>&1; echo status=$?; "
                          "echo more >> /etc/hostname; echo append=$?", sandbox=sandbox)
            self.assertIn("No space left on device", out)
            self.assertIn("status=1", out)
            self.assertIn("append=1", out)  # the layer is full for every file, not just the one
            filled = int(self.sh("stat -c %s /fill", sandbox=sandbox))
            self.assertGreater(filled, 64 << 20)
            self.assertEqual(self.sh("rm /fill && echo ok > /after && cat /after && python3 -c 'print(1)'",
                                     sandbox=sandbox), "ok\n1\n")
        finally:
            self.client.call("sandbox.destroy", sandbox=sandbox)

    def test_node_image(self):
        sandbox = self.create("node")
        try:
            self.assertEqual(self.sh("node -e 'console.log(42)'", sandbox=sandbox), "42\n")
            self.assertRegex(self.sh("npm --version", sandbox=sandbox), r"^\d+\.\d+\.\d+\n$")
            self.assertEqual(self.sh('python3 -c "print(7)"', sandbox=sandbox), "7\n")  # the layer below
        finally:
            self.client.call("sandbox.destroy", sandbox=sandbox)

    def test_build_image_compiles_hello_world(self):
        sandbox = self.create("build")
        try:
            out = self.sh(f"cd /tmp && cat > hello.c <<'EOF'\n{HELLO_C}EOF\ngcc -O2 -o hello hello.c && ./hello && "
                          "make --version | head -1", sandbox=sandbox)
            self.assertEqual(out.splitlines()[0], "hello from gcc 12")
            self.assertIn("GNU Make", out)
            self.assertEqual(self.sh("command -v gcc || echo none", sandbox=self.sandbox), "none\n")
        finally:
            self.client.call("sandbox.destroy", sandbox=sandbox)

    def test_image_list_shows_the_stacks_and_the_damaged_one(self):
        result = subprocess.run([os.environ["SANDBOXD_HOST"], "image", "list", "--json"], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        images = {image["name"]: image for image in json.loads(result.stdout)}
        self.assertEqual([layer["name"] for layer in images["default"]["layers"]], ["base"])
        self.assertEqual([layer["name"] for layer in images["node"]["layers"]], ["base", "node"])
        self.assertEqual((images["mini"]["kind"], images["mini"]["layers"]), ("initramfs", []))
        self.assertEqual(images["default"]["kind"], "layered")
        self.assertGreater(images["default"]["size"], images["default"]["layers"][0]["size"])  # + kernel, initramfs
        self.assertIn("is 14 bytes, the manifest says", images["broken"]["problem"])
        table = subprocess.run([os.environ["SANDBOXD_HOST"], "image", "list"], capture_output=True, text=True,
                               timeout=60).stdout.splitlines()
        self.assertEqual(table[0].split()[:4], ["NAME", "KIND", "LAYERS", "SIZE"])
        self.assertIn(["node", "layered", "base+node"], [line.split()[:3] for line in table])

    def test_a_layer_that_is_not_its_manifest_is_not_booted(self):
        error = self.client.error_of("sandbox.create", image="broken")
        self.assertEqual(error["code"], "unavailable")
        self.assertIn("base.squashfs", error["message"])
        self.assertIn("is 14 bytes, the manifest says", error["message"])
        self.assertTrue(self.daemon.running())
        with open(os.path.join(self.broken_root, "broken", "manifest.json")) as f:
            self.assertEqual([layer["name"] for layer in json.load(f)["layers"]], ["base"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
