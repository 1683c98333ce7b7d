#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/image_layers.hpp"
#include "daemon/vm/qemu_command.hpp"

using namespace sandboxd::vm;

namespace {

// sha256("layer bytes\n"), as `printf 'layer bytes\n' | sha256sum` prints it.
constexpr const char* kLayerSha = "bbc3379526e08a8ee352659d8dbe634e47700e09673edc18d89d33c52c71707e";

std::string manifest_with(const std::string& layers) { return "{\"name\": \"t\", \"layers\": " + layers + "}"; }

std::string layer_json(const std::string& name, const std::string& file, const std::string& sha, const std::string& size,
                       const std::string& fs = "\"squashfs\"") {
  return "{\"name\": " + name + ", \"file\": " + file + ", \"fs\": " + fs + ", \"sha256\": " + sha +
         ", \"size\": " + size + "}";
}

std::string good_layer(const std::string& name = "base") {
  return layer_json("\"" + name + "\"", "\"layers/" + name + ".squashfs\"", "\"" + std::string(64, 'a') + "\"", "12");
}

struct ImageDir {
  std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("sandboxd-layers-test-" + std::to_string(::getpid()));
  std::filesystem::path dir = root / "layered";
  ImageDir() {
    std::filesystem::create_directories(dir / "layers");
    for (const char* f : {"vmlinuz", "initramfs.cpio"}) std::ofstream(dir / f) << "x";
  }
  ~ImageDir() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  void manifest(const std::string& text) const { std::ofstream(dir / "manifest.json") << text; }
  void layer(const std::string& file, const std::string& bytes) const { std::ofstream(dir / file) << bytes; }
};

}  // namespace

TEST_CASE("image layers: no layers, null or an empty list is an initramfs-only image") {
  for (const char* text : {"{}", "{\"layers\": null}", "{\"layers\": []}", "{\"name\": \"default\", \"kernel\": {}}"}) {
    auto layers = parse_image_layers(text, "/img");
    REQUIRE(layers.has_value());
    CHECK(layers->empty());
  }
}

TEST_CASE("image layers: layers are read bottom first, files resolved in the image directory") {
  auto layers = parse_image_layers(
      manifest_with("[" + good_layer("base") + ", " +
                    layer_json("\"top\"", "\"layers/top.erofs\"", "\"" + std::string(64, '0') + "\"",
                               "18446744073709551615", "\"erofs\"") +
                    "]"),
      "/img");
  REQUIRE(layers.has_value());
  REQUIRE(layers->size() == 2);
  CHECK((*layers)[0] == ImageLayer{"base", "/img/layers/base.squashfs", "squashfs", std::string(64, 'a'), 12});
  CHECK((*layers)[1].name == "top");
  CHECK((*layers)[1].fs == "erofs");
  CHECK((*layers)[1].size == 18446744073709551615ull);
}

TEST_CASE("image layers: a hostile manifest is refused with the reason") {
  const std::string sha = "\"" + std::string(64, 'a') + "\"";
  struct Case {
    std::string text;
    std::string reason;
  };
  const Case cases[] = {
      {"not json", "not JSON"},
      {"[]", "not a JSON object"},
      {manifest_with("{}"), "must be an array"},
      {manifest_with("\"base\""), "must be an array"},
      {manifest_with("[1]"), "expected an object"},
      {manifest_with("[{}]"), "\"name\""},
      {manifest_with("[" + layer_json("7", "\"layers/a\"", sha, "1") + "]"), "\"name\""},
      {manifest_with("[" + layer_json("\"../x\"", "\"layers/a\"", sha, "1") + "]"), "\"name\""},
      {manifest_with("[" + layer_json("\"a\"", "\"../other/a.squashfs\"", sha, "1") + "]"), "\"file\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/../../a\"", sha, "1") + "]"), "\"file\""},
      {manifest_with("[" + layer_json("\"a\"", "\"/etc/shadow\"", sha, "1") + "]"), "\"file\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers//a\"", sha, "1") + "]"), "\"file\""},
      {manifest_with("[" + layer_json("\"a\"", "\"\"", sha, "1") + "]"), "\"file\""},
      {manifest_with("[" + layer_json("\"a\"", "[\"layers/a\"]", sha, "1") + "]"), "\"file\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/a\"", sha, "1", "\"ext4\"") + "]"), "\"fs\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/a\"", "\"abc\"", "1") + "]"), "\"sha256\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/a\"", "\"" + std::string(64, 'A') + "\"", "1") + "]"),
       "\"sha256\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/a\"", sha, "0") + "]"), "\"size\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/a\"", sha, "-5") + "]"), "\"size\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/a\"", sha, "1.5") + "]"), "\"size\""},
      {manifest_with("[" + layer_json("\"a\"", "\"layers/a\"", sha, "\"12\"") + "]"), "\"size\""},
      {manifest_with("[" + good_layer("a") + ", " + good_layer("a") + "]"), "used twice"},
      {manifest_with("[" + good_layer("a") + ", " + layer_json("\"b\"", "\"layers/a.squashfs\"", sha, "1") + "]"),
       "another layer's"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto layers = parse_image_layers(c.text, "/img");
    REQUIRE_FALSE(layers.has_value());
    CHECK(layers.error().find(c.reason) != std::string::npos);
  }
  std::string many = "[";
  for (int i = 0; i <= static_cast<int>(kMaxImageLayers); ++i) many += (i ? ", " : "") + good_layer("l" + std::to_string(i));
  auto too_many = parse_image_layers(manifest_with(many + "]"), "/img");
  REQUIRE_FALSE(too_many.has_value());
  CHECK(too_many.error().find("more than") != std::string::npos);
  CHECK_FALSE(parse_image_layers(std::string(kMaxManifestBytes + 1, ' '), "/img").has_value());
}

