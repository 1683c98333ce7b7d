// The guest's end of the host-controlled mounts: a FUSE file system server
// that decides nothing itself. It mounts what the host asks for on the
// "sandbox.fs" port (protocol/fs_messages.hpp) and turns every request the
// kernel makes of those mounts into a Request frame, answering the kernel
// when the host's Reply comes back. It answers on its own only what cannot
// go on the wire (a name longer than the protocol allows, a change to a
// read-only mount) and forgets, which have no answer.
//
// It runs as its own process, forked by PID 1 (guest/main.cpp) and forked
// again when it dies, so that a fault in libfuse or here cannot take the
// agent's exec service down with it, and so that the kernel's FUSE
// connections close (every mount fails with ENOTCONN) when it goes.
//
// One thread and one epoll set: the port and each mount's /dev/fuse fd,
// all non-blocking, with libfuse's low-level API used only to decode one
// kernel request at a time (fuse_session_receive_buf / process_buf) and to
// encode the answers. It keeps no file system state: only which kernel
// request waits for which `unique`.
//
// Bounds, because the kernel queues what is not read: at most
// fs::kMaxInFlight requests are outstanding to the host, and nothing more is
// read from the mounts while that many wait or while more than
// kOutboundCap bytes are queued for the port; the kernel holds the rest.
//
// When the host goes away (end of stream or an error on the port) every
// mount is unmounted, its waiting requests fail with EIO and Ready is sent
// again once the host is back: a host that reconnects starts from nothing,
// as protocol/fs_messages.hpp's Ready says. A frame that does not decode is
// logged and dropped; a frame length the protocol cannot have means the
// stream is out of step, which in the guest ends the process (the agent
// starts a new one) and under test ends run_fs_bridge.
//
// Not done here: extended attributes, locks beyond the guest kernel's own,
// ioctl, poll, bmap, fsyncdir, copy_file_range and lseek (libfuse answers
// ENOSYS and the kernel falls back where it can); timeouts on the host's
// answers; telling the host that the guest unmounted a mount itself.
#pragma once

#include <cstddef>

namespace sandboxd::guest {

enum class FsBridgeMode {
  kInit,     // in the guest: the host may come back, so a lost port is retried
  kServeFd,  // a host process under test: end of stream is the end
};

// Above this much queued for the host, no kernel request is read.
inline constexpr std::size_t kFsOutboundCap = 4u << 20;

// Serves the mounts protocol on `port_fd` (made non-blocking; closed at the
// end). Returns only under kServeFd, once the port has reached its end and
// every mount is unmounted.
void run_fs_bridge(int port_fd, FsBridgeMode mode);

}  // namespace sandboxd::guest
