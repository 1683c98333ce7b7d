#!/usr/bin/env python3
"""Host-controlled mounts (WS_PROTOCOL.md, "Mounts") against real VMs (TCG
here): a `host` mount that the guest and the host both see change at once,
escapes that end at the mount's root, a read-only mount refusing writes with
EROFS, a `memory` mount with starting files, the tools an agent runs on a
mount (git, tar, vi, pip install -e, npm install), the requests the daemon
refuses, and a guest that floods its mounts port.

One daemon, allowed to serve one temporary host directory, and one Debian
sandbox with three mounts serve every case.
"""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sandboxd_harness.daemon_case import DaemonTestCase  # noqa: E402

SECRET = "host-secret-7f3a91"


class MountsTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.top = tempfile.mkdtemp(prefix="sandboxd-mounts-")
        cls.addClassCleanup(shutil.rmtree, cls.top, True)
        cls.allowed = os.path.join(cls.top, "allowed")
        cls.root = os.path.join(cls.allowed, "agent42")
        cls.ro_root = os.path.join(cls.allowed, "reference")
        cls.outside = os.path.join(cls.top, "outside")
        for d in (cls.root, cls.ro_root, cls.outside):
            os.makedirs(d)
        with open(os.path.join(cls.outside, "secret"), "w") as f:
            f.write(SECRET + "\n")
        with open(os.path.join(cls.ro_root, "readme.txt"), "w") as f:
            f.write("reference data\n")
        # A link the host made inside the root, pointing out of it.
        os.symlink("../../outside", os.path.join(cls.root, "hostlink"))
        os.symlink(os.path.join(cls.outside, "secret"), os.path.join(cls.root, "abslink"))
        cls.start_daemon(pool_size=0, name="mounts",
                         extra_args=["--log-level", "info", "--allow-host-root", cls.allowed])
        created = cls.client.call("sandbox.create", mounts={
            "/workspace": {"type": "host", "path": cls.root},
            "/reference": {"type": "host", "path": cls.ro_root, "read_only": True},
            "/data": {"type": "memory", "files": {
                "hello.txt": "hi from memory\n",
                "bin/run.sh": {"text": "#!/bin/sh\necho ran $1\n", "mode": 0o755},
                "blob.bin": {"base64": "AAEC/w=="},
            }},
        })["sandbox"]
        assert created["state"] == "ready", created
        cls.sandbox = created["id"]
        cls.created = created

    def run_in(self, script, user=None):
        members = {"user": user} if user else {}
        exit_event, out, err = self.client.run(self.sandbox, ["bash", "-c", script], timeout=600, **members)
        return exit_event.get("exit_code"), out.decode(errors="replace"), err.decode(errors="replace")

    def sh(self, script, user=None):
        code, out, err = self.run_in(script, user)
        self.assertEqual(code, 0, f"{script!r}: exit {code}: {err}")
        return out

    def host_file(self, name):
        with open(os.path.join(self.root, name)) as f:
            return f.read()

    def test_sandbox_object_shows_the_mounts(self):
        mounts = self.created["mounts"]
        self.assertEqual(mounts["/workspace"], {"type": "host", "path": os.path.realpath(self.root), "read_only": False})
        self.assertEqual(mounts["/reference"]["read_only"], True)
        self.assertEqual(mounts["/data"], {"type": "memory", "read_only": False})
        self.assertIn("fuse", self.sh("grep ' /workspace ' /proc/mounts"))

    def test_guest_writes_are_on_the_host_at_once(self):
        self.sh("echo written by the guest > /workspace/from-guest.txt")
        self.assertEqual(self.host_file("from-guest.txt"), "written by the guest\n")
        self.sh("mkdir -p /workspace/d1/d2 && echo deep > /workspace/d1/d2/f && mv /workspace/d1 /workspace/moved")
        self.assertEqual(self.host_file("moved/d2/f"), "deep\n")
        self.sh("rm -r /workspace/moved")
        self.assertFalse(os.path.exists(os.path.join(self.root, "moved")))

    def test_host_changes_are_seen_by_the_guest_at_once(self):
        path = os.path.join(self.root, "from-host.txt")
        with open(path, "w") as f:
            f.write("version one\n")
        self.assertEqual(self.sh("cat /workspace/from-host.txt"), "version one\n")
        with open(path, "w") as f:
            f.write("version two, longer than the first\n")
        self.assertEqual(self.sh("cat /workspace/from-host.txt"), "version two, longer than the first\n")
        os.unlink(path)
        code, _, err = self.run_in("cat /workspace/from-host.txt")
        self.assertNotEqual(code, 0)
        self.assertIn("No such file", err)

    def test_escapes_end_at_the_mount_root(self):
        # Links the host made and links the guest makes are read as text and
        # followed by the guest's kernel in the guest's own tree: none reaches
        # the host's files beside the served directory.
        script = r"""
            cd /workspace
            ln -s / rootlink; ln -s ../../outside up; ln -s %s hostpath
            for p in rootlink/etc/shadow up/secret hostpath hostlink/secret abslink ../outside/secret \
                     /workspace/../../outside/secret; do cat "$p" 2>&1; done
            ls -la /workspace/.. 2>&1
            readlink hostlink abslink
        """ % os.path.join(self.outside, "secret")
        code, out, err = self.run_in(script)
        self.assertNotIn(SECRET, out + err)
        # rootlink/etc/shadow is the guest's own shadow file.
        self.assertEqual(self.sh("cat /workspace/rootlink/etc/shadow"), self.sh("cat /etc/shadow"))
        self.assertIn("../../outside", out)  # the link's text is what the host stored
        # The guest's links are links on the host, never followed there.
        self.assertEqual(os.readlink(os.path.join(self.root, "rootlink")), "/")
        self.assertEqual(os.listdir(self.outside), ["secret"])

    def test_limits_give_clear_errors(self):
        cases = [
            ("touch /workspace/" + "n" * 256, "File name too long"),
            ("cd /workspace && ln -s loop1 loop2 && ln -s loop2 loop1 && cat loop1", "Too many levels of symbolic links"),
            ("mkfifo /workspace/fifo && mknod /workspace/dev c 1 3", "Operation not permitted"),
            ("mkdir /workspace/full && rmdir /workspace", "Device or resource busy"),
        ]
        for script, message in cases:
            with self.subTest(script=script[:40]):
                code, _, err = self.run_in(script)
                self.assertNotEqual(code, 0)
                self.assertIn(message, err)
        self.assertTrue(os.path.exists(os.path.join(self.root, "fifo")))  # a FIFO may be made
        self.assertFalse(os.path.exists(os.path.join(self.root, "dev")))
        # A name of 255 bytes is fine.
        self.sh("touch /workspace/" + "n" * 255 + " && rm /workspace/" + "n" * 255)

    def test_read_only_mount_refuses_writes(self):
        self.assertEqual(self.sh("cat /reference/readme.txt"), "reference data\n")
        for script in ("echo x > /reference/new.txt", "echo x >> /reference/readme.txt", "rm /reference/readme.txt",
                       "mkdir /reference/d", "chmod 600 /reference/readme.txt", "touch /reference/readme.txt"):
            code, _, err = self.run_in(script)
            self.assertNotEqual(code, 0, script)
            self.assertIn("Read-only file system", err, script)
        self.assertEqual(sorted(os.listdir(self.ro_root)), ["readme.txt"])

    def test_memory_mount_starts_with_its_files(self):
        self.assertEqual(self.sh("cat /data/hello.txt"), "hi from memory\n")
        self.assertEqual(self.sh("/data/bin/run.sh now"), "ran now\n")
        self.assertEqual(self.sh("od -An -tx1 /data/blob.bin").split(), ["00", "01", "02", "ff"])
        self.sh("echo new > /data/new.txt && mv /data/new.txt /data/bin/ && ln /data/hello.txt /data/hard")
        self.assertEqual(self.sh("cat /data/bin/new.txt; stat -c %h /data/hard"), "new\n2\n")

    def test_tools_work_on_a_host_mount(self):
        self.sh("""set -e
            mkdir -p /workspace/repo && cd /workspace/repo
            git init -q . && git config user.email a@b && git config user.name a
            for i in $(seq 1 50); do echo "line $i" > file$i.txt; done
            git add . && git commit -qm first
            echo changed >> file7.txt && git commit -qam second
            test "$(git log --oneline | wc -l)" = 2
            git status --porcelain | (! grep .)
            git clone -q /workspace/repo /workspace/clone && test -f /workspace/clone/file50.txt
            tar -C /workspace -cf /tmp/repo.tar repo && mkdir /workspace/untar && tar -C /workspace/untar -xf /tmp/repo.tar
            cmp /workspace/repo/file7.txt /workspace/untar/repo/file7.txt
            printf 'alpha\\nbeta\\n' > /workspace/edit.txt
            vi -es -c '%s/beta/gamma/' -c 'wq' /workspace/edit.txt
            grep -qx gamma /workspace/edit.txt
        """)
        self.assertIn("gamma", self.host_file("edit.txt"))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "clone", ".git")),
                        (os.listdir(os.path.join(self.root, "clone")), self.sh("ls -la /workspace/clone")))

    def test_pip_install_editable_on_a_host_mount(self):
        project = os.path.join(self.root, "proj")
        os.makedirs(os.path.join(project, "mypkg"))
        with open(os.path.join(project, "mypkg", "__init__.py"), "w") as f:
            f.write("VALUE = 41\n")
        with open(os.path.join(project, "setup.py"), "w") as f:
            f.write("from setuptools import setup\nsetup(name='mypkg', version='1.0', packages=['mypkg'])\n")
        self.sh("cd /workspace/proj && python3 -m venv --system-site-packages /tmp/venv && "
                "/tmp/venv/bin/pip install -q --no-index --no-build-isolation -e .")
        # Editable: a change on the host is what the guest imports.
        with open(os.path.join(project, "mypkg", "__init__.py"), "w") as f:
            f.write("VALUE = 42\n")
        self.assertEqual(self.sh("cd / && /tmp/venv/bin/python -c 'import mypkg; print(mypkg.VALUE)'"), "42\n")

    def test_npm_install_on_a_host_mount(self):
        # In the node image: a project whose dependency is a package tarball
        # on the mount, installed (unpacked into node_modules) and installed
        # again from its lock file, all without a registry.
        project = os.path.join(self.root, "npm")
        os.makedirs(os.path.join(project, "lib"))
        with open(os.path.join(project, "lib", "package.json"), "w") as f:
            f.write('{"name": "lib", "version": "1.0.0", "main": "index.js"}\n')
        with open(os.path.join(project, "lib", "index.js"), "w") as f:
            f.write("module.exports = () => 41 + 1;\n")
        os.makedirs(os.path.join(project, "app"))
        with open(os.path.join(project, "app", "package.json"), "w") as f:
            f.write('{"name": "app", "version": "1.0.0", "dependencies": {"lib": "file:../lib-1.0.0.tgz"}}\n')
        node = self.client.call("sandbox.create", image="node", memory_mib=512,
                                mounts={"/workspace": {"type": "host", "path": self.root}})["sandbox"]["id"]
        try:
            script = """set -e
                cd /workspace/npm/lib && npm pack --silent --pack-destination /workspace/npm >/dev/null
                cd /workspace/npm/app && npm install --offline --no-audit --no-fund --silent
                node -e 'console.log(require("lib")())'
                npm ci --offline --no-audit --no-fund --silent
                node -e 'console.log(require("lib")())'
            """
            exit_event, out, err = self.client.run(node, ["bash", "-c", script], timeout=600)
            self.assertEqual(exit_event.get("exit_code"), 0, err.decode(errors="replace"))
            self.assertEqual(out.decode().split(), ["42", "42"])
        finally:
            self.client.call("sandbox.destroy", sandbox=node)
        self.assertTrue(os.path.isfile(os.path.join(project, "app", "node_modules", "lib", "index.js")))
        self.assertTrue(os.path.isfile(os.path.join(project, "app", "package-lock.json")))

    def test_files_of_the_sandbox_user_belong_to_it_on_the_host(self):
        self.sh("mkdir -p /workspace/mine && chown sandbox: /workspace/mine")  # root in the guest may chown
        self.sh("echo mine > /workspace/mine/by-user.txt", user="sandbox")
        st = os.stat(os.path.join(self.root, "mine", "by-user.txt"))
        self.assertEqual((st.st_uid, st.st_gid), (1000, 1000))
        # setuid bits never reach the host.
        self.sh("cp /bin/true /workspace/suid && chmod 4755 /workspace/suid")
        self.assertEqual(os.stat(os.path.join(self.root, "suid")).st_mode & 0o7777, 0o755)

    def test_file_api_reaches_into_mounts(self):
        self.client.write_file(self.sandbox, "/workspace/via-api.txt", b"through the file API\n")
        self.assertEqual(self.host_file("via-api.txt"), "through the file API\n")
        _, data = self.client.read_file(self.sandbox, "/data/hello.txt")
        self.assertEqual(data, b"hi from memory\n")
        frame = self.client.error_of("file.write", sandbox=self.sandbox, path="/reference/x", size=0, transfer="t-ro")
        self.assertEqual(frame["code"], "read_only")

    def test_refused_mount_requests(self):
        listed_before = len(self.client.call("sandbox.list")["sandboxes"])
        cases = [
            ({"/proc/x": {"type": "memory"}}, "mounts./proc/x"),
            ({"/": {"type": "memory"}}, "mounts./"),
            ({"relative": {"type": "memory"}}, "mounts.relative"),
            ({"/a/../b": {"type": "memory"}}, "mounts./a/../b"),
            ({"/a": {"type": "memory"}, "/a/b": {"type": "memory"}}, "mounts./a/b"),
            ({"/w": {"type": "host", "path": self.outside}}, "mounts./w.path"),
            ({"/w": {"type": "host", "path": os.path.join(self.allowed, "..", "outside")}}, "mounts./w.path"),
            ({"/w": {"type": "host", "path": os.path.join(self.allowed, "missing")}}, "mounts./w.path"),
            ({"/w": {"type": "host", "path": os.path.join(self.root, "hostlink")}}, "mounts./w.path"),
            ({"/w": {"type": "host"}}, "mounts./w.path"),
            ({"/w": {"type": "nfs"}}, "mounts./w.type"),
            ({"/w": {"type": "memory", "files": {"../escape": "x"}}}, "mounts./w.files"),
            ({"/w": {"type": "memory", "files": {"a": {"base64": "not base64!"}}}}, "mounts./w.files.a"),
            ({"/w": {"type": "memory", "bogus": 1}}, "mounts./w"),
            ({f"/m{i}": {"type": "memory"} for i in range(17)}, "mounts"),
        ]
        for mounts, field in cases:
            with self.subTest(mounts=list(mounts)[:2]):
                frame = self.client.error_of("sandbox.create", mounts=mounts)
                self.assertEqual(frame["code"], "bad_request", frame)
                self.assertTrue(frame.get("field", "").startswith(field), frame)
        # Nothing was started for any of them.
        listed = self.client.call("sandbox.list")["sandboxes"]
        self.assertEqual(len(listed), listed_before, listed)

    def test_daemon_survives_a_guest_that_floods_its_mounts_port(self):
        # In a sandbox of its own: root in the guest stops the bridge and
        # writes garbage, then a frame length the protocol cannot have, to
        # the port. The daemon drops that port (its mounts stop working) and
        # goes on serving both sandboxes.
        other = self.client.call("sandbox.create", image="mini",
                                 mounts={"/m": {"type": "memory", "files": {"f": "ok"}}})["sandbox"]["id"]
        try:
            exit_event, out, _ = self.client.run(other, ["cat", "/m/f"], timeout=300)
            self.assertEqual(out, b"ok")
            exit_event, out, err = self.client.run(other, ["sh", "-c", r"""
                port=""
                for d in /sys/class/virtio-ports/*; do [ "$(cat $d/name)" = sandbox.fs ] && port=/dev/${d##*/}; done
                [ -n "$port" ] || exit 10
                i=0
                while [ $i -lt 200 ]; do
                  for c in /proc/[0-9]*/comm; do
                    [ "$(cat $c 2>/dev/null)" = sandbox-fs ] && p=${c%/comm} && kill ${p#/proc/}
                  done
                  # A failed exec redirection would end the shell: try in a subshell first.
                  if (exec 3<>"$port") 2>/dev/null && exec 3<>"$port"; then break; fi
                  i=$((i + 1))
                done
                [ $i -lt 200 ] || exit 11
                # Frames that do not decode (unknown types, wrong versions,
                # random bodies), then a length no frame can have, then more.
                j=0
                while [ $j -lt 300 ]; do
                  printf '\000\000\000\002\001\177\000\000\000\002\011\003' >&3
                  printf '\000\000\000\040' >&3; head -c 32 /dev/urandom >&3
                  j=$((j + 1))
                done
                printf '\177\377\377\377\001\003' >&3
                head -c 65536 /dev/urandom >&3
                exec 3>&-
            """], timeout=300)
            self.assertEqual(exit_event.get("exit_code"), 0, err)
            exit_event, out, _ = self.client.run(other, ["echo", "still here"], timeout=300)
            self.assertEqual(out, b"still here\n")
            # The mount is gone, and says so at once rather than hanging.
            exit_event, out, err = self.client.run(other, ["cat", "/m/f"], timeout=300)
            self.assertNotEqual(exit_event.get("exit_code"), 0)
            self.assertIn(b"not connected", err)
        finally:
            self.client.call("sandbox.destroy", sandbox=other)
        self.assertEqual(self.sh("cat /data/hello.txt"), "hi from memory\n")

if __name__ == "__main__":
    unittest.main(verbosity=2)
