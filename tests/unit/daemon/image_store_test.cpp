#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/image_store.hpp"

using namespace sandboxd::vm;
namespace fs = std::filesystem;

namespace {

// A built layered image ("default", one layer) and an empty store beside it.
struct Images {
  fs::path root = fs::temp_directory_path() / ("sandboxd-store-test-" + std::to_string(::getpid()));
  fs::path built = root / "built";
  fs::path store_dir = root / "store";
  ImageStore store{store_dir};
  GuestImage base;

  Images() {
    fs::remove_all(root);
    fs::create_directories(built / "default" / "layers");
    std::ofstream(built / "default" / "vmlinuz") << "kernel";
    std::ofstream(built / "default" / "initramfs.cpio") << "initramfs";
    std::ofstream(built / "default" / "layers" / "base.squashfs") << "hsqs base layer";
    std::ofstream(built / "default" / "manifest.json")
        << R"({"name":"default","layers":[{"name":"base","file":"layers/base.squashfs","fs":"squashfs",)"
        << R"("sha256":")" << std::string(64, 'a') << R"(","size":15}]})";
    auto found = find_guest_image("default", {built});
    REQUIRE(found.has_value());
    base = *found;
  }
  ~Images() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  // A layer as a guest would have streamed it into the store.
  fs::path incoming(const std::string& bytes) {
    auto dir = store.begin();
    REQUIRE(dir.has_value());
    std::ofstream(*dir / "layer.squashfs", std::ios::binary) << bytes;
    return *dir;
  }

