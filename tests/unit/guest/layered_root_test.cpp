#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "guest/layered_root.hpp"

using namespace sandboxd::guest;

TEST_CASE("layered root: the layer list is bottom first, comments and blank lines skipped") {
  auto layers = parse_layer_list("# bottom first\nbase squashfs\n\r\nnode erofs\r\n  \n");
  REQUIRE(layers.has_value());
  CHECK(*layers == std::vector<LayerSpec>{{"base", "squashfs"}, {"node", "erofs"}});
  auto empty = parse_layer_list("");
  REQUIRE(empty.has_value());
  CHECK(empty->empty());
}

TEST_CASE("layered root: a list that is not ours is refused with the line it broke on") {
  CHECK(parse_layer_list("base\n").error() == "line 1: expected \"name fs\"");
  CHECK(parse_layer_list("base squashfs\n../x squashfs\n").error() == "line 2: layer name is not a plain word");
  CHECK(parse_layer_list("base ext4\n").error() == "line 1: file system must be squashfs or erofs");
  CHECK(parse_layer_list("base squashfs extra\n").error() == "line 1: file system must be squashfs or erofs");
  CHECK(parse_layer_list(" base squashfs\n").error() == "line 1: layer name is not a plain word");
  CHECK(parse_layer_list(std::string(65, 'a') + " erofs\n").error() == "line 1: layer name is not a plain word");
  std::string many;
  for (std::size_t i = 0; i <= kMaxLayers; ++i) many += "l" + std::to_string(i) + " erofs\n";
  CHECK(parse_layer_list(many).error() == "more than 16 layers");
}

TEST_CASE("layered root: overlayfs gets the layers top first") {
  CHECK(overlay_options(1, "/u", "/w") == "lowerdir=/layers/0,upperdir=/u,workdir=/w");
  CHECK(overlay_options(3, "/o/upper", "/o/work") ==
        "lowerdir=/layers/2:/layers/1:/layers/0,upperdir=/o/upper,workdir=/o/work");
}

TEST_CASE("layered root: disks are found by their virtio serial, not their letter") {
  char tmpl[] = "/tmp/sysblock-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::filesystem::path sys(tmpl);
  auto disk = [&](const char* name, const char* serial) {
    std::filesystem::create_directories(sys / name);
    if (serial) std::ofstream(sys / name / "serial") << serial;
  };
  disk("vda", "layer1\n");
  disk("vdb", "layer0");
  disk("vdc", nullptr);      // no serial file
  disk("vdd", "");           // an empty serial
  disk("sda", "layer2\n");   // not virtio-blk
  auto devices = block_devices_by_serial(sys.string());
  CHECK(devices == std::map<std::string, std::string>{{"layer0", "vdb"}, {"layer1", "vda"}});
  CHECK(block_devices_by_serial((sys / "missing").string()).empty());
  std::filesystem::remove_all(sys);
}

TEST_CASE("layered root: sandbox.upper= puts the writable layer on the disk or a tmpfs, nothing else") {
  CHECK(upper_store_from_cmdline("console=ttyS0 quiet panic=-1\n").value() == UpperStore::kTmpfs);
  CHECK(upper_store_from_cmdline("quiet sandbox.upper=disk panic=-1\n").value() == UpperStore::kDisk);
  CHECK(upper_store_from_cmdline("sandbox.upper=disk\n").value() == UpperStore::kDisk);
  CHECK(upper_store_from_cmdline("sandbox.upper=tmpfs").value() == UpperStore::kTmpfs);
  CHECK(upper_store_from_cmdline("xsandbox.upper=disk").value() == UpperStore::kTmpfs);
  CHECK(upper_store_from_cmdline("sandbox.upper=/dev/vda").error() == "sandbox.upper: expected disk or tmpfs, not '/dev/vda'");
  CHECK(upper_store_from_cmdline("sandbox.upper=").error() == "sandbox.upper: expected disk or tmpfs, not ''");
}

TEST_CASE("layered root: the daemon's sandbox.layers= on the kernel command line names the layers") {
  auto named = layers_from_cmdline("console=ttyS0 quiet sandbox.layers=base:squashfs,ck-1:erofs panic=-1\n");
  REQUIRE(named.has_value());
  REQUIRE(named->has_value());
  CHECK(**named == std::vector<LayerSpec>{{"base", "squashfs"}, {"ck-1", "erofs"}});
  auto last = layers_from_cmdline("quiet sandbox.layers=base:squashfs\n");
  REQUIRE((last && *last));
  CHECK(last->value().size() == 1);
  CHECK_FALSE(layers_from_cmdline("console=ttyS0 quiet panic=-1").has_value());
  CHECK_FALSE(layers_from_cmdline("xsandbox.layers=base:squashfs").has_value());
  CHECK(layers_from_cmdline("sandbox.layers=").value().error() == "sandbox.layers: no layers");
  CHECK(layers_from_cmdline("sandbox.layers=base").value().error() == "line 1: expected \"name fs\"");
  CHECK(layers_from_cmdline("sandbox.layers=base:ext4").value().error() ==
        "line 1: file system must be squashfs or erofs");
  CHECK(layers_from_cmdline("sandbox.layers=a:erofs,,b:erofs").value().value().size() == 2);
  CHECK(layers_from_cmdline("sandbox.layers=a:erofs#x").value().error() == "sandbox.layers: not a layer list");
  CHECK(layers_from_cmdline("sandbox.layers=../x:erofs").value().error() == "line 1: layer name is not a plain word");
}
