#!/usr/bin/env python3
"""image/: images.json's parser, the tree diff that makes an upper layer, the
layer cache keys, and the module lists. No mmdebstrap, no VM: small trees in a
temporary dir."""
import json
import os
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "image"))
import build_image  # noqa: E402
import image_config  # noqa: E402
import layer_builder  # noqa: E402
import layer_diff  # noqa: E402

MIRROR = "http://deb.debian.org/debian bookworm main"


def config_text(**overrides):
    doc = {"suite": "bookworm", "mirrors": [MIRROR], "fs": "squashfs",
           "layers": {"base": {"packages": ["bash"]}, "node": {"below": "base", "packages": ["nodejs"]}},
           "images": {"debian": ["base"], "node": ["base", "node"]}}
    doc.update(overrides)
    return json.dumps(doc)


class ConfigTest(unittest.TestCase):
    def refused(self, text, expected):
        with self.assertRaises(image_config.ConfigError) as caught:
            image_config.parse_config(text, "x.json")
        self.assertIn(expected, str(caught.exception))
        self.assertTrue(str(caught.exception).startswith("x.json: "))

    def test_the_shipped_config_parses(self):
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "image", "images.json")
        config = image_config.load_config(here)
        self.assertEqual(config.images["default"], ["base"])
        self.assertIn("python3", config.layers["base"].packages)
        self.assertEqual(config.layers["node"].below, "base")

    def test_a_good_config(self):
        config = image_config.parse_config(config_text())
        self.assertEqual((config.suite, config.fs, config.mirrors), ("bookworm", "squashfs", [MIRROR]))
        self.assertEqual(config.images, {"debian": ["base"], "node": ["base", "node"]})

    def test_mistakes_name_their_key(self):
        self.refused("[", "not JSON")
        self.refused("[]", "must be a JSON object")
        self.refused(config_text(extra=1), "unknown key 'extra'")
        self.refused(config_text(fs="ext4"), "fs: 'ext4'")
        self.refused(config_text(mirrors=[]), "mirrors:")
        self.refused(config_text(mirrors=["ftp://x bookworm main"]), "mirrors:")
        self.refused(config_text(suite="../x"), "suite:")
        self.refused(config_text(layers={"Base": {"packages": ["bash"]}}), "layers.Base: bad layer name")
        self.refused(config_text(layers={"base": {"packages": []}}), "layers.base.packages")
        self.refused(config_text(layers={"base": {"packages": ["bash; rm -rf /"]}}), "layers.base.packages")
        self.refused(config_text(layers={"base": {"packages": ["a1", "a1"]}}), "listed twice")
        self.refused(config_text(layers={"base": {"packages": ["bash"], "below": "nope"}}), "no layer named 'nope'")
        self.refused(config_text(layers={"a": {"packages": ["x1"], "below": "b"}, "b": {"packages": ["x2"], "below": "a"}},
                                 images={"i": ["a"]}), "a cycle")

    def test_images_stack_layers_in_order(self):
        self.refused(config_text(images={"mini": ["base"]}), "images.mini: bad image name")
        self.refused(config_text(images={"i": []}), "images.i:")
        self.refused(config_text(images={"i": ["nope"]}), "no layer named 'nope'")
        self.refused(config_text(images={"i": ["node"]}), "layer 'node' sits on base, not on nothing")
        self.refused(config_text(images={"i": ["base", "base"]}), "sits on nothing, not on base")