  std::vector<std::string> store_entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(store_dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

}  // namespace

TEST_CASE("image store: names are plain words that start with a letter or digit") {
  CHECK(valid_checkpoint_name("with-deps.1_x"));
  CHECK(valid_checkpoint_name(std::string(64, 'a')));
  for (const std::string& bad : std::vector<std::string>{"", "-x", ".hidden", "a/b", "..", "a b", "a:b", "\xc3\xa9", std::string(65, 'a')})
    CHECK_FALSE(valid_checkpoint_name(bad));
  CHECK(looks_like_squashfs("hsqs\x01"));
  CHECK_FALSE(looks_like_squashfs("hsq"));
  CHECK_FALSE(looks_like_squashfs("\x7f" "ELF"));
}

TEST_CASE("image store: a commit stacks the new layer on the base's, sharing the base's files") {
  Images t;
  auto image = t.store.commit("with-deps", t.base, t.incoming("hsqs new layer"), "tok-1");
  REQUIRE(image.has_value());
  CHECK(image->name == "with-deps");
  REQUIRE(image->layers.size() == 2);
  CHECK(image->layers[0].name == "base");
  CHECK(image->layers[1].name == "with-deps");
  CHECK(image->layers[1].size == 14);
  // sha256 of "hsqs new layer"
  CHECK(image->layers[1].sha256.size() == 64);
  CHECK(verify_layer_digests({image->layers[1]}).has_value());
  struct stat base_file {};
  REQUIRE(::stat((t.built / "default" / "layers" / "base.squashfs").c_str(), &base_file) == 0);
  CHECK(base_file.st_nlink == 2);  // the built image's and the checkpoint's
  CHECK(t.store_entries() == std::vector<std::string>{"with-deps"});  // nothing incoming left

  // The new image is an image like any other: it can be the base of the next.
  auto next = t.store.commit("with-more", *image, t.incoming("hsqs more"), "tok-1");
  REQUIRE(next.has_value());
  CHECK(next->layers.size() == 3);
  REQUIRE(::stat((t.built / "default" / "layers" / "base.squashfs").c_str(), &base_file) == 0);
  CHECK(base_file.st_nlink == 3);
}

TEST_CASE("image store: what a commit refuses leaves nothing behind") {
  Images t;
  auto noise = t.store.commit("noise", t.base, t.incoming("\x7f" "ELF not a layer"), "tok-1");
  CHECK(noise.error() == "the guest's layer is not a squashfs");
  auto empty = t.store.commit("empty", t.base, t.incoming(""), "tok-1");
  CHECK(empty.error() == "the guest's layer is not a squashfs");
  auto bad = t.store.commit("../escape", t.base, t.incoming("hsqs"), "tok-1");
  CHECK(bad.error() == "'../escape' is not a checkpoint name");
  auto clash = t.store.commit("base", t.base, t.incoming("hsqs"), "tok-1");
  CHECK(clash.error() == "'base' names a layer of image 'default' already");
  REQUIRE(t.store.commit("taken", t.base, t.incoming("hsqs"), "tok-1").has_value());
  auto again = t.store.commit("taken", t.base, t.incoming("hsqs 2"), "tok-1");
  CHECK(again.error() == "the store already has an image 'taken'");
  CHECK(t.store_entries() == std::vector<std::string>{"taken"});
}

TEST_CASE("image store: only the owner removes an image, and the name is free again") {
  Images t;
  REQUIRE(t.store.commit("mine", t.base, t.incoming("hsqs"), "tok-1").has_value());
  CHECK(t.store.remove("mine", "tok-2").value() == false);
  CHECK(fs::exists(t.store_dir / "mine"));
  CHECK(t.store.remove("absent", "tok-1").value() == false);
  CHECK(t.store.remove("../built", "tok-1").value() == false);
  CHECK(t.store.remove("mine", "tok-1").value() == true);
  CHECK(t.store_entries().empty());
  struct stat base_file {};
  REQUIRE(::stat((t.built / "default" / "layers" / "base.squashfs").c_str(), &base_file) == 0);
  CHECK(base_file.st_nlink == 1);
  CHECK(t.store.commit("mine", t.base, t.incoming("hsqs"), "tok-2").has_value());
  // The host's administrator removes any owner's image, never one without an owner.
  CHECK(t.store.remove("mine", std::nullopt).value() == true);
  CHECK(t.store_entries().empty());
  fs::create_directories(t.store_dir / "plain");
  std::ofstream(t.store_dir / "plain" / "manifest.json") << R"({"name":"plain"})";
  CHECK(t.store.remove("plain", std::nullopt).value() == false);
  CHECK(fs::exists(t.store_dir / "plain" / "manifest.json"));
}

namespace {

// What image/build_image.py leaves in a begin_build() directory: a whole
// layered image named `name`, one layer whose bytes are `layer`.
fs::path write_build(const ImageStore& store, const std::string& name, const std::string& layer) {
  auto dir = store.begin_build();
  REQUIRE(dir.has_value());
  fs::create_directories(*dir / "layers");
  std::ofstream(*dir / "vmlinuz") << "kernel";
  std::ofstream(*dir / "initramfs.cpio") << "initramfs";
  std::ofstream(*dir / "layers" / "base.squashfs") << layer;
  std::ofstream(*dir / "manifest.json")
      << R"({"name":")" << name << R"(","layers":[{"name":"base","file":"layers/base.squashfs","fs":"squashfs",)"
      << R"("sha256":")" << std::string(64, 'b') << R"(","size":)" << layer.size() << "}]}";
  return *dir;
}

}  // namespace

TEST_CASE("image store: a build is installed under its name, marked as built, and replaces an older build") {
  Images t;
  bool replaced = true;
  auto first = t.store.install_built("tools", write_build(t.store, "tools", "hsqs one"), &replaced);
  REQUIRE(first.has_value());
  CHECK_FALSE(replaced);
  CHECK(first->layers.at(0).size == 8);
  CHECK(read_image_origin(t.store_dir / "tools").kind == ImageOrigin::Kind::kBuilt);
  CHECK(t.store_entries() == std::vector<std::string>{"tools"});

  auto second = t.store.install_built("tools", write_build(t.store, "tools", "hsqs second"), &replaced);
  REQUIRE(second.has_value());
  CHECK(replaced);
  CHECK(second->layers.at(0).size == 11);
  CHECK(t.store_entries() == std::vector<std::string>{"tools"});  // the older build is gone

  // A daemon's image.delete (an owner) never removes a built image; the administrator does.
  CHECK(t.store.remove("tools", "tok-1").value() == false);
  CHECK(t.store.remove("tools", std::nullopt).value() == true);
  CHECK(t.store_entries().empty());
}

TEST_CASE("image store: a build that is incomplete, misnamed or over a checkpoint is not installed") {
  Images t;
  auto misnamed = t.store.install_built("tools", write_build(t.store, "other", "hsqs"));
  CHECK(misnamed.error() == "the build's manifest.json does not name image 'tools'");
  auto short_layer = write_build(t.store, "tools", "hsqs");
  fs::resize_file(short_layer / "layers" / "base.squashfs", 2);
  auto incomplete = t.store.install_built("tools", short_layer);
  REQUIRE_FALSE(incomplete.has_value());
  CHECK(incomplete.error().find("is 2 bytes, the manifest says") != std::string::npos);
  CHECK(t.store.install_built("../x", write_build(t.store, "../x", "hsqs")).error() == "'../x' is not an image name");
  CHECK(t.store_entries().empty());

  REQUIRE(t.store.commit("mine", t.base, t.incoming("hsqs"), "tok-1").has_value());
  CHECK(read_image_origin(t.store_dir / "mine").kind == ImageOrigin::Kind::kCheckpoint);
  CHECK(read_image_origin(t.store_dir / "mine").owner == "tok-1");
  auto over_checkpoint = t.store.install_built("mine", write_build(t.store, "mine", "hsqs"));
  REQUIRE_FALSE(over_checkpoint.has_value());
  CHECK(over_checkpoint.error().find("is a checkpoint image and is not replaced") != std::string::npos);
  CHECK(t.store_entries() == std::vector<std::string>{"mine"});
  CHECK(read_image_origin(t.store_dir / "mine").kind == ImageOrigin::Kind::kCheckpoint);
}

TEST_CASE("image store: a build abandoned a day ago is swept when the next one begins") {
  Images t;
  auto old_build = t.store.begin_build();
  REQUIRE(old_build.has_value());
  auto recent_build = t.store.begin_build();
  REQUIRE(recent_build.has_value());
  fs::last_write_time(*old_build, fs::file_time_type::clock::now() - std::chrono::hours(25));
  auto next = t.store.begin_build();
  REQUIRE(next.has_value());
  CHECK_FALSE(fs::exists(*old_build));
  CHECK(fs::exists(*recent_build));
  CHECK(t.store_entries().size() == 2);
}
