#include "daemon/vm/qemu_machine_factory.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/writable_disk.hpp"

namespace sandboxd::vm {

namespace {
// The mounts port is the first (and only) extra port of a factory's machine.
constexpr const char* kFsPortName = "sandbox.fs";
constexpr std::size_t kFsPortIndex = 0;
}  // namespace

// One machine on its way up: what the spawn made, kept until both the boot
// and the record's writing have finished.
struct QemuMachineFactory::Boot {
  std::string record_id;
  std::shared_ptr<net::SandboxNetwork> network;
  unsigned records_pending = 0;
  std::optional<Expected<std::shared_ptr<Vm>, BootError>> outcome;
  MachineFactory::Created done;
};

QemuMachineFactory::QemuMachineFactory(boost::asio::io_context& io, VmLauncher& launcher, QemuMachineSettings settings,
                                       std::shared_ptr<service::RuntimeRecords> records)
    : io_(io), launcher_(launcher), settings_(std::move(settings)), records_(std::move(records)) {}

void QemuMachineFactory::when_none_live(std::function<void()> done) {
  if (count_->live == 0) return done();
  count_->when_none.push_back(std::move(done));
}

void QemuMachineFactory::create(const MachineShape& shape, Created done) {
  auto image = find_guest_image(shape.image, settings_.image_roots);
  if (!image) {
    boost::asio::post(io_, [done = std::move(done), message = image.error()] { done(Unexpected{message}); });
    return;
  }
  VmSpec spec;
  spec.image = *image;
  spec.qemu_binary = settings_.qemu_binary;
  spec.cpus = shape.cpus;
  spec.memory_mib = shape.memory_mib;
  spec.tsc_khz = settings_.tsc_khz;
  spec.network = settings_.network;
  spec.mtu = settings_.stack.mtu;
  spec.extra_ports.push_back(std::string(kFsPortName));

  auto boot = std::make_shared<Boot>();
  boot->record_id = "vm-" + std::to_string(::getpid()) + "-" + std::to_string(next_serial_++);
  boot->done = std::move(done);
  if (shape.disk_file_mib == 0) return launch(std::move(spec), std::move(boot));

  if (image->layers.empty()) {
    boost::asio::post(io_, [boot, name = image->name] {
      boot->done(Unexpected{"image '" + name + "' has no writable layer to put on a disk (it is not layered)"});
    });
    return;
  }
  if (settings_.disk_dir.empty()) {
    boost::asio::post(io_, [boot] { boot->done(Unexpected{std::string("no disk directory is configured")}); });
    return;
  }
  boost::asio::post(workers_, [this, alive = alive_, executor = io_.get_executor(), dir = settings_.disk_dir,
                               mib = shape.disk_file_mib, spec = std::move(spec), boot]() mutable {
    auto disk = WritableDisk::make(dir, mib);
    boost::asio::post(executor, [this, alive, disk = std::move(disk), spec = std::move(spec), boot]() mutable {
      if (!*alive) return;
      if (!disk) return boot->done(Unexpected{"the writable layer's disk: " + disk.error()});
      spec.writable_disk = std::move(*disk);
      launch(std::move(spec), std::move(boot));
    });
  });
}

void QemuMachineFactory::launch(VmSpec spec, std::shared_ptr<Boot> boot) {

  // Hands the machine out once the boot is over and its record is on disk;
  // a failed boot leaves nothing behind.
  auto finish = [records = records_, count = count_, executor = io_.get_executor(),
                 workers = workers_.get_executor()](const std::shared_ptr<Boot>& b) {
    if (!b->outcome || b->records_pending > 0) return;
    auto report = std::move(b->done);
    if (!report) return;
    auto& outcome = *b->outcome;
    if (!outcome) {
      if (b->network) b->network->stop();
      if (records) records->forget(b->record_id, [] {});
      return report(Unexpected{outcome.error().message});
    }
    auto vm = std::move(*outcome);
    b->outcome.reset();
    auto mounts = vfs::FsServer::start(std::move(vm->extra_port(kFsPortIndex)), workers);
    report(MachinePtr(std::make_unique<QemuMachine>(executor, std::move(vm), std::move(b->network), std::move(mounts),
                                                    b->record_id, records, count)));
  };

  // Once per boot attempt (a retried boot is a new QEMU with a fresh link).
  // The VM keeps its spec, and with it this handler: it holds the boot
  // weakly, or the two would keep each other alive.
  spec.on_spawned = [records = records_, stack = settings_.stack, policy = settings_.waiting_policy,
                     weak_boot = std::weak_ptr<Boot>(boot), finish](Vm& vm) {
    auto booting = weak_boot.lock();
    if (!booting) return;
    if (records) {
      ++booting->records_pending;
      records->record(booting->record_id, vm.process().pid(), [booting, finish](Expected<void, std::string> written) {
        if (!written) spdlog::warn("runtime record {}: {}", booting->record_id, written.error());
        --booting->records_pending;
        finish(booting);
      });
    }
    if (vm.spec().network != NetworkMode::kStack) return;
    if (booting->network) booting->network->stop();
    booting->network = net::SandboxNetwork::start(std::move(vm.network_link()), stack, policy);
  };
  launcher_.launch(spec, [boot, finish](Expected<std::shared_ptr<Vm>, BootError> r) {
    boot->outcome = std::move(r);
    finish(boot);
  });
}

}  // namespace sandboxd::vm
