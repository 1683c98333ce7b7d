"""Builds the read-only layers of images.json, each once, cached by content.

    build_layer(config, name, cache_dir, builder_files) -> BuiltLayer

A bottom layer is a Debian minbase system made by mmdebstrap with the layer's
packages. A layer with `below` is what installing its packages adds to the
layers under it: mmdebstrap makes the whole stack's system, the layer below is
unpacked from its own file, and layer_diff keeps the difference (deletions as
overlayfs whiteouts). Either way the tree becomes a squashfs (zstd) or erofs
(lz4hc) file system.

Every tree gets the same finishing touches (see FINISH): the host name
"sandbox", /etc/hosts, an empty resolv.conf (the agent writes DHCP's), the
non-root account `sandbox` (uid 1000) and /workspace owned by it, and no
apt caches. Doing it in every tree, not just the bottom one, keeps those files
out of the diffs above.

Cache: CACHE/layers/<key>.<fs> with <key>.json beside it (what went in, size,
sha256), written last. The key hashes the builder's files, the suite and
mirrors, and the recipe of the layer and of every layer below it, so a change
anywhere under a layer rebuilds it. Packages fetched by mmdebstrap are kept in
CACHE/layer-debs/ and handed back to the next run, so a rebuild downloads only
what changed. The key does not follow the archive: a layer built last month is
reused until its recipe changes (removing CACHE/layers rebuilds them all; the
images already made keep their own links to the old files).
"""
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import layer_diff

FINISH = r"""
set -e
root="$1"
echo sandbox > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 sandbox\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
rm -f "$root/etc/resolv.conf"
echo '# no DNS server yet: the sandbox agent writes the ones DHCP names' > "$root/etc/resolv.conf"
chroot "$root" useradd --create-home --uid 1000 --user-group --shell /bin/bash sandbox
install -d -o 1000 -g 1000 -m 0755 "$root/workspace"
rm -f "$root/var/cache/apt/archives/"*.deb "$root/var/cache/apt/"*.bin
: > "$root/etc/machine-id"
rm -rf "$root/var/log/"*.log "$root/var/log/apt" "$root/tmp/"* "$root/var/tmp/"*
"""

MKFS = {
    "squashfs": lambda tree, out: ["mksquashfs", tree, out, "-comp", "zstd", "-noappend", "-quiet",
                                   "-no-progress", "-xattrs"],
    "erofs": lambda tree, out: ["mkfs.erofs", "-zlz4hc", "--quiet", out, tree],
}
UNPACK = {
    "squashfs": lambda image, tree: ["unsquashfs", "-no-progress", "-quiet", "-d", tree, image],
    "erofs": lambda image, tree: ["fsck.erofs", "--extract=" + tree, image],
}


class LayerError(Exception):
    pass


class BuiltLayer:
    def __init__(self, name, path, fs, sha256, size, key):
        self.name, self.path, self.fs, self.sha256, self.size, self.key = name, path, fs, sha256, size, key


def log(message):
    print(f"layers: {message}", flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chain(config, name):
    """The layers from the bottom one up to `name`."""
    out = []
    at = name
    while at is not None:
        out.append(config.layers[at])
        at = config.layers[at].below
    return out[::-1]


def layer_key(config, name, builder_files):
    h = hashlib.sha256()
    for path in builder_files:
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    h.update(FINISH.encode())
    recipe = {"suite": config.suite, "mirrors": config.mirrors, "fs": config.fs,
              "chain": [layer.recipe() for layer in chain(config, name)]}
    h.update(json.dumps(recipe, sort_keys=True).encode())
    return h.hexdigest()


def run(argv, what):
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise LayerError(f"{what}: {argv[0]} is not installed")
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-25:])
        raise LayerError(f"{what} failed (exit {result.returncode}):\n{tail}")