TEST_CASE("guest image: a layered image is found with its layers; a missing or resized layer is an error") {
  ImageDir image;
  image.layer("layers/base.squashfs", "layer bytes\n");
  image.manifest(manifest_with("[" +
                               layer_json("\"base\"", "\"layers/base.squashfs\"", std::string("\"") + kLayerSha + "\"",
                                          "12") +
                               "]"));
  auto found = find_guest_image("layered", {image.root});
  REQUIRE(found.has_value());
  REQUIRE(found->layers.size() == 1);
  CHECK(found->layers[0].file == image.dir / "layers/base.squashfs");

  image.layer("layers/base.squashfs", "layer bytes, longer\n");
  auto resized = find_guest_image("layered", {image.root});
  REQUIRE_FALSE(resized.has_value());
  CHECK(resized.error().find("the manifest says 12") != std::string::npos);

  std::filesystem::remove(image.dir / "layers/base.squashfs");
  auto missing = find_guest_image("layered", {image.root});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().find("base") != std::string::npos);

  image.manifest("{\"layers\": 3}");
  auto malformed = find_guest_image("layered", {image.root});
  REQUIRE_FALSE(malformed.has_value());
  CHECK(malformed.error().find("layered") != std::string::npos);
}

TEST_CASE("guest image: a layer file that links outside the image directory is refused") {
  ImageDir image;
  std::ofstream(image.root / "outside") << "layer bytes\n";
  std::filesystem::create_symlink(image.root / "outside", image.dir / "layers/base.squashfs");
  image.manifest(manifest_with("[" + good_layer("base") + "]"));
  auto found = find_guest_image("layered", {image.root});
  REQUIRE_FALSE(found.has_value());
  CHECK(found.error().find("outside the image directory") != std::string::npos);
}

TEST_CASE("image layers: digests are checked against the manifest") {
  ImageDir image;
  image.layer("layers/base.squashfs", "layer bytes\n");
  ImageLayer layer{"base", image.dir / "layers/base.squashfs", "squashfs", kLayerSha, 12};
  CHECK(verify_layer_digests({layer}).has_value());
  image.layer("layers/base.squashfs", "layer bytez\n");
  auto changed = verify_layer_digests({layer});
  REQUIRE_FALSE(changed.has_value());
  CHECK(changed.error().find("sha256 is") != std::string::npos);
}

TEST_CASE("qemu command: layers are read-only virtio-blk disks, bottom first, before the other devices") {
  QemuConfig c;
  c.kernel = "/k";
  c.initramfs = "/i";
  c.layers = {{"base", "/img/layers/base.squashfs", "squashfs", "", 0}, {"top", "/img,x/layers/top.squashfs", "erofs", "", 0}};
  auto args = qemu_command_line(c);
  auto at = [&](const std::string& value) { return std::find(args.begin(), args.end(), value) - args.begin(); };
  auto base = at("file=/img/layers/base.squashfs,if=none,format=raw,readonly=on,id=layer0");
  auto top = at("file=/img,,x/layers/top.squashfs,if=none,format=raw,readonly=on,id=layer1");
  REQUIRE(base < static_cast<long>(args.size()));
  REQUIRE(top < static_cast<long>(args.size()));
  CHECK(args[static_cast<std::size_t>(base - 1)] == "-drive");
  CHECK(args[static_cast<std::size_t>(base + 2)] == "virtio-blk-device,drive=layer0,serial=layer0");
  CHECK(args[static_cast<std::size_t>(top + 2)] == "virtio-blk-device,drive=layer1,serial=layer1");
  CHECK(base < top);
  CHECK(top < at("virtio-serial-device,max_ports=4"));
  CHECK(kernel_command_line(c).ends_with(" sandbox.layers=base:squashfs,top:erofs"));

  c.layers.clear();
  auto plain = qemu_command_line(c);
  CHECK(std::find(plain.begin(), plain.end(), "-drive") == plain.end());
  CHECK(kernel_command_line(c).find("sandbox.layers") == std::string::npos);
}
