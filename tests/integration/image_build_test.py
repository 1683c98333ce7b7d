#!/usr/bin/env python3
"""`sandboxd-host image build`: a user's config with one small layer (jq) on
the shipped `base`, built into a temporary image store, listed with its
layers, booted by `sandboxd-host run`, rebuilt over itself and removed; and
what it refuses (a bad, reserved or shadowed name, a checkpoint's name, a
config with a mistake, a caller who is not root), each with a message that
says why and nothing left in the store.

The shipped layers come from the builder's cache (the build tree's images put
them there); only the jq layer is new, and only the first time: it is cached
by its recipe like any other layer.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

HOST = os.environ["SANDBOXD_HOST"]
TOOLS_CONFIG = {"layers": {"tools": {"below": "base", "packages": ["jq"]}}, "images": {"tools": ["base", "tools"]}}


def image_roots():
    return [r for r in os.environ.get("SANDBOXD_IMAGES", "").split(":") if r]


class ImageBuildTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="sandboxd-image-build-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.store = os.path.join(cls.work, "store")
        cls.config = cls.write_config("tools.json", TOOLS_CONFIG)
        started = time.monotonic()
        cls.built = cls.host("image", "build", "tools", "--config", cls.config, "--image-store", cls.store, "--json",
                             timeout=1200)
        cls.build_seconds = time.monotonic() - started
        print(f"image build tools: {cls.build_seconds:.1f} s (exit {cls.built.returncode})", flush=True)

    @classmethod
    def write_config(cls, name, doc):
        path = os.path.join(cls.work, name)
        with open(path, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    @staticmethod
    def host(*args, env=None, timeout=120, **kwargs):
        return subprocess.run([HOST, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, **kwargs)

    def with_store(self, *extra_roots):
        return {"SANDBOXD_IMAGES": ":".join([*extra_roots, *image_roots(), self.store])}

    def store_entries(self):
        return sorted(os.listdir(self.store)) if os.path.isdir(self.store) else []

    def refused(self, result, message):
        self.assertNotEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(message, result.stderr)
        self.assertEqual(result.stdout, "")

    def test_1_the_image_is_in_the_store_with_its_layers(self):
        self.assertEqual(self.built.returncode, 0, self.built.stderr)
        # --json: the result alone on stdout, the builder's progress on stderr.
        result = json.loads(self.built.stdout)
        directory = os.path.join(self.store, "tools")
        self.assertEqual((result["name"], result["directory"], result["origin"]), ("tools", directory, "built"))
        self.assertEqual([layer["name"] for layer in result["layers"]], ["base", "tools"])
        self.assertIn("guest image 'tools'", self.built.stderr)
        self.assertEqual(self.store_entries(), ["tools"])  # no build directory left
        with open(os.path.join(directory, "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["built_by"], "sandboxd-host image build")
        # The shipped base, not a base of its own: the same layer (cache key) as the build tree's default image.
        shipped = next(os.path.join(r, "default", "manifest.json") for r in image_roots()
                       if os.path.isfile(os.path.join(r, "default", "manifest.json")))
        with open(shipped) as f:
            self.assertEqual(manifest["layers"][0]["key"], json.load(f)["layers"][0]["key"])
        self.assertLess(manifest["layers"][1]["size"], 10 << 20)  # jq and its libraries only

    def test_2_image_list_shows_it(self):
        for how in (["--image-store", self.store], []):
            result = self.host("image", "list", "--json", *how, env=self.with_store() if not how else None)
            self.assertEqual(result.returncode, 0, result.stderr)
            images = {image["name"]: image for image in json.loads(result.stdout)}
            self.assertEqual([layer["name"] for layer in images["tools"]["layers"]], ["base", "tools"])
            self.assertEqual((images["tools"]["origin"], images["tools"]["kind"]), ("built", "layered"))
            self.assertNotIn("origin", images["default"])
        table = self.host("image", "list", "--image-store", self.store).stdout.splitlines()
        self.assertIn(["tools", "layered", "base+tools"], [line.split()[:3] for line in table])
        self.assertIn("built", next(line for line in table if line.startswith("tools ")).split())

    def test_3_run_boots_it(self):
        result = self.host("run", "--image", "tools", "--", "jq", "-n", "[40, 2] | add", env=self.with_store(),
                           timeout=300)
        self.assertEqual((result.returncode, result.stdout), (0, "42\n"), result.stderr)
        # The layer is on the shipped base: its tools are there too.
        result = self.host("run", "--image", "tools", "--", "sh", "-c", "for c in jq python3 git; do command -v $c; done",
                           env=self.with_store(), timeout=300)
        self.assertEqual(result.stdout, "/usr/bin/jq\n/usr/bin/python3\n/usr/bin/git\n", result.stderr)

    def test_4_a_rebuild_replaces_the_older_build(self):
        before = os.stat(os.path.join(self.store, "tools", "manifest.json")).st_ino
        result = self.host("image", "build", "tools", "--config", self.config, "--image-store", self.store,
                           timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"image 'tools' (base+tools, ", result.stdout)
        self.assertIn(f"is in {os.path.join(self.store, 'tools')}, replacing the older build", result.stdout)
        self.assertIn("cached", result.stdout)  # the builder's line: nothing changed, nothing rebuilt
        self.assertNotEqual(os.stat(os.path.join(self.store, "tools", "manifest.json")).st_ino, before)
        self.assertEqual(self.store_entries(), ["tools"])

    def test_5_refusals_leave_nothing_in_the_store(self):
        before = self.store_entries()
        build = ["image", "build", "--image-store", self.store]
        self.refused(self.host(*build, "../up"), "'../up' is not an image name")
        self.refused(self.host(*build, ".hidden"), "'.hidden' is not an image name")
        self.refused(self.host(*build, "qga"), "'qga' is reserved")
        # The build tree's default comes before the store: an image named so would never boot.
        shipped_default = next(os.path.join(r, "default") for r in image_roots()
                               if os.path.isfile(os.path.join(r, "default", "manifest.json")))
        self.refused(self.host(*build, "default"), f"an image 'default' is already in {shipped_default}, which "
                                                   f"comes before the image store {self.store}")
        # And a root named in SANDBOXD_IMAGES before it.
        earlier = os.path.join(self.work, "earlier")
        os.makedirs(os.path.join(earlier, "mine"))
        for name in ("vmlinuz", "initramfs.cpio", "manifest.json"):
            open(os.path.join(earlier, "mine", name), "w").close()
        mine = self.write_config("mine.json", {"layers": {"mine": {"below": "base", "packages": ["jq"]}},
                                               "images": {"mine": ["base", "mine"]}})
        self.refused(self.host(*build, "mine", "--config", mine, env=self.with_store(earlier)),
                     f"already in {os.path.join(earlier, 'mine')}, which comes before")
        # A checkpoint image of that name is the daemon's, not replaced.
        checkpoint = os.path.join(self.store, "ckpt")
        os.makedirs(checkpoint)
        with open(os.path.join(checkpoint, "manifest.json"), "w") as f:
            json.dump({"name": "ckpt", "owner": "someone", "checkpoint_of": "default", "layers": []}, f)
        try:
            self.refused(self.host(*build, "ckpt"), "is a checkpoint image; remove it first")
        finally:
            shutil.rmtree(checkpoint)

        # Mistakes in the config: the builder names the file and the key, and no download starts.
        mistakes = [
            ({"layers": {"tools2": {"below": "bsae", "packages": ["jq"]}}, "images": {"tools2": ["base", "tools2"]}},
             "layers.tools2.below: no layer named 'bsae'"),
            ({"layers": {"base": {"packages": ["jq"]}}, "images": {"tools2": ["base"]}},
             "layers.base: "),
            ({"images": {"node": ["base"]}}, "images.node: "),
            ({"layers": {"tools2": {"below": "base", "packages": ["jq; rm -rf /"]}}},
             "layers.tools2.packages: a non-empty list of Debian package names"),
            ({"layers": {"tools2": {"below": "base", "packages": ["jq"]}}, "images": {"tools2": ["tools2"]}},
             "images.tools2: layer 'tools2' sits on base, not on nothing"),
            ('{"layers": ', "not JSON"),
        ]
        for doc, message in mistakes:
            with self.subTest(message=message):
                path = self.write_config("mistake.json", doc)
                started = time.monotonic()
                result = self.host(*build, "tools2", "--config", path)
                self.refused(result, f"{path}: {message}")
                self.assertIn(f"nothing was added to {self.store}", result.stderr)
                self.assertLess(time.monotonic() - started, 30)
        self.refused(self.host(*build, "tools2", "--config", os.path.join(self.work, "absent.json")),
                     "cannot read")
        self.refused(self.host(*build, "tools2"), "no image 'tools2' (there are build, default, node)")
        # Not root: said before anything is built.
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", HOST, *build, "tools2"]
        result = subprocess.run(nobody, capture_output=True, text=True, timeout=60)
        self.refused(result, "building an image needs root")
        self.assertEqual(self.store_entries(), before)

    def test_6_image_rm_removes_a_built_image(self):
        result = self.host("image", "rm", "--image-store", self.store, "tools")
        self.assertEqual((result.returncode, result.stdout), (0, "tools\n"), result.stderr)
        self.assertEqual(self.store_entries(), [])
        result = self.host("run", "--image", "tools", "--", "true", env=self.with_store(), timeout=120)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no guest image 'tools'", result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
