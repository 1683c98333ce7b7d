#!/usr/bin/env python3
"""Builds a sandboxd guest image from Debian packages.

    build_image.py --agent PATH --out DIR [--cache DIR] [--name NAME] [--with-qemu-ga]
                   [--layers IMAGES_JSON [--layers MORE_JSON]...] [--kernel cloud|generic]

Writes three files to --out:
  vmlinuz         Debian's cloud kernel (the version linux-image-cloud-amd64 points at;
                  with --kernel generic, linux-image-amd64's)
  initramfs.cpio  uncompressed newc archive: the agent as /init, busybox, the kernel
                  modules the agent loads at boot (in order, listed in
                  /etc/sandbox/modules) and those it loads only when the kernel
                  command line names them (/etc/sandbox/modules.optional), and with
                  --with-qemu-ga qemu-ga with its shared libraries
  manifest.json   what went in and what came out, with sha256 hashes

With --layers, NAME is an image of IMAGES_JSON (a stack of read-only Debian
layers, see layer_builder.py): --out also gets layers/<layer>.<fs>, the
initramfs also holds the block, overlay and layer file system modules and
/etc/sandbox/layers, and the agent boots into the stacked root. A second and
later --layers are merged over the first (image_config.load_configs): their
layers and images are added to its, never replace them, and their suite,
mirrors and fs, where given, win. That is how `sandboxd-host image build
--config` adds a user's layers on the shipped images.json.

Caching. Packages are kept in CACHE/debs/ and checked against the SHA256 apt
lists for them. A finished image lives in CACHE/images/<key>/, where <key> is a
sha256 over everything that decides its content: this script, the agent binary,
each package's hash, the options, and (with qemu-ga) the host libraries copied
in. A rebuild with nothing changed is a copy. Images are built in a temporary
directory beside the cache and renamed into place when complete (manifest.json
is written last), so a concurrent or interrupted build never leaves half an
image under a key. The most recently used images are kept (KEEP_IMAGES).

The archive is written here rather than by cpio(1): no root is needed for the
device nodes, and entries are sorted with zero timestamps and owners, so the
same inputs give the same bytes. It is not compressed because decompressing
under TCG emulation costs more boot time than copying the larger file.

SANDBOXD_OFFLINE=1 skips apt and takes the newest matching .debs already in
CACHE/debs/ (their hashes are then whatever the files hold).
"""
import argparse
import functools
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_config  # noqa: E402
import layer_builder  # noqa: E402

# Kernel flavours: the meta package, and an apt-cache pattern and a file-name
# pattern for the versioned kernel packages it depends on. The generic kernel
# is not what sandboxes boot: it is there for the mounts benchmark's 9p peer,
# which the cloud kernel is built without (CONFIG_NET_9P is not set).
KERNELS = {
    "cloud": ("linux-image-cloud-amd64", "linux-image-*-cloud-amd64", r"linux-image-[0-9.]+-[0-9]+-cloud-amd64"),
    "generic": ("linux-image-amd64", "linux-image-[0-9]*[0-9]-amd64", r"linux-image-[0-9.]+-[0-9]+-amd64"),
}
BUSYBOX = "busybox-static"
QEMU_GA = "qemu-guest-agent"

# Modules the agent needs (transports, console ports, network, the FUSE bridge);
# modules.dep supplies what they depend on.
WANTED_MODULES = ["virtio_mmio", "virtio_pci", "virtio_console", "virtio_net", "fuse"]
# And for a layered image: its disks, the stacking, and the layers' file system.
LAYERED_MODULES = ["virtio_blk", "overlay"]
# In every image, loaded only when the kernel command line asks for them
# (sandbox.modules=9p,virtiofs): the guest ends of the file-sharing peers the
# mounts benchmark compares against. A kernel that lacks one (the cloud kernel
# has no 9p) leaves it out; a module already in the boot list stays there only.
OPTIONAL_MODULES = ["9pnet_virtio", "9p", "virtiofs"]

# Every image one build tree makes, a few older ones and some that
# `sandboxd-host image build` made: an image pruned here takes its layers out
# of the cache an hour later, and a layer costs minutes to build again.
KEEP_IMAGES = 16
STALE_BUILD_SECONDS = 3600  # a build takes seconds; a directory this old is abandoned
OUTPUT_FILES = ("vmlinuz", "initramfs.cpio")  # then manifest.json, always last

