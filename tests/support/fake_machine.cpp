#include "fake_machine.hpp"

#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <charconv>
#include <stdexcept>

namespace sandboxd::testing {
namespace asio = boost::asio;
using namespace sandboxd::protocol;

FakeGuest::FakeGuest(asio::io_context& io, int fd)
    : channel_(std::make_shared<agent::AgentChannel>(agent::AgentChannel::Socket(io, asio::local::stream_protocol(), fd))) {}

void FakeGuest::start() {
  std::weak_ptr<FakeGuest> weak = weak_from_this();
  channel_->start({
      .on_message = [weak](Message&& m) { if (auto self = weak.lock()) self->on_message(std::move(m)); },
      .on_frame_error = [](const FrameError&) {},
      .on_closed = [](const boost::system::error_code&) {},
  });
  channel_->send(Hello{"fake-guest", {}});
}

void FakeGuest::close() { channel_->close(); }

void FakeGuest::on_message(Message&& m) {
  if (auto* start = std::get_if<ExecStart>(&m)) return exec_start(*start);
  if (auto* sig = std::get_if<Signal>(&m)) {
    signals.push_back(*sig);
    if (running_.contains(sig->id)) exit(sig->id, ExitKind::kSignaled, sig->signo);
    return;
  }
  if (auto* in = std::get_if<Stdin>(&m)) {
    stdin_seen[in->id] += std::string(as_chars(in->data));
    auto it = running_.find(in->id);
    if (it == running_.end()) return;
    if (!in->data.empty()) channel_->send(StdinAck{in->id, static_cast<std::uint32_t>(in->data.size())});
    if (it->second.name == "cat") {
      if (!in->data.empty()) {
        it->second.unacked += static_cast<std::uint32_t>(in->data.size());
        channel_->send(Output{in->id, Stream::kStdout, in->data});
      }
      if (in->eof) exit(in->id, ExitKind::kExited, 0);
    }
    return;
  }
  if (auto* ack = std::get_if<OutputAck>(&m)) {
    auto it = running_.find(ack->id);
    if (it == running_.end()) return;
    it->second.unacked -= std::min(it->second.unacked, ack->bytes);
    if (it->second.name == "emit") emit_more(ack->id);
    return;
  }
  if (auto* ping = std::get_if<Ping>(&m)) channel_->send(Pong{ping->token});
}

void FakeGuest::exec_start(const ExecStart& start) {
  starts.push_back(start);
  const std::string& name = start.argv.empty() ? std::string() : start.argv[0];
  if (name == "mute") return;
  if (name == "missing") {
    channel_->send(Exit{start.id, ExitKind::kStartFailed, 127, 0, 0, 0, "missing: not found"});
    return;
  }
  std::uint32_t pid = next_pid_++;
  channel_->send(ExecStarted{start.id, pid});
  Program& p = running_[start.id];
  p.name = name;
  if (name == "echo") {
    std::string line;
    for (std::size_t i = 1; i < start.argv.size(); ++i) line += (i > 1 ? " " : "") + start.argv[i];
    line += "\n";
    channel_->send(Output{start.id, Stream::kStdout, Bytes(as_bytes(line).begin(), as_bytes(line).end())});
    exit(start.id, ExitKind::kExited, 0);
  } else if (name == "exit") {
    int status = start.argv.size() > 1 ? std::stoi(start.argv[1]) : 0;
    exit(start.id, ExitKind::kExited, status);
  } else if (name == "emit") {
    p.to_emit = start.argv.size() > 1 ? std::stoull(start.argv[1]) : 0;
    emit_more(start.id);
  } else if (name != "cat" && name != "sleep") {
    throw std::logic_error("the fake guest has no program '" + name + "'");
  }
}

void FakeGuest::emit_more(std::uint32_t id) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  Program& p = it->second;
  constexpr std::uint32_t kChunk = 64 * 1024;
  while (p.to_emit > 0 && p.unacked + kChunk <= kOutputWindow) {
    auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kChunk, p.to_emit));
    channel_->send(Output{id, Stream::kStdout, Bytes(n, std::byte{'x'})});
    p.unacked += n;
    p.to_emit -= n;
  }
  if (p.to_emit == 0) exit(id, ExitKind::kExited, 0);
}

void FakeGuest::exit(std::uint32_t id, ExitKind kind, std::int32_t status) {
  running_.erase(id);
  channel_->send(Exit{id, kind, status, 0, 0, 0, ""});
}

FakeMachine::FakeMachine(asio::io_context& io, std::shared_ptr<MachineLedger> ledger)
    : io_(io), ledger_(std::move(ledger)) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
  guest_ = std::make_shared<FakeGuest>(io, fds[1]);
  guest_->start();
  auto channel = std::make_shared<agent::AgentChannel>(agent::AgentChannel::Socket(io, asio::local::stream_protocol(), fds[0]));
  agent_ = std::make_shared<agent::GuestAgent>(channel);
  agent_->start({.on_hello = [](const Hello&) {}, .on_closed = [](const std::string&) {},
                 .on_protocol_problem = [](const std::string&) {}});
  ++ledger_->created;
  ++ledger_->live;
}

FakeMachine::~FakeMachine() {
  guest_->close();
  --ledger_->live;
}

void FakeMachine::stop(std::function<void()> gone) {
  if (!stopped_) ++ledger_->stopped;
  stopped_ = true;
  exit_handler_ = nullptr;
  guest_->close();
  asio::post(io_, [gone = std::move(gone)] {
    if (gone) gone();
  });
}

void FakeMachine::crash(std::string report) {
  guest_->close();
  if (auto h = std::move(exit_handler_)) {
    asio::post(io_, [h = std::move(h), report = std::move(report)] { h({vm::MachineExit::Kind::kQemuExited, report}); });
  }
}

void FakeFactory::create(const vm::MachineShape& shape, Created done) {
  asked.push_back(shape);
  if (hold) {
    held_.push_back(std::move(done));
    return;
  }
  deliver(std::move(done));
}

void FakeFactory::release_held() {
  hold = false;
  auto held = std::move(held_);
  for (auto& done : held) deliver(std::move(done));
}

void FakeFactory::deliver(Created done) {
  if (!failing.empty()) {
    asio::post(io_, [done = std::move(done), message = failing] { done(Unexpected{message}); });
    return;
  }
  auto machine = std::make_unique<FakeMachine>(io_, ledger);
  handed_out.push_back(machine.get());
  asio::post(io_, [done = std::move(done), machine = std::move(machine)]() mutable {
    done(vm::MachinePtr(std::move(machine)));
  });
}

void FakePool::acquire(const vm::MachineShape& shape, Acquired done) {
  if (stopped) {
    done(Unexpected{std::string("the pool is stopped")}, false);
    return;
  }
  factory_.create(shape, [done = std::move(done)](Expected<vm::MachinePtr, std::string> machine) {
    done(std::move(machine), false);
  });
}

void FakePool::stop(std::function<void()> done) {
  stopped = true;
  done();
}

}  // namespace sandboxd::testing
