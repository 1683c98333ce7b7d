#include <catch2/catch.hpp>

#include "guest/kernel_modules.hpp"
#include "guest/path_lookup.hpp"

using namespace sandboxd::guest;

TEST_CASE("kernel modules: names are normalised from file paths") {
  CHECK(module_name_of("/lib/modules/6.1/kernel/drivers/virtio/virtio_mmio.ko") == "virtio_mmio");
  CHECK(module_name_of("net-failover.ko") == "net_failover");
}

TEST_CASE("kernel modules: parameters are picked from the command line for their module only") {
  std::string cmdline = "console=ttyS0 virtio_mmio.device=512@0xfeb00e00:12 virtio-mmio.device=512@0xfeb00c00:11 "
                        "quiet fuse.max_user_bgreq=3 x.y panic=-1\n";
  CHECK(module_params_from_cmdline(cmdline, "virtio_mmio") == "device=512@0xfeb00e00:12 device=512@0xfeb00c00:11");
  CHECK(module_params_from_cmdline(cmdline, "fuse") == "max_user_bgreq=3");
  CHECK(module_params_from_cmdline(cmdline, "virtio_net").empty());
  CHECK(module_params_from_cmdline("a=b.c", "a").empty());  // '=' before '.' is not a module parameter
}

TEST_CASE("kernel modules: sandbox.modules= names the optional modules, each once") {
  using V = std::vector<std::string>;
  CHECK(requested_modules_from_cmdline("console=ttyS0 quiet panic=-1\n").empty());
  CHECK(requested_modules_from_cmdline("quiet sandbox.modules=9p,9pnet-virtio\n") == V{"9p", "9pnet_virtio"});
  CHECK(requested_modules_from_cmdline("sandbox.modules=virtiofs,,9p sandbox.modules=9p,x") == V{"virtiofs", "9p", "x"});
  CHECK(requested_modules_from_cmdline("sandbox.modules= xsandbox.modules=9p sandbox.modulesx=9p").empty());
}

TEST_CASE("kernel modules: an optional module comes with what it needs, in the list's order") {
  using V = std::vector<std::string>;
  const std::string list =
      "/m/net/9p/9pnet.ko\n"
      "/m/net/9p/9pnet_virtio.ko 9pnet\n"
      "# a comment\n"
      "\n"
      "/m/fs/netfs/netfs.ko\n"
      "/m/fs/9p/9p.ko netfs 9pnet\n"
      "/m/fs/fuse/virtiofs.ko\n";
  auto nine = optional_modules_to_load(list, {"9p", "9pnet-virtio"});
  CHECK(nine.paths == V{"/m/net/9p/9pnet.ko", "/m/net/9p/9pnet_virtio.ko", "/m/fs/netfs/netfs.ko", "/m/fs/9p/9p.ko"});
  CHECK(nine.unknown.empty());
  auto fs = optional_modules_to_load(list, {"virtiofs", "nfs"});
  CHECK(fs.paths == V{"/m/fs/fuse/virtiofs.ko"});
  CHECK(fs.unknown == V{"nfs"});
  // A need the list does not have was loaded at boot; no list at all knows nothing.
  CHECK(optional_modules_to_load("/m/a.ko fuse\n", {"a"}).paths == V{"/m/a.ko"});
  CHECK(optional_modules_to_load("", {"9p"}).unknown == V{"9p"});
}

TEST_CASE("path lookup: PATH comes from the exec's environment") {
  CHECK(path_of({"HOME=/root", "PATH=/x:/y"}) == "/x:/y");
  CHECK(path_of({"HOME=/root"}) == kDefaultPath);
  CHECK(find_executable("sh", "/nonexistent:/bin").path == "/bin/sh");
  auto missing = find_executable("no-such-program-anywhere", "/bin:/usr/bin");
  CHECK(missing.path.empty());
  CHECK(missing.error == ENOENT);
  CHECK(find_executable("./relative", "/bin").path == "./relative");
}