DIRECTORIES = {
    "/proc": 0o555, "/sys": 0o555, "/dev": 0o755, "/dev/pts": 0o755, "/tmp": 0o1777,
    "/run": 0o755, "/root": 0o700, "/home": 0o755, "/etc": 0o755, "/etc/sandbox": 0o755,
    "/bin": 0o755, "/sbin": 0o755, "/usr": 0o755, "/usr/bin": 0o755, "/usr/sbin": 0o755,
    "/var": 0o755, "/var/tmp": 0o1777, "/mnt": 0o755,
}


# udhcpc's hook (busybox): run with $1 = deconfig | bound | renew | leasefail | nak and
# the lease in the environment ($ip, $mask as a prefix length, $router, $dns, $mtu,
# $domain). The agent runs udhcpc once at boot with -q, so "bound" is the one that
# matters; "renew" is handled the same way for whoever runs udhcpc by hand.
UDHCPC_SCRIPT = """#!/bin/sh
# Applies a DHCP lease to $interface (see image/build_image.py).
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    for r in $router; do
      ip route replace default via "$r" dev "$interface" && break
    done
    if [ -n "$dns" ]; then
      {
        [ -n "$domain" ] && echo "search $domain"
        for s in $dns; do echo "nameserver $s"; done
      } > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf
    fi
    ;;
esac
exit 0
"""

# Until DHCP names a server there is none; resolvers then try 127.0.0.1 and fail fast.
RESOLV_CONF_WITHOUT_DHCP = b"# no DNS server yet: DHCP on eth0 writes them here\n"


class BuildError(Exception):
    """A failure with a reason the user can act on."""


def log(message):
    print(f"build_image: {message}", file=sys.stderr, flush=True)


sha256_file = layer_builder.sha256_file


def run(argv, **kwargs):
    """Runs a tool and returns its stdout; failure becomes a BuildError with its stderr."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise BuildError(f"{argv[0]} not found (needed to build the image)")
    if r.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


# --------------------------------------------------------------------------------------
# Packages


class Deb:
    def __init__(self, name, version, sha256, path):
        self.name, self.version, self.sha256, self.path = name, version, sha256, path


def parse_stanzas(text):
    """apt-cache / dpkg control text -> [{field: value}]."""
    stanzas, fields, key = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, key = {}, None
        elif line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return stanzas


def kernel_from_depends(depends, meta):
    """The versioned kernel package named in the meta package's Depends."""
    for alternative in re.split(r"[,|]", depends):
        name = alternative.strip().split(" ")[0]
        if name.startswith("linux-image-") and name != meta:
            return name
    raise BuildError(f"cannot tell which kernel {meta} depends on (Depends: {depends!r})")


def deb_file_name(name, version, arch):
    # The name apt-get download gives it: the epoch's ':' is escaped.
    return f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


