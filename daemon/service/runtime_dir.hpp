// What every sandbox holds on the host, written down before it is used, so a
// daemon that died in any way leaves nothing behind once it starts again.
//
// A QEMU process normally dies with the daemon (PR_SET_PDEATHSIG), but not
// when the daemon is restarted under a supervisor that keeps orphans, when
// the thread that spawned QEMU was not the one that died, or when sockets and
// temporary files outlive both. So each sandbox has a record on disk:
//
//   <root>/daemon.lock                 flock'ed by the running daemon
//   <root>/daemon.pid                  its pid, for the error a second daemon gets
//   <root>/endpoints.json              where the running daemon listens, once it does
//   <root>/sandboxes/<id>/record.json  the QEMU pid and start time, the owner,
//                                      the files made elsewhere
//   <root>/sandboxes/<id>/...          files the sandbox keeps in its own dir
//
// A record is replaced in one step (temporary file, fsync, rename, fsync of
// the directory), so after a crash it is either the old or the new one. At
// start-up reconcile() kills the processes of the records left behind and
// removes their files. A process is identified by its pid together with its
// start time in clock ticks since boot and the boot's id, so a pid the kernel
// has since given to another process is never killed.
//
// record() and forget() may be called from several threads at once for
// different sandboxes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::service {

// [a-z0-9-]{1,64}: the id becomes a directory name, so nothing that could
// climb out of sandboxes/ or hide (a leading dot) gets through.
bool is_valid_sandbox_id(std::string_view id);

struct SandboxRecord {
  std::string sandbox_id;
  int qemu_pid = 0;                          // 0: no process (yet)
  std::uint64_t qemu_start_ticks = 0;        // field 22 of /proc/<pid>/stat
  std::string owner;                         // a label of the owning token, never the token itself
  std::vector<std::filesystem::path> files;  // absolute paths made outside sandbox_dir(); removed on reconcile
};

struct ReconcileReport {
  std::vector<std::string> sandboxes;  // ids of the records found
  unsigned processes_killed = 0;       // SIGKILLs sent
  // Files the records listed, and anything else left in sandboxes/ (files in
  // a sandbox's own dir, temporary files of interrupted writes, dirs without
  // a record); the records themselves are not counted.
  unsigned files_removed = 0;
  std::vector<std::string> problems;  // what could not be cleaned up, or records that could not be read
  // One line for the log.
  std::string summary() const;
};

class RuntimeDir {
 public:
  // Creates `root` (mode 0700) and root/sandboxes, takes an exclusive flock
  // on root/daemon.lock, held for the object's life, and writes
  // root/daemon.pid. Refuses a root that another user owns or that group or
  // other may write (whoever can write there chooses what reconcile kills and
  // deletes), and a root another daemon holds: "another sandboxd-host is
  // running (pid N)".
  static Expected<std::unique_ptr<RuntimeDir>, std::string> open(const std::filesystem::path& root);

  ~RuntimeDir();  // releases the lock and removes daemon.pid
  RuntimeDir(const RuntimeDir&) = delete;
  RuntimeDir& operator=(const RuntimeDir&) = delete;

  // For every record left in sandboxes/: SIGKILLs its QEMU when that process
  // still runs (same pid, boot and start time), waits up to 5 s for it to be
  // gone, then removes the files it listed, its dir, and anything else found
  // in sandboxes/. A record that cannot be read is a problem and its dir is
  // removed; a process that does not die keeps its record for the next start.
  // Call once, right after open().
  ReconcileReport reconcile();

  // Durably writes root/sandboxes/<id>/record.json, replacing an earlier one.
  // Called once QEMU is spawned and before it is used, and again whenever the
  // sandbox makes a file outside its dir.
  Expected<void, std::string> record(const SandboxRecord& record);

  // Removes the files the record listed, the sandbox's dir, and the record,
  // in that order (a crash in between leaves a record of what is left). Call
  // once the sandbox's process is gone.
  void forget(const std::string& sandbox_id);

  // Durably writes root/endpoints.json (where the daemon listens, for
  // clients and tests that started it on port 0); removed with the object.
  Expected<void, std::string> publish_endpoints(std::string_view json);

  // root/sandboxes/<id>: where the sandbox may keep its own files; they are
  // removed with it. Not created here. Empty for an invalid id.
  std::filesystem::path sandbox_dir(const std::string& sandbox_id) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  RuntimeDir(std::filesystem::path root, int lock_fd);

  std::filesystem::path root_;
  int lock_fd_;
};

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 when
// there is no such process.
std::uint64_t process_start_ticks(int pid);

// /run/sandboxd as root, else $XDG_RUNTIME_DIR/sandboxd, else /tmp/sandboxd-<uid>.
std::filesystem::path default_runtime_dir();

}  // namespace sandboxd::service
