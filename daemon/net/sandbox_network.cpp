#include "daemon/net/sandbox_network.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace sandboxd::net {
namespace asio = boost::asio;
using boost::system::error_code;

std::shared_ptr<SandboxNetwork> SandboxNetwork::start(Socket link, const StackConfig& config, EgressPolicy policy,
                                                      std::shared_ptr<HostResolver> resolver) {
  if (!resolver) resolver = make_host_resolver(link.get_executor());
  std::shared_ptr<SandboxNetwork> network(
      new SandboxNetwork(std::move(link), config, std::move(policy), std::move(resolver)));
  network->read_link();
  return network;
}

SandboxNetwork::SandboxNetwork(Socket link, const StackConfig& config, EgressPolicy policy,
                               std::shared_ptr<HostResolver> resolver)
    : link_(std::move(link)),
      stack_(config),
      egress_(link_.get_executor(), stack_, std::move(policy), [this] { kick(); }, std::move(resolver)),
      timer_(link_.get_executor()),
      read_buffer_(kReadChunk) {}

SandboxNetwork::~SandboxNetwork() { stop(); }

void SandboxNetwork::stop() {
  if (stopped_) return;
  stopped_ = true;
  egress_.stop();
  timer_.cancel();
  error_code ignored;
  link_.close(ignored);
}

void SandboxNetwork::read_link() {
  if (stopped_ || reading_) return;
  if (writing_.size() + pending_write_.size() > kMaxPendingWrite) return;  // write_link resumes reading
  reading_ = true;
  auto self = shared_from_this();
  link_.async_read_some(asio::buffer(read_buffer_), [self](const error_code& ec, std::size_t n) {
    self->reading_ = false;
    if (self->stopped_) return;
    if (ec) {
      if (ec != asio::error::eof)
        spdlog::warn("{}: guest link read failed: {}", self->egress_.log_name(), ec.message());
      self->stop();
      return;
    }
    Instant now = Clock::now();
    self->decoder_.feed(ByteSpan(self->read_buffer_).first(n),
                        [&](ByteSpan frame) { self->stack_.receive_frame(frame, now); });
    self->process();
    self->read_link();
  });
}

void SandboxNetwork::kick() {
  if (process_posted_ || stopped_) return;
  process_posted_ = true;
  auto self = shared_from_this();
  asio::post(link_.get_executor(), [self] {
    self->process_posted_ = false;
    self->process();
  });
}

void SandboxNetwork::process() {
  if (stopped_) return;
  // Events lead to calls on the stack, whose poll leads to more events
  // (readable, writable, closed); go on until the stack is quiet. Each round
  // handles what the previous one produced, so this ends.
  bool quiet = false;
  for (int round = 0; round < 64 && !quiet; ++round) {
    stack_.poll(Clock::now());
    auto events = stack_.take_events();
    quiet = events.empty();
    for (StackEvent& event : events) egress_.handle(event);
  }
  if (!quiet) kick();  // a very busy round: let other work run first
  write_link();
  arm_timer();
}

void SandboxNetwork::write_link() {
  if (stopped_) return;
  if (!stack_.outbound().empty()) {
    Bytes framed = stack_.outbound().take();
    if (pending_write_.empty()) pending_write_ = std::move(framed);
    else pending_write_.insert(pending_write_.end(), framed.begin(), framed.end());
  }
  if (!writing_.empty() || pending_write_.empty()) return;
  writing_.swap(pending_write_);
  auto self = shared_from_this();
  asio::async_write(link_, asio::buffer(writing_), [self](const error_code& ec, std::size_t) {
    self->writing_.clear();
    if (self->stopped_) return;
    if (ec) {
      spdlog::warn("{}: guest link write failed: {}", self->egress_.log_name(), ec.message());
      self->stop();
      return;
    }
    self->write_link();
    self->read_link();
  });
}

void SandboxNetwork::arm_timer() {
  auto deadline = stack_.next_deadline();
  if (deadline == timer_at_) return;
  timer_at_ = deadline;
  if (!deadline) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(*deadline);
  auto self = shared_from_this();
  timer_.async_wait([self, at = *deadline](const error_code& ec) {
    if (ec || self->stopped_ || self->timer_at_ != at) return;
    self->timer_at_.reset();
    self->process();
  });
}

std::string SandboxNetwork::stats_text() const {
  std::string out = stack_.counters().to_text();
  out += egress_.counters().to_text();
  out += "oversized frames skipped: " + std::to_string(decoder_.oversized_frames()) + "\n";
  return out;
}

}  // namespace sandboxd::net
