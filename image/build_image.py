#!/usr/bin/env python3
"""Builds the sandboxd guest image from Debian packages.

Output (in --out): vmlinuz (Debian's cloud kernel), initramfs.cpio (the
sandbox-agent as /init, busybox, the kernel modules the agent loads, and
optionally qemu-ga with its libraries) and manifest.json (what went in, with
content hashes).

The .debs are cached in CACHE/debs and whole images in CACHE/images/<key>,
where the key is a hash of everything that goes in (this script, the agent
binary, each package's hash, the options): a rebuild with nothing changed is a
copy. The initramfs is written here as a deterministic, uncompressed newc cpio
(no root, no cpio tool); uncompressed because decompressing under TCG
emulation costs more boot time than loading the larger file.
"""
import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

# Modules the agent needs; their dependencies come from modules.dep.
WANTED_MODULES = ["virtio_mmio", "virtio_pci", "virtio_console", "virtio_net", "fuse"]
KERNEL_META = "linux-image-cloud-amd64"
KEEP_IMAGES = 4


def log(msg):
    print(f"build_image: {msg}", file=sys.stderr)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def apt_show(name):
    """Fields of the candidate version of `name`, or None."""
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", name],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    fields = {}
    key = None
    for line in r.stdout.splitlines():
        if not line:
            break
        if line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


class Packages:
    """Resolves and fetches .debs into the cache, verifying their hashes."""

    def __init__(self, cache):
        self.dir = os.path.join(cache, "debs")
        os.makedirs(self.dir, exist_ok=True)
        self.offline = os.environ.get("SANDBOXD_OFFLINE") == "1"
        self.updated = False

    def show(self, name):
        info = apt_show(name)
        if info is None and not self.updated:
            log("apt knows nothing of %s; running apt-get update" % name)
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            self.updated = True
            info = apt_show(name)
        if info is None:
            sys.exit(f"build_image: package {name} not found by apt (is a Debian bookworm source configured?)")
        return info

    def fetch(self, name):
        """Path and sha256 of the cached .deb for `name`."""
        if self.offline:
            for f in sorted(os.listdir(self.dir)):
                if f.startswith(name + "_") and f.endswith(".deb"):
                    path = os.path.join(self.dir, f)
                    return path, sha256_file(path), f.split("_")[1].replace("%3a", ":")
            sys.exit(f"build_image: SANDBOXD_OFFLINE=1 but no {name} .deb in {self.dir}")
        info = self.show(name)
        version, sha = info["Version"], info["SHA256"]
        # apt-get download names the file with the epoch's ':' escaped as %3a.
        arch = info.get("Architecture", "amd64")
        path = os.path.join(self.dir, f"{name}_{version.replace(':', '%3a')}_{arch}.deb")
        if not (os.path.exists(path) and sha256_file(path) == sha):
            log(f"downloading {name} {version}")
            r = subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=self.dir,
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"build_image: apt-get download {name}={version} failed: {r.stderr.strip()}")
        if sha256_file(path) != sha:
            os.unlink(path)
            sys.exit(f"build_image: {path} does not match the SHA256 apt lists for it")
        return path, sha, version

    def kernel_package(self):
        """The versioned kernel package the meta package points at."""
        if self.offline:
            for f in sorted(os.listdir(self.dir)):
                if f.startswith("linux-image-") and "-cloud-amd64_" in f and not f.startswith(KERNEL_META):
                    return f.split("_")[0]
            sys.exit("build_image: SANDBOXD_OFFLINE=1 but no kernel .deb in the cache")
        depends = self.show(KERNEL_META).get("Depends", "")
        for dep in depends.split(","):
            dep = dep.strip().split(" ")[0]
            if dep.startswith("linux-image-"):
                return dep
        sys.exit(f"build_image: cannot tell which kernel {KERNEL_META} depends on ({depends!r})")


