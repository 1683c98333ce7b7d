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

TEST_CASE("path lookup: PATH comes from the exec's environment") {
  CHECK(path_of({"HOME=/root", "PATH=/x:/y"}) == "/x:/y");
  CHECK(path_of({"HOME=/root"}) == kDefaultPath);
  CHECK(find_executable("sh", "/nonexistent:/bin").path == "/bin/sh");
  auto missing = find_executable("no-such-program-anywhere", "/bin:/usr/bin");
  CHECK(missing.path.empty());
  CHECK(missing.error == ENOENT);
  CHECK(find_executable("./relative", "/bin").path == "./relative");
}