class MergeTest(unittest.TestCase):
    """A user's file over the shipped one, as `sandboxd-host image build --config` passes them."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.shipped = self.write("shipped.json", config_text())

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def merged(self, doc):
        return image_config.load_configs([self.shipped, self.write("mine.json", json.dumps(doc))])

    def refused(self, doc, expected):
        with self.assertRaises(image_config.ConfigError) as caught:
            self.merged(doc)
        self.assertIn(expected, str(caught.exception))
        self.assertTrue(str(caught.exception).startswith(os.path.join(self.dir.name, "mine.json") + ": "))

    def test_a_users_layer_sits_on_a_shipped_one(self):
        config = self.merged({"layers": {"tools": {"below": "base", "packages": ["jq"]}},
                              "images": {"tools": ["base", "tools"]}})
        self.assertEqual(config.images["tools"], ["base", "tools"])
        self.assertEqual(config.images["node"], ["base", "node"])
        self.assertEqual(sorted(config.layers), ["base", "node", "tools"])
        self.assertEqual((config.suite, config.mirrors, config.fs), ("bookworm", [MIRROR], "squashfs"))
        # The shipped base is the same layer, so the same cache key: built once.
        files = [os.path.join(os.path.dirname(layer_builder.__file__), "layer_diff.py")]
        self.assertEqual(layer_builder.layer_key(config, "base", files),
                         layer_builder.layer_key(image_config.load_config(self.shipped), "base", files))

    def test_the_users_suite_mirrors_and_fs_win(self):
        other = "http://mirror.example/debian bookworm main"
        config = self.merged({"fs": "erofs", "mirrors": [other], "images": {"again": ["base", "node"]}})
        self.assertEqual((config.fs, config.mirrors), ("erofs", [other]))

    def test_shipped_names_are_not_replaced(self):
        self.refused({"layers": {"base": {"packages": ["jq"]}}}, "layers.base: ")
        self.refused({"layers": {"base": {"packages": ["jq"]}}}, "has a layer 'base' already")
        self.refused({"images": {"node": ["base"]}}, "has an image 'node' already")

    def test_mistakes_in_the_users_file_name_it_and_the_key(self):
        self.refused({"layers": {"tools": {"below": "nope", "packages": ["jq"]}}}, "layers.tools.below")
        self.refused({"layers": {"tools": {"below": "base", "packages": ["jq"]}}, "images": {"t": ["tools"]}},
                     "images.t: layer 'tools' sits on base, not on nothing")
        self.refused({"layers": {"tools": {"below": "base"}}}, "layers.tools.packages")
        self.refused({"layres": {}}, "unknown key 'layres'")
        self.refused({"images": {"qga": ["base"]}}, "images.qga: bad image name")
        with self.assertRaises(image_config.ConfigError) as caught:
            image_config.load_configs([self.shipped, os.path.join(self.dir.name, "absent.json")])
        self.assertIn("cannot read", str(caught.exception))


class DiffTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.lower, self.upper, self.out = (os.path.join(self.tmp.name, n) for n in ("lower", "upper", "out"))
        for root in (self.lower, self.upper):
            os.makedirs(os.path.join(root, "etc", "kept"))
            os.makedirs(os.path.join(root, "usr", "bin"))
            self.write(root, "etc/kept/same", "same")
            self.write(root, "etc/changed", "v1" if root == self.lower else "v2")
        self.write(self.lower, "etc/removed", "x")
        os.makedirs(os.path.join(self.lower, "var", "gone"))
        self.write(self.lower, "var/gone/file", "x")
        self.write(self.upper, "usr/bin/node", "#!node")
        os.link(os.path.join(self.upper, "usr/bin/node"), os.path.join(self.upper, "usr/bin/nodejs"))
        os.symlink("node", os.path.join(self.upper, "usr/bin/js"))
        os.makedirs(os.path.join(self.upper, "var"))
        # same bytes, new mtime: not a difference
        os.utime(os.path.join(self.upper, "etc/kept/same"), (1, 1))

    def tearDown(self):
        self.tmp.cleanup()

    @staticmethod
    def write(root, rel, text):
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)

    def walk(self):
        return sorted(os.path.relpath(os.path.join(d, n), self.out)
                      for d, dirs, files in os.walk(self.out) for n in dirs + files)

    def test_the_layer_holds_what_changed_and_whiteouts_for_what_went(self):
        copied, whiteouts = layer_diff.diff_trees(self.lower, self.upper, self.out)
        self.assertEqual(self.walk(), ["etc", "etc/changed", "etc/removed", "usr", "usr/bin", "usr/bin/js",
                                       "usr/bin/node", "usr/bin/nodejs", "var", "var/gone"])
        self.assertEqual((copied, whiteouts), (4, 2))
        for gone in ("etc/removed", "var/gone"):
            st = os.lstat(os.path.join(self.out, gone))
            self.assertTrue(stat.S_ISCHR(st.st_mode))
            self.assertEqual(st.st_rdev, os.makedev(0, 0))
        with open(os.path.join(self.out, "etc/changed")) as f:
            self.assertEqual(f.read(), "v2")
        self.assertEqual(os.readlink(os.path.join(self.out, "usr/bin/js")), "node")
        node, nodejs = (os.lstat(os.path.join(self.out, "usr/bin", n)) for n in ("node", "nodejs"))
        self.assertEqual(node.st_ino, nodejs.st_ino)  # still one file

    def test_a_mode_change_alone_is_a_difference(self):
        os.chmod(os.path.join(self.upper, "etc/kept/same"), 0o600)
        layer_diff.diff_trees(self.lower, self.upper, self.out)
        self.assertIn("etc/kept/same", self.walk())
        self.assertEqual(stat.S_IMODE(os.lstat(os.path.join(self.out, "etc/kept/same")).st_mode), 0o600)

    def test_the_output_must_not_exist(self):
        os.makedirs(self.out)
        with self.assertRaises(FileExistsError):
            layer_diff.diff_trees(self.lower, self.upper, self.out)


class KeyTest(unittest.TestCase):
    def test_a_layer_key_follows_its_recipe_and_every_layer_below(self):
        with tempfile.NamedTemporaryFile("w", suffix=".py") as builder:
            builder.write("v1")
            builder.flush()
            files = [builder.name]
            config = image_config.parse_config(config_text())
            base, node = (layer_builder.layer_key(config, n, files) for n in ("base", "node"))
            self.assertNotEqual(base, node)
            self.assertEqual(base, layer_builder.layer_key(image_config.parse_config(config_text()), "base", files))
            changed_base = image_config.parse_config(config_text(layers={
                "base": {"packages": ["bash", "less"]}, "node": {"below": "base", "packages": ["nodejs"]}}))
            self.assertNotEqual(layer_builder.layer_key(changed_base, "node", files), node)
            self.assertNotEqual(layer_builder.layer_key(config, "base", files),
                                layer_builder.layer_key(image_config.parse_config(config_text(fs="erofs")), "base",
                                                        files))
            builder.write("v2")
            builder.flush()
            self.assertNotEqual(layer_builder.layer_key(config, "base", files), base)


class ModuleListTest(unittest.TestCase):
    # modules.dep of a kernel with 9p and virtiofs as modules, as module_dependencies reads it.
    DEPS = {
        "kernel/drivers/virtio/virtio_ring.ko": [],
        "kernel/drivers/virtio/virtio.ko": [],
        "kernel/drivers/virtio/virtio_mmio.ko": ["kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko"],
        "kernel/fs/fuse/fuse.ko": [],
        "kernel/fs/fuse/virtiofs.ko": ["kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko",
                                       "kernel/fs/fuse/fuse.ko"],
        "kernel/net/9p/9pnet.ko": [],
        "kernel/net/9p/9pnet_virtio.ko": ["kernel/net/9p/9pnet.ko", "kernel/drivers/virtio/virtio.ko",
                                          "kernel/drivers/virtio/virtio_ring.ko"],
        "kernel/fs/netfs/netfs.ko": [],
        "kernel/fs/9p/9p.ko": ["kernel/net/9p/9pnet.ko", "kernel/fs/netfs/netfs.ko"],
    }

    def test_optional_modules_name_what_they_need_beyond_the_boot_list(self):
        boot = build_image.module_load_order(self.DEPS, "6.1", ["virtio_mmio", "fuse"])
        optional = build_image.module_load_order(self.DEPS, "6.1", ["9pnet_virtio", "9p", "virtiofs", "fuse"])
        lines = build_image.optional_module_lines(self.DEPS, boot, optional)
        self.assertEqual(lines, [
            ["kernel/net/9p/9pnet.ko"],
            ["kernel/net/9p/9pnet_virtio.ko", "9pnet"],
            ["kernel/fs/netfs/netfs.ko"],
            ["kernel/fs/9p/9p.ko", "netfs", "9pnet"],
            ["kernel/fs/fuse/virtiofs.ko"],
        ])

    def test_a_missing_boot_module_is_an_error(self):
        with self.assertRaises(build_image.BuildError):
            build_image.module_load_order(self.DEPS, "6.1", ["virtio_net"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