class Cpio:
    """A newc cpio archive built in memory, entries sorted for determinism."""

    def __init__(self):
        self.entries = {}  # path -> (mode, data, rdev)

    def dir(self, path, mode=0o755):
        self.entries[path] = (stat.S_IFDIR | mode, b"", (0, 0))

    def file(self, path, data, mode=0o644):
        self.entries[path] = (stat.S_IFREG | mode, data, (0, 0))

    def symlink(self, path, target):
        self.entries.setdefault(path, (stat.S_IFLNK | 0o777, target.encode(), (0, 0)))

    def chardev(self, path, major, minor, mode=0o600):
        self.entries[path] = (stat.S_IFCHR | mode, b"", (major, minor))

    def parents(self):
        for path in list(self.entries):
            parent = os.path.dirname(path)
            while parent not in ("", "/") and parent not in self.entries:
                self.dir(parent)
                parent = os.path.dirname(parent)

    def bytes(self):
        self.parents()
        out = bytearray()

        def entry(ino, name, mode, data, rdev):
            nlink = 2 if stat.S_ISDIR(mode) else 1
            header = "070701" + "".join("%08x" % v for v in (
                ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0))
            out.extend(header.encode() + name.encode() + b"\0")
            out.extend(b"\0" * (-len(out) % 4))
            out.extend(data)
            out.extend(b"\0" * (-len(out) % 4))

        for ino, path in enumerate(sorted(self.entries), start=1):
            mode, data, rdev = self.entries[path]
            entry(ino, path.lstrip("/"), mode, data, rdev)
        entry(0, "TRAILER!!!", 0, b"", (0, 0))
        return bytes(out)


def module_closure(root, release):
    """Module files (relative to root) for WANTED_MODULES, dependencies first."""
    subprocess.run(["depmod", "-b", root, release], check=True)
    moddir = os.path.join(root, "lib", "modules", release)
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
    by_name = {os.path.basename(p).split(".ko")[0].replace("-", "_"): p for p in deps}
    order, seen = [], set()

    def visit(path, stack=()):
        if path in seen:
            return
        if path in stack:
            sys.exit(f"build_image: module dependency cycle at {path}")
        for dep in deps.get(path, []):
            visit(dep, stack + (path,))
        seen.add(path)
        order.append(path)

    for name in WANTED_MODULES:
        if name not in by_name:
            sys.exit(f"build_image: kernel {release} has no module {name} (built in?)")
        visit(by_name[name])
    return [os.path.join("lib", "modules", release, p) for p in order]