def debootstrap_tree(config, packages, tree, deb_cache):
    """A minbase system with `packages`, finished, at `tree` (which must not exist)."""
    os.makedirs(deb_cache, exist_ok=True)
    argv = [
        "mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory",
        "--include=" + ",".join(packages),
        # The .debs survive the run so the next one needs no download.
        "--skip=download/empty", "--skip=essential/unlink",
        "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/partial && "
        f"find {deb_cache} -maxdepth 1 -name '*.deb' -exec cp -t \"$1\"/var/cache/apt/archives/ {{}} +",
        f"--customize-hook=sync-out /var/cache/apt/archives {deb_cache}",
        "--customize-hook=" + FINISH,
        config.suite, tree,
    ] + ["deb " + m for m in config.mirrors]
    run(argv, "mmdebstrap")


def build_layer(config, name, cache_dir, builder_files, built=None):
    """The layer `name`, from the cache or built now (with the layers below it)."""
    built = {} if built is None else built
    if name in built:
        return built[name]
    layers_dir = os.path.join(cache_dir, "layers")
    os.makedirs(layers_dir, exist_ok=True)
    key = layer_key(config, name, builder_files)
    path = os.path.join(layers_dir, f"{key}.{config.fs}")
    meta_path = os.path.join(layers_dir, f"{key}.json")
    # One build per key at a time: images built side by side share their
    # bottom layers, and the second builder waits for the first's result.
    lock = open(os.path.join(layers_dir, f".lock-{key}"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        meta = read_meta(meta_path, path) or make_layer(config, name, cache_dir, builder_files, built, key, path,
                                                        meta_path)
    finally:
        lock.close()
    os.utime(meta_path)  # most recently used, for pruning
    built[name] = BuiltLayer(name, path, meta["fs"], meta["sha256"], meta["size"], key)
    return built[name]


def make_layer(config, name, cache_dir, builder_files, built, key, path, meta_path):
    layers_dir = os.path.dirname(path)
    below = config.layers[name].below
    lower = build_layer(config, below, cache_dir, builder_files, built) if below else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=layers_dir, prefix=".build-") as work:
        packages = sorted({p for layer in chain(config, name) for p in layer.packages})
        full = os.path.join(work, "full")
        debootstrap_tree(config, packages, full, os.path.join(cache_dir, "layer-debs"))
        tree = full
        if lower is not None:
            lower_tree, tree = os.path.join(work, "lower"), os.path.join(work, "layer")
            run(UNPACK[config.fs](lower.path, lower_tree), f"unpacking layer '{lower.name}'")
            copied, whiteouts = layer_diff.diff_trees(lower_tree, full, tree)
            log(f"'{name}' over '{lower.name}': {copied} entries, {whiteouts} whiteouts")
        tmp = os.path.join(work, "layer." + config.fs)
        run(MKFS[config.fs](tree, tmp), f"making the {config.fs} of layer '{name}'")
        meta = {"name": name, "key": key, "fs": config.fs, "packages": packages,
                "below": below, "size": os.path.getsize(tmp), "sha256": sha256_file(tmp),
                "build_seconds": round(time.monotonic() - started, 1)}
        os.replace(tmp, path)
        with open(meta_path + ".tmp", "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(meta_path + ".tmp", meta_path)
    log(f"'{name}' built in {meta['build_seconds']} s: {meta['size'] / 1e6:.1f} MB {config.fs}")
    return meta


def read_meta(meta_path, path):
    """A cached layer's record, or None when it is missing or does not match its file."""
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        if os.path.getsize(path) != meta["size"]:
            return None
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prune_layers(cache_dir, keep_keys):
    """Removes cached layers no kept image refers to and unused for an hour
    (an image being built beside this one may not have written its manifest
    yet), and abandoned builds."""
    layers_dir = os.path.join(cache_dir, "layers")
    if not os.path.isdir(layers_dir):
        return
    now = time.time()
    for entry in os.listdir(layers_dir):
        path = os.path.join(layers_dir, entry)
        if entry.startswith(".build-"):
            if now - os.stat(path).st_mtime > 3600:
                shutil.rmtree(path, ignore_errors=True)
            continue
        key = entry.split(".", 1)[0].removeprefix(".lock-")
        try:
            recent = now - os.stat(os.path.join(layers_dir, key + ".json")).st_mtime < 3600
        except OSError:
            recent = False
        if key not in keep_keys and not recent:
            try:
                os.remove(path)
            except OSError:
                pass
