// The runtime dir's records (runtime_dir.hpp) written and removed on the
// blocking worker, so that their fsyncs never stall the event loop. The
// worker takes work in order, so a record's removal always follows its
// writing. Completions come back on the loop.
#pragma once

#include <functional>
#include <string>

#include "daemon/service/blocking_work.hpp"
#include "daemon/service/runtime_dir.hpp"

namespace sandboxd::service {

class RuntimeRecords {
 public:
  // Both must outlive this object; the worker is joined before `dir` goes.
  RuntimeRecords(RuntimeDir& dir, BlockingWork& blocking) : dir_(dir), blocking_(blocking) {}

  // Records QEMU `pid` (its start time is read on the worker) as `id`.
  void record(std::string id, int pid, std::function<void(Expected<void, std::string>)> done);
  void forget(std::string id, std::function<void()> done);

 private:
  RuntimeDir& dir_;
  BlockingWork& blocking_;
};

}  // namespace sandboxd::service
