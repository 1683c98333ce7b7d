#include "daemon/service/runtime_records.hpp"

namespace sandboxd::service {

void RuntimeRecords::record(std::string id, int pid, std::function<void(Expected<void, std::string>)> done) {
  blocking_.run(
      [&dir = dir_, id = std::move(id), pid] {
        SandboxRecord record;
        record.sandbox_id = id;
        record.qemu_pid = pid;
        record.qemu_start_ticks = process_start_ticks(pid);
        return dir.record(record);
      },
      std::move(done));
}

void RuntimeRecords::forget(std::string id, std::function<void()> done) {
  blocking_.run([&dir = dir_, id = std::move(id)] { dir.forget(id); }, std::move(done));
}

}  // namespace sandboxd::service