def shared_libraries(binary):
    """(soname path, real file) pairs ldd resolves for `binary`, and the loader."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    libs = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the loader
    return [(lib, os.path.realpath(lib)) for lib in libs]


def build(args, packages, debs, workdir):
    root = os.path.join(workdir, "root")
    for path in debs.values():
        subprocess.run(["dpkg-deb", "-x", path[0], root], check=True)
    release = os.listdir(os.path.join(root, "lib", "modules"))[0]
    cpio = Cpio()
    for d in ["proc", "sys", "dev", "dev/pts", "run", "root", "home", "etc", "etc/sandbox", "usr/bin", "usr/sbin",
              "bin", "sbin", "var", "mnt", "lib", "lib64"]:
        cpio.dir("/" + d, 0o700 if d == "root" else 0o755)
    cpio.dir("/tmp", 0o1777)
    cpio.dir("/var/tmp", 0o1777)
    cpio.symlink("/var/run", "/run")
    cpio.chardev("/dev/console", 5, 1)
    cpio.chardev("/dev/null", 1, 3, 0o666)

    # Debug info is for the host: every byte of the initramfs is copied at boot.
    stripped = os.path.join(workdir, "sandbox-agent")
    subprocess.run(["strip", "--strip-debug", "-o", stripped, args.agent], check=True)
    cpio.file("/init", open(stripped, "rb").read(), 0o755)
    cpio.symlink("/sbin/sandbox-agent", "/init")

    busybox = os.path.join(root, "bin", "busybox")
    cpio.file("/bin/busybox", open(busybox, "rb").read(), 0o755)
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        path = "/" + applet
        if path != "/bin/busybox" and path not in cpio.entries:
            cpio.symlink(path, "/bin/busybox")

    modules = module_closure(root, release)
    for m in modules:
        cpio.file("/" + m, open(os.path.join(root, m), "rb").read())
    cpio.file("/etc/sandbox/modules", "".join("/" + m + "\n" for m in modules).encode())

    if args.with_qemu_ga:
        qga = os.path.join(root, "usr", "sbin", "qemu-ga")
        cpio.file("/usr/sbin/qemu-ga", open(qga, "rb").read(), 0o755)
        for soname, real in shared_libraries(qga):
            cpio.file(soname, open(real, "rb").read(), 0o755)

    cpio.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("/etc/group", b"root:x:0:\n")
    cpio.file("/etc/hostname", b"sandbox\n")
    cpio.file("/etc/hosts", b"127.0.0.1 localhost sandbox\n::1 localhost\n")
    versions = {name: info[2] for name, info in debs.items()}
    cpio.file("/etc/sandbox/image.json", json.dumps(
        {"name": args.name, "kernel_release": release, "packages": versions}, indent=1, sort_keys=True).encode())

    out = os.path.join(workdir, "image")
    os.makedirs(out)
    shutil.copyfile(os.path.join(root, "boot", "vmlinuz-" + release), os.path.join(out, "vmlinuz"))
    with open(os.path.join(out, "initramfs.cpio"), "wb") as f:
        f.write(cpio.bytes())
    return out, release, modules


def copy_out(image_dir, out):
    os.makedirs(out, exist_ok=True)
    for name in ("vmlinuz", "initramfs.cpio", "manifest.json"):
        src, dst = os.path.join(image_dir, name), os.path.join(out, name)
        if os.path.exists(dst) and os.path.getsize(dst) == os.path.getsize(src) and sha256_file(dst) == sha256_file(src):
            continue
        tmp = dst + ".tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    os.utime(image_dir)  # most recently used


def prune(images_dir, keep):
    entries = [os.path.join(images_dir, e) for e in os.listdir(images_dir) if not e.startswith(".")]
    entries.sort(key=os.path.getmtime, reverse=True)
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", required=True, help="the static sandbox-agent binary")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--cache", default="/var/cache/sandboxd")
    p.add_argument("--name", default="default")
    p.add_argument("--with-qemu-ga", action="store_true", help="include qemu-ga (the benchmark's peer)")
    args = p.parse_args()
    started = time.monotonic()

    packages = Packages(args.cache)
    names = [packages.kernel_package(), "busybox-static"] + (["qemu-guest-agent"] if args.with_qemu_ga else [])
    debs = {name: packages.fetch(name) for name in names}

    key_hash = hashlib.sha256()
    key_hash.update(open(os.path.abspath(__file__), "rb").read())
    key_hash.update(sha256_file(args.agent).encode())
    for name in names:
        key_hash.update(f"{name}={debs[name][1]}".encode())
    key_hash.update(json.dumps({"name": args.name, "qemu_ga": args.with_qemu_ga}).encode())
    key = key_hash.hexdigest()

    images = os.path.join(args.cache, "images")
    cached = os.path.join(images, key)
    os.makedirs(images, exist_ok=True)
    if os.path.exists(os.path.join(cached, "manifest.json")):
        copy_out(cached, args.out)
        log(f"cached image {key[:12]} in {time.monotonic() - started:.2f} s")
        return

    with tempfile.TemporaryDirectory(dir=images, prefix=".build-") as work:
        image_dir, release, modules = build(args, packages, debs, work)
        outputs = {}
        for name in ("vmlinuz", "initramfs.cpio"):
            path = os.path.join(image_dir, name)
            outputs[name] = {"sha256": sha256_file(path), "size": os.path.getsize(path)}
        manifest = {
            "name": args.name,
            "cache_key": key,
            "kernel_release": release,
            "packages": {n: {"version": debs[n][2], "sha256": debs[n][1]} for n in names},
            "agent_sha256": sha256_file(args.agent),
            "files": outputs,
            "module_load_order": ["/" + m for m in modules],
        }
        with open(os.path.join(image_dir, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        try:
            os.rename(image_dir, cached)
        except OSError:
            if not os.path.exists(os.path.join(cached, "manifest.json")):
                raise  # not a concurrent builder that got there first
    copy_out(cached, args.out)
    prune(images, KEEP_IMAGES)
    sizes = ", ".join(f"{n} {o['size'] / 1e6:.1f} MB" for n, o in outputs.items())
    log(f"built image {key[:12]} ({sizes}) in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