class PackageCache:
    """Finds, downloads and verifies .debs in CACHE/debs."""

    def __init__(self, cache_dir, offline, kernel="cloud"):
        self.dir = os.path.join(cache_dir, "debs")
        self.offline = offline
        self.kernel_meta, self.kernel_pattern, self.kernel_file_pattern = KERNELS[kernel]
        self.updated = False
        os.makedirs(self.dir, exist_ok=True)

    def resolve(self, extra):
        """Debs of the kernel meta package, the kernel it points at, busybox and `extra`."""
        meta_name = self.kernel_meta
        if self.offline:
            meta = self._newest_cached(meta_name, required=False)
            if meta:
                depends = run(["dpkg-deb", "-f", meta.path, "Depends"])
                kernel = self._newest_cached(kernel_from_depends(depends, meta_name))
            else:
                kernel = self._newest_cached_kernel()
            return [d for d in (meta, kernel) if d] + [self._newest_cached(n) for n in [BUSYBOX] + extra]
        names = [meta_name, BUSYBOX] + extra
        infos = self._remembered(names)
        if infos is None:
            # apt-cache takes most of a second per call where apt keeps no binary
            # cache, so the kernel candidates come with the first call, by pattern.
            infos = self._show(names, patterns=[self.kernel_pattern])
            kernel = kernel_from_depends(infos[meta_name].get("Depends", ""), meta_name)
            if kernel not in infos:
                infos.update(self._show([kernel]))
            infos = {n: {f: infos[n].get(f, "") for f in ("Version", "SHA256", "Architecture", "Depends")}
                     for n in names + [kernel]}
            self._remember(infos)
        kernel = kernel_from_depends(infos[meta_name]["Depends"], meta_name)
        return [self._fetch(name, infos[name]) for name in [meta_name, kernel] + names[1:]]

    # -- apt's answers, remembered while what they depend on is unchanged

    @staticmethod
    def _apt_state():
        """A fingerprint of apt's package lists, configuration and dpkg status."""
        h = hashlib.sha256()
        config = os.environ.get("APT_CONFIG", "")
        h.update(config.encode())
        for top in ("/var/lib/apt/lists", "/etc/apt", "/var/lib/dpkg/status", config):
            if not top:
                continue
            walk = os.walk(top) if os.path.isdir(top) else [(os.path.dirname(top), [], [os.path.basename(top)])]
            for directory, subdirs, files in walk:
                subdirs[:] = sorted(d for d in subdirs if d != "partial")
                for f in sorted(files):
                    try:
                        st = os.stat(os.path.join(directory, f))
                    except OSError:
                        continue
                    h.update(f"{directory}/{f} {st.st_size} {st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def _load_remembered(self):
        try:
            with open(os.path.join(self.dir, "resolved.json")) as f:
                saved = json.load(f)
            if saved["apt_state"] == self.apt_state:
                return saved["packages"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return {}

    def _remembered(self, names):
        """apt's earlier answers for `names` and the kernel, if apt's state is unchanged."""
        self.apt_state = self._apt_state()
        known = self._load_remembered()
        try:
            wanted = names + [kernel_from_depends(known[self.kernel_meta]["Depends"], self.kernel_meta)]
            return {n: known[n] for n in wanted}
        except (KeyError, BuildError):
            return None

    def _remember(self, infos):
        if self.updated:  # apt-get update ran since the fingerprint was taken
            self.apt_state = self._apt_state()
        known = self._load_remembered()
        known.update(infos)
        tmp = os.path.join(self.dir, f".resolved.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump({"apt_state": self.apt_state, "packages": known}, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(self.dir, "resolved.json"))

    # -- from apt

    def _show(self, names, patterns=()):
        """Candidate-version fields of `names` (and of what `patterns` match) by package
        name; runs apt-get update once if apt does not know them."""
        for attempt in range(2):
            r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + names + list(patterns),
                               capture_output=True, text=True)
            found = {s["Package"]: s for s in parse_stanzas(r.stdout) if "Package" in s}
            missing = [n for n in names if not found.get(n, {}).get("SHA256")]
            if not missing:
                return found
            if attempt == 0 and not self.updated:
                log(f"apt does not know {', '.join(missing)}; running apt-get update")
                self.updated = True
                u = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
                if u.returncode != 0:
                    raise BuildError(f"apt-get update failed: {u.stderr.strip()}")
        raise BuildError(f"apt cannot find {', '.join(missing)}: it needs a Debian 12 (bookworm) source in "
                         "/etc/apt/sources.list*, or set SANDBOXD_OFFLINE=1 with the .debs in the cache")

    def _fetch(self, name, info):
        version, sha, arch = info["Version"], info["SHA256"], info.get("Architecture", "amd64")
        path = os.path.join(self.dir, deb_file_name(name, version, arch))
        if os.path.exists(path):
            if sha256_file(path) == sha:
                return Deb(name, version, sha, path)
            log(f"{os.path.basename(path)} does not match apt's SHA256; downloading it again")
        log(f"downloading {name} {version}")
        # Into a private directory first: only verified files appear in CACHE/debs.
        with tempfile.TemporaryDirectory(dir=self.dir, prefix=".download-") as tmp:
            os.chmod(tmp, 0o755)
            run(["apt-get", "download", "-q", f"{name}={version}"], cwd=tmp)
            got = [f for f in os.listdir(tmp) if f.endswith(".deb")]
            if len(got) != 1:
                raise BuildError(f"apt-get download {name}={version} left {got!r}, not one .deb")
            downloaded = os.path.join(tmp, got[0])
            actual = sha256_file(downloaded)
            if actual != sha:
                raise BuildError(f"downloaded {name} {version} has SHA256 {actual}, apt lists {sha}")
            os.replace(downloaded, path)
        return Deb(name, version, sha, path)

    # -- offline, from the cache alone

    def _cached(self, name):
        out = []
        for f in sorted(os.listdir(self.dir)):
            if f.startswith(name + "_") and f.endswith(".deb"):
                path = os.path.join(self.dir, f)
                fields = parse_stanzas(run(["dpkg-deb", "-f", path, "Package", "Version"]))[0]
                if fields.get("Package") == name:
                    out.append(Deb(name, fields["Version"], None, path))
        return out

    @staticmethod
    def _newest(debs):
        def compare(a, b):
            if a.version == b.version:
                return 0
            newer = subprocess.run(["dpkg", "--compare-versions", a.version, "gt", b.version]).returncode == 0
            return 1 if newer else -1
        deb = max(debs, key=functools.cmp_to_key(compare))
        deb.sha256 = sha256_file(deb.path)
        return deb

    def _newest_cached(self, name, required=True):
        debs = self._cached(name)
        if not debs:
            if required:
                raise BuildError(f"SANDBOXD_OFFLINE=1 but no {name} .deb in {self.dir}")
            return None
        return self._newest(debs)

    def _newest_cached_kernel(self):
        names = {f.split("_")[0] for f in os.listdir(self.dir)
                 if re.match(self.kernel_file_pattern + r"_.*\.deb$", f)}
        debs = [d for n in sorted(names) for d in self._cached(n)]
        if not debs:
            raise BuildError(f"SANDBOXD_OFFLINE=1 but no {self.kernel_meta} kernel .deb in {self.dir}")
        return self._newest(debs)


def extract(deb, root):
    run(["dpkg-deb", "-x", deb.path, root])


# --------------------------------------------------------------------------------------
# newc cpio


class Newc:
    """A newc ("070701") cpio archive: entries are collected, then written sorted by path.

    Owners and timestamps are zero. A hard-link group shares one inode number and
    carries the data on its last entry (cpio(1)'s convention, which the kernel's
    unpacker accepts as well). Missing parent directories are added."""

    def __init__(self):
        self.entries = {}  # path -> dict(mode, data, rdev, group)

    def _put(self, path, mode, data=b"", rdev=(0, 0)):
        self.entries[path] = dict(mode=mode, data=data, rdev=rdev, group=None)

    def directory(self, path, mode=0o755):
        self._put(path, stat.S_IFDIR | mode)

    def file(self, path, data, mode=0o644):
        self._put(path, stat.S_IFREG | mode, data)

    def hardlink(self, path, existing):
        entry = self.entries[existing]
        if not stat.S_ISREG(entry["mode"]):
            raise ValueError(f"hard link to {existing}, which is not a regular file")
        entry["group"] = entry["group"] or existing
        self.entries[path] = dict(entry)

    def symlink(self, path, target):
        self._put(path, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, path, major, minor, mode):
        self._put(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def __contains__(self, path):
        return path in self.entries

    def write(self, out):
        for path in list(self.entries):
            parent = os.path.dirname(path)
            while parent not in ("", "/") and parent not in self.entries:
                self.directory(parent)
                parent = os.path.dirname(parent)
        paths = sorted(self.entries)  # a directory sorts before anything in it
        inodes, groups = {}, {}
        for path in paths:
            key = self.entries[path]["group"] or path
            inodes.setdefault(key, len(inodes) + 1)
            groups.setdefault(key, []).append(path)
        offset = 0

        def emit(ino, name, mode, nlink, data, rdev):
            nonlocal offset
            name_bytes = name.encode() + b"\0"
            chunk = b"070701" + b"".join(b"%08x" % v for v in (
                ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_bytes), 0))
            chunk += name_bytes
            chunk += b"\0" * (-(offset + len(chunk)) % 4)
            chunk += data
            chunk += b"\0" * (-(offset + len(chunk)) % 4)
            out.write(chunk)
            offset += len(chunk)

        for path in paths:
            e = self.entries[path]
            key = e["group"] or path
            members = groups[key]
            nlink = 2 if stat.S_ISDIR(e["mode"]) else len(members)
            data = e["data"] if path == members[-1] else b""
            emit(inodes[key], path.lstrip("/"), e["mode"], nlink, data, e["rdev"])
        emit(0, "TRAILER!!!", 0, 1, b"", (0, 0))
        out.write(b"\0" * (-offset % 512))


# --------------------------------------------------------------------------------------
# Pieces of the image


def elf_interpreter(path):
    """PT_INTERP of a 64-bit little-endian ELF file (None when static)."""
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise BuildError(f"{path} is not a 64-bit little-endian ELF executable")
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _, p_offset, _, _, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 3:  # PT_INTERP
                f.seek(p_offset)
                return f.read(p_filesz).rstrip(b"\0").decode(errors="replace")
    return None


def agent_bytes(agent, workdir):
    """The agent without debug sections: the kernel copies every initramfs byte at boot."""
    stripped = os.path.join(workdir, "sandbox-agent")
    try:
        run(["strip", "--strip-debug", "-o", stripped, agent])
    except BuildError as e:
        log(f"{e}; using the agent unstripped")
        stripped = agent
    with open(stripped, "rb") as f:
        return f.read()


def modules_dir(root, release):
    """lib/modules/<release> under root (made to exist if the kernel ships usr/lib/modules)."""
    usr = os.path.join(root, "usr", "lib", "modules", release)
    if not os.path.isdir(os.path.join(root, "lib", "modules")) and os.path.isdir(usr):
        os.makedirs(os.path.join(root, "lib"), exist_ok=True)
        os.symlink(os.path.join("..", "usr", "lib", "modules"), os.path.join(root, "lib", "modules"))
    return os.path.join(root, "lib", "modules", release)


def module_name(path):
    return os.path.basename(path).split(".ko")[0].replace("-", "_")


def module_dependencies(root, release):
    """modules.dep (made by depmod) as {path: [paths it depends on]}, the paths
    relative to the release's module directory."""
    run(["depmod", "-b", root, release])
    deps = {}
    with open(os.path.join(modules_dir(root, release), "modules.dep")) as f:
        for line in f:
            path, sep, rest = line.partition(":")
            if sep:
                deps[path.strip()] = rest.split()
    return deps


def module_load_order(deps, release, wanted):
    """Paths of `wanted` and everything they depend on, each after its
    dependencies (`deps` as module_dependencies gives it)."""
    by_name = {module_name(p): p for p in deps}
    order, done = [], set()

    def visit(path, chain):
        if path in done:
            return
        if path in chain:
            raise BuildError(f"module dependency cycle: {' -> '.join(chain + (path,))}")
        for dep in sorted(deps.get(path, [])):  # sorted: the order is ours, not depmod's listing
            visit(dep, chain + (path,))
        done.add(path)
        order.append(path)

    for name in wanted:
        if name not in by_name:
            raise BuildError(f"kernel {release} has no module {name} (built in, or renamed?)")
        visit(by_name[name], ())
    return order


def optional_module_lines(deps, boot_order, optional_order):
    """The lines of /etc/sandbox/modules.optional, in load order: a module's path
    (relative, as in modules.dep) and then the names of the optional modules it
    needs, so the agent can load one and what it depends on. Modules in
    `boot_order` are left out: the boot list has them loaded already."""
    boot = set(boot_order)
    lines = []
    for path in optional_order:
        if path in boot:
            continue
        needs = [module_name(d) for d in sorted(deps.get(path, [])) if d not in boot]
        lines.append([path] + needs)
    return lines


def module_bytes(path):
    """A module as finit_module takes it without flags: uncompressed."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    return data


def shared_libraries(binary):
    """[(path in the guest, file on the host)] for each library ldd resolves, loader included."""
    out = run(["ldd", binary])
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            raise BuildError(f"{os.path.basename(binary)} needs a library the host lacks: {line}")
        m = re.match(r"\S+ => (/\S+) \(", line) or re.match(r"(/\S+) \(", line)
        if m:
            libs.append((m.group(1), os.path.realpath(m.group(1))))
    if not any("/ld-linux" in path for path, _ in libs):
        raise BuildError(f"ldd named no program loader for {binary}:\n{out}")
    return libs


def qemu_ga_libraries(qemu_ga_deb, workdir):
    """The host libraries qemu-ga needs (they go into the image, so into the cache key)."""
    root = os.path.join(workdir, "qemu-ga")
    extract(qemu_ga_deb, root)
    return shared_libraries(os.path.join(root, "usr", "sbin", "qemu-ga"))


# --------------------------------------------------------------------------------------
# Build


def build_image(args, debs, libraries, layers, workdir, image_dir):
    """Writes vmlinuz and initramfs.cpio into image_dir; returns (kernel release, boot module
    paths, optional module paths)."""
    root = os.path.join(workdir, "root")
    for deb in debs.values():
        extract(deb, root)
    meta = KERNELS[args.kernel][0]
    kernel = next(d for d in debs.values() if d.name.startswith("linux-image-") and d.name != meta)
    release = kernel.name[len("linux-image-"):]
    vmlinuz = os.path.join(root, "boot", "vmlinuz-" + release)
    if not os.path.exists(vmlinuz):
        raise BuildError(f"{kernel.name} has no boot/vmlinuz-{release}")

    archive = Newc()
    for path, mode in DIRECTORIES.items():
        archive.directory(path, mode)
    archive.char_device("/dev/console", 5, 1, 0o600)
    archive.char_device("/dev/null", 1, 3, 0o666)

    archive.file("/init", agent_bytes(args.agent, workdir), 0o755)
    archive.hardlink("/sbin/sandbox-agent", "/init")

    busybox = os.path.join(root, "bin", "busybox")
    with open(busybox, "rb") as f:
        archive.file("/bin/busybox", f.read(), 0o755)
    for applet in run([busybox, "--list-full"]).split():
        path = "/" + applet.lstrip("/")
        if path not in archive:  # never over /init, /bin/busybox or a directory
            archive.symlink(path, "/bin/busybox")

    moddir = modules_dir(root, release)
    deps = module_dependencies(root, release)

    def guest_module(rel):
        return f"/lib/modules/{release}/" + re.sub(r"\.(xz|gz|zst)$", "", rel)

    modules = []
    wanted = WANTED_MODULES + (LAYERED_MODULES + sorted({layer.fs for layer in layers}) if layers else [])
    boot_order = module_load_order(deps, release, wanted)
    for rel in boot_order:
        archive.file(guest_module(rel), module_bytes(os.path.join(moddir, rel)))
        modules.append(guest_module(rel))
    archive.file("/etc/sandbox/modules", "".join(p + "\n" for p in modules).encode())

    present = {module_name(p) for p in deps}
    for name in OPTIONAL_MODULES:
        if name not in present:
            log(f"kernel {release} has no module {name}: it is not among the optional modules")
    optional = optional_module_lines(deps, boot_order,
                                     module_load_order(deps, release, [n for n in OPTIONAL_MODULES if n in present]))
    for line in optional:
        archive.file(guest_module(line[0]), module_bytes(os.path.join(moddir, line[0])))
    archive.file("/etc/sandbox/modules.optional",
                 "".join(" ".join([guest_module(line[0])] + line[1:]) + "\n" for line in optional).encode())

    if args.with_qemu_ga:
        with open(os.path.join(root, "usr", "sbin", "qemu-ga"), "rb") as f:
            archive.file("/usr/sbin/qemu-ga", f.read(), 0o755)
        for guest_path, host_path in libraries:
            with open(host_path, "rb") as f:
                archive.file(guest_path, f.read(), 0o755)  # the loader must be executable
        archive.symlink("/var/run", "/run")

    archive.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    archive.file("/etc/group", b"root:x:0:\n")
    archive.file("/etc/hostname", b"sandbox\n")
    archive.file("/etc/hosts", b"127.0.0.1 localhost sandbox\n::1 localhost\n")
    archive.file("/etc/resolv.conf", RESOLV_CONF_WITHOUT_DHCP)
    archive.file("/etc/sandbox/udhcpc.script", UDHCPC_SCRIPT.encode(), 0o755)
    if layers:
        archive.file("/etc/sandbox/layers", "".join(f"{layer.name} {layer.fs}\n" for layer in layers).encode())
    archive.file("/etc/sandbox/image.json", (json.dumps({
        "name": args.name,
        "layers": [{"name": layer.name, "fs": layer.fs} for layer in layers],
        "kernel_release": release,
        "packages": {d.name: d.version for d in debs.values()},
        "qemu_ga": args.with_qemu_ga,
    }, indent=1, sort_keys=True) + "\n").encode())

    shutil.copyfile(vmlinuz, os.path.join(image_dir, "vmlinuz"))
    with open(os.path.join(image_dir, "initramfs.cpio"), "wb") as f:
        archive.write(f)
    return release, modules, [guest_module(line[0]) for line in optional]


# --------------------------------------------------------------------------------------
# Image cache


def cache_key(script, agent, debs, options, libraries):
    h = hashlib.sha256()

    def part(label, data):
        h.update(b"%s %d\n" % (label.encode(), len(data)))
        h.update(data)

    with open(script, "rb") as f:
        part("script", f.read())
    with open(agent, "rb") as f:
        part("agent", f.read())
    for deb in sorted(debs, key=lambda d: d.name):
        part("deb", f"{deb.name} {deb.version} {deb.sha256}".encode())
    part("options", json.dumps(options, sort_keys=True).encode())
    for guest_path, host_path in libraries:
        part("library", f"{guest_path} {sha256_file(host_path)}".encode())
    return h.hexdigest()


def image_is_complete(directory):
    try:
        with open(os.path.join(directory, "manifest.json")) as f:
            files = json.load(f)["files"]
        return all(os.path.getsize(os.path.join(directory, n)) == files[n]["size"] for n in OUTPUT_FILES)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def place_layers(layers, out):
    """Puts each layer at out/layers/<name>.<fs>: a hard link to the cached file
    where the cache is on the same file system (layers are hundreds of MB),
    a copy otherwise. Other files in out/layers are removed."""
    directory = os.path.join(out, "layers")
    os.makedirs(directory, exist_ok=True)
    wanted = {f"{layer.name}.{layer.fs}": layer for layer in layers}
    for entry in os.listdir(directory):
        if entry not in wanted:
            os.remove(os.path.join(directory, entry))
    for file_name, layer in wanted.items():
        target, tmp = os.path.join(directory, file_name), os.path.join(directory, f".{file_name}.tmp")
        if os.path.exists(tmp):
            os.remove(tmp)
        try:
            os.link(layer.path, tmp)
        except OSError:
            shutil.copyfile(layer.path, tmp)
        os.replace(tmp, target)


def copy_out(image_dir, out, layers=()):
    """Copies an image to `out`, manifest.json last. The files are always rewritten,
    so a build tool sees them newer than their inputs."""
    os.makedirs(out, exist_ok=True)
    if layers:
        place_layers(layers, out)
    for name in OUTPUT_FILES + ("manifest.json",):
        tmp = os.path.join(out, f".{name}.tmp")
        shutil.copyfile(os.path.join(image_dir, name), tmp)
        os.replace(tmp, os.path.join(out, name))


def prune(images, keep, current):
    """Keeps the `keep` most recently used images (directory mtime, `current` first)
    and removes build directories abandoned long ago."""
    now = time.time()
    finished = []
    for entry in os.listdir(images):
        path = os.path.join(images, entry)
        try:
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        if entry.startswith(".build-"):
            if now - mtime > STALE_BUILD_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        elif not entry.startswith(".") and os.path.isdir(path):
            finished.append((path == current, mtime, path))
    finished.sort(reverse=True)
    for _, _, path in finished[keep:]:
        shutil.rmtree(path, ignore_errors=True)


def kept_layer_keys(images):
    """The keys of the layers the cached images stack."""
    keys = set()
    for entry in os.listdir(images):
        try:
            with open(os.path.join(images, entry, "manifest.json")) as f:
                keys.update(layer["key"] for layer in json.load(f).get("layers", []))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    return keys


def main():
    p = argparse.ArgumentParser(description="Build a sandboxd guest image (kernel + initramfs) from Debian packages.")
    p.add_argument("--agent", required=True, help="the static sandbox-agent binary (becomes /init)")
    p.add_argument("--out", required=True, help="directory for vmlinuz, initramfs.cpio, manifest.json")
    p.add_argument("--cache", default="/var/cache/sandboxd", help="package and image cache (default: %(default)s)")
    p.add_argument("--name", default="mini", help="image name recorded in the image (default: %(default)s)")
    p.add_argument("--with-qemu-ga", action="store_true", help="include qemu-ga and its shared libraries")
    p.add_argument("--layers", metavar="IMAGES_JSON", action="append",
                   help="build NAME as the layered image IMAGES_JSON describes; given again, "
                        "each further file's layers and images are added to the first's")
    p.add_argument("--kernel", choices=sorted(KERNELS), default="cloud",
                   help="Debian's kernel flavour (default: %(default)s; generic has 9p, for the mounts benchmark)")
    args = p.parse_args()
    started = time.monotonic()

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", args.name):
        raise BuildError(f"invalid image name {args.name!r} (letters, digits, '.', '_', '-')")
    config = None
    if args.layers:  # before any download: a mistake in the config is the likeliest failure
        try:
            config = image_config.load_configs(args.layers)
        except image_config.ConfigError as e:
            raise BuildError(str(e))
        if args.name not in config.images:
            raise BuildError(f"{' + '.join(args.layers)}: no image {args.name!r} "
                             f"(there are {', '.join(sorted(config.images))})")
    if not os.path.isfile(args.agent):
        raise BuildError(f"agent binary {args.agent} does not exist")
    interpreter = elf_interpreter(args.agent)
    if interpreter:
        raise BuildError(f"{args.agent} is dynamically linked ({interpreter}); /init must be static")
    images = os.path.join(args.cache, "images")
    try:
        os.makedirs(images, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot use the cache {args.cache}: {e} (choose another with --cache)")
    if not os.access(images, os.W_OK | os.X_OK):
        raise BuildError(f"cannot write to the cache {images} (choose another with --cache)")

    offline = os.environ.get("SANDBOXD_OFFLINE") == "1"
    debs = PackageCache(args.cache, offline, args.kernel).resolve([QEMU_GA] if args.with_qemu_ga else [])
    debs = {d.name: d for d in debs}
    layers = []
    if config is not None:
        here = os.path.dirname(os.path.abspath(__file__))
        builder_files = [os.path.join(here, f) for f in ("layer_builder.py", "layer_diff.py")]
        built = {}
        try:
            layers = [layer_builder.build_layer(config, name, args.cache, builder_files, built)
                      for name in config.images[args.name]]
        except (layer_builder.LayerError, OSError) as e:
            raise BuildError(f"layer: {e}")
    options = {"name": args.name, "with_qemu_ga": args.with_qemu_ga, "kernel": args.kernel,
               "layers": [{"name": layer.name, "key": layer.key} for layer in layers]}

    with tempfile.TemporaryDirectory(dir=images, prefix=".build-") as workdir:
        libraries = qemu_ga_libraries(debs[QEMU_GA], workdir) if args.with_qemu_ga else []
        key = cache_key(os.path.abspath(__file__), args.agent, debs.values(), options, libraries)
        cached = os.path.join(images, key)

        outcome = None
        if image_is_complete(cached):
            try:
                os.utime(cached)  # most recently used
                copy_out(cached, args.out, layers)
                outcome = "cached"
            except FileNotFoundError:
                pass  # pruned by a concurrent builder a moment ago: build it again
        if outcome is None:
            outcome = "built"
            image_dir = os.path.join(workdir, "image")
            os.makedirs(image_dir)
            release, modules, optional_modules = build_image(args, debs, libraries, layers, workdir, image_dir)
            manifest = {
                "name": args.name,
                "cache_key": key,
                "kernel_release": release,
                "packages": {d.name: {"version": d.version, "sha256": d.sha256} for d in debs.values()},
                "agent_sha256": sha256_file(args.agent),
                "options": options,
                "files": {n: {"sha256": sha256_file(os.path.join(image_dir, n)),
                              "size": os.path.getsize(os.path.join(image_dir, n))} for n in OUTPUT_FILES},
                "module_load_order": modules,
                "optional_modules": optional_modules,
                "layers": [{"name": layer.name, "file": f"layers/{layer.name}.{layer.fs}", "fs": layer.fs,
                            "sha256": layer.sha256, "size": layer.size, "key": layer.key} for layer in layers],
            }
            with open(os.path.join(image_dir, "manifest.json"), "w") as f:
                json.dump(manifest, f, indent=1, sort_keys=True)
                f.write("\n")
            if os.path.isdir(cached) and not image_is_complete(cached):
                shutil.rmtree(cached, ignore_errors=True)  # damaged: replace it
            try:
                os.rename(image_dir, cached)
            except OSError:
                if not image_is_complete(cached):  # else a concurrent builder got there first
                    raise
            copy_out(cached, args.out, layers)

    prune(images, KEEP_IMAGES, cached)
    layer_builder.prune_layers(args.cache, kept_layer_keys(images))
    with open(os.path.join(args.out, "manifest.json")) as f:
        files = json.load(f)["files"]
    sizes = ", ".join([f"{n} {files[n]['size'] / 1e6:.1f} MB" for n in OUTPUT_FILES] +
                      [f"layer {layer.name} {layer.size / 1e6:.1f} MB" for layer in layers])
    print(f"guest image '{args.name}': {outcome} {key[:16]} ({sizes}) in "
          f"{time.monotonic() - started:.2f} s -> {args.out}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except BuildError as e:
        log(f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
