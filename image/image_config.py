"""images.json: which read-only layers exist and which images stack them.

    load_config(path) -> Config        parse_config(text, source) -> Config
    load_configs([path, ...]) -> Config

A layer has a name, the Debian packages it adds and the layer it sits on
("below"; none for a bottom layer, which is a fresh minbase system). An image
is a list of layers, bottom first, each sitting on the one before it. Every
mistake is a ConfigError naming the file and the key.

load_configs merges a user's files over the shipped one (the first): their
layers and images are added to it, and may sit on or stack its layers; their
suite, mirrors and fs, where given, replace its. A name the first already
uses is refused rather than replaced: a shipped layer changed under the
images built on it would rebuild all of them, and a user's "base" that is
not the base the README describes would only confuse.
"""
import json
import re

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
FILESYSTEMS = ("squashfs", "erofs")
TOP_KEYS = {"comment", "suite", "mirrors", "fs", "layers", "images"}
LAYER_KEYS = {"comment", "below", "packages"}


class ConfigError(Exception):
    pass


class Layer:
    def __init__(self, name, below, packages):
        self.name, self.below, self.packages = name, below, packages

    def recipe(self):
        return {"name": self.name, "below": self.below, "packages": self.packages}


class Config:
    def __init__(self, suite, mirrors, fs, layers, images, source="images.json"):
        self.suite, self.mirrors, self.fs = suite, mirrors, fs
        self.layers, self.images = layers, images  # {name: Layer}, {name: [layer names]}
        self.source = source  # the file it came from (the first one, for a merged config)


def parse_config(text, source="images.json", base=None):
    """The config in `text`; with `base`, merged over it (see load_configs)."""
    def fail(what):
        raise ConfigError(f"{source}: {what}")

    try:
        doc = json.loads(text)
    except ValueError as e:
        fail(f"not JSON: {e}")
    if not isinstance(doc, dict):
        fail("must be a JSON object")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        fail(f"unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")

    suite = doc.get("suite", base.suite if base else "bookworm")
    if not isinstance(suite, str) or not NAME.fullmatch(suite):
        fail(f"suite: {suite!r} is not a suite name")
    mirrors = doc.get("mirrors", base.mirrors if base else None)
    if (not isinstance(mirrors, list) or not mirrors
            or not all(isinstance(m, str) and re.fullmatch(r"https?://\S+ \S+( \S+)+", m) for m in mirrors)):
        fail("mirrors: a non-empty list of \"URI SUITE COMPONENT...\" strings")
    fs = doc.get("fs", base.fs if base else "squashfs")
    if fs not in FILESYSTEMS:
        fail(f"fs: {fs!r} is not one of {', '.join(FILESYSTEMS)}")

    shipped = base.layers if base else {}
    raw_layers = doc.get("layers", {} if base else None)
    if not isinstance(raw_layers, dict) or not (raw_layers or base):
        fail("layers: an object of layer name -> layer")
    layers = {}
    for name, body in raw_layers.items():
        where = f"layers.{name}"
        if not NAME.fullmatch(name):
            fail(f"{where}: bad layer name (lower-case letters, digits, '.', '_', '-')")
        if name in shipped:
            fail(f"{where}: {base.source} has a layer {name!r} already; "
                 f"it cannot be replaced (choose another name)")
        if not isinstance(body, dict):
            fail(f"{where}: must be an object")
        unknown = set(body) - LAYER_KEYS
        if unknown:
            fail(f"{where}: unknown key {sorted(unknown)[0]!r}")
        below = body.get("below")
        if below is not None and below not in raw_layers and below not in shipped:
            fail(f"{where}.below: no layer named {below!r}")
        packages = body.get("packages")
        if (not isinstance(packages, list) or not packages
                or not all(isinstance(p, str) and PACKAGE.fullmatch(p) for p in packages)):
            fail(f"{where}.packages: a non-empty list of Debian package names")
        if len(set(packages)) != len(packages):
            fail(f"{where}.packages: a package is listed twice")
        layers[name] = Layer(name, below, sorted(packages))
    layers = {**shipped, **layers}
    for name in layers:
        seen, at = [], name
        while at is not None:
            if at in seen:
                fail(f"layers: a cycle through 'below': {' -> '.join(seen + [at])}")
            seen.append(at)
            at = layers[at].below

    raw_images = doc.get("images", {} if base else None)
    if not isinstance(raw_images, dict) or not (raw_images or base):
        fail("images: an object of image name -> list of layers")
    images = dict(base.images) if base else {}
    for name, stack in raw_images.items():
        where = f"images.{name}"
        if not NAME.fullmatch(name) or name in ("mini", "qga"):
            fail(f"{where}: bad image name ('mini' and 'qga' are the initramfs-only images)")
        if name in images:
            fail(f"{where}: {base.source} has an image {name!r} already; "
                 f"it cannot be replaced (choose another name)")
        if not isinstance(stack, list) or not stack or not all(isinstance(s, str) for s in stack):
            fail(f"{where}: a non-empty list of layer names, bottom first")
        for i, layer in enumerate(stack):
            if layer not in layers:
                fail(f"{where}: no layer named {layer!r}")
            expected = stack[i - 1] if i else None
            if layers[layer].below != expected:
                fail(f"{where}: layer {layer!r} sits on {layers[layer].below or 'nothing'}, "
                     f"not on {expected or 'nothing'}")
        images[name] = list(stack)
    return Config(suite, list(mirrors), fs, layers, images, base.source if base else source)


def load_config(path, base=None):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}")
    return parse_config(text, path, base)


def load_configs(paths):
    """The first file, with each of the others merged over it in turn."""
    config = None
    for path in paths:
        config = load_config(path, config)
    return config
