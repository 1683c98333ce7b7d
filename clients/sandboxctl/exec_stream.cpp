#include "clients/sandboxctl/exec_stream.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

#include "clients/sandboxctl/json_access.hpp"

namespace sandboxd::ctl {

namespace {
constexpr int kNoStatus = 255;
constexpr std::int64_t kSigKill = 9;
}  // namespace

ExecExit exit_from_json(const boost::json::object& exit) {
  ExecExit out;
  out.reason = string_member(exit, "reason").value_or("");
  out.exit_code = int_member(exit, "exit_code");
  out.signal = int_member(exit, "signal");
  out.message = string_member(exit, "message").value_or("");
  return out;
}

int exit_status(const ExecExit& exit) {
  auto by_signal = [&](std::optional<std::int64_t> fallback) {
    auto signal = exit.signal ? exit.signal : fallback;
    if (!signal || *signal < 1 || *signal > 127) return kNoStatus;
    return static_cast<int>(128 + *signal);
  };
  if (exit.reason == "exited") {
    if (!exit.exit_code || *exit.exit_code < 0 || *exit.exit_code > 255) return kNoStatus;
    return static_cast<int>(*exit.exit_code);
  }
  if (exit.reason == "start_failed") {
    if (exit.exit_code && *exit.exit_code >= 0 && *exit.exit_code <= 255) return static_cast<int>(*exit.exit_code);
    return 127;
  }
  if (exit.reason == "signaled") return by_signal(std::nullopt);
  // A timed-out or killed exec got SIGKILL even if the event leaves it out.
  if (exit.reason == "timeout" || exit.reason == "killed") return by_signal(kSigKill);
  return by_signal(std::nullopt);
}

std::string exit_notice(const ExecExit& exit, std::optional<std::int64_t> timeout_ms) {
  auto with_message = [&](std::string text) {
    if (!exit.message.empty()) text += ": " + exit.message;
    return text;
  };
  if (exit.reason == "start_failed")
    return exit.message.empty() ? "the command could not be started" : exit.message;
  if (exit.reason == "timeout") {
    std::string text = "the command timed out";
    if (timeout_ms) text += " after " + std::to_string(*timeout_ms) + " ms";
    return with_message(text);
  }
  // The daemon's message for a destroyed sandbox already says so.
  if (exit.reason == "sandbox_destroyed") return exit.message.empty() ? "the sandbox was destroyed" : exit.message;
  if (exit.reason == "sandbox_crashed")
    return exit.message.empty() ? "the sandbox crashed" : with_message("the sandbox crashed");
  if (exit.reason == "exited" || exit.reason == "signaled" || exit.reason == "killed") return {};
  return with_message("the exec ended (" + (exit.reason.empty() ? std::string("no reason given") : exit.reason) + ")");
}

ExecProgress::ExecProgress(std::string exec_id, std::uint64_t after_seq)
    : exec_id_(std::move(exec_id)), last_seq_(after_seq) {}

bool ExecProgress::advance(std::uint64_t seq) {
  if (seq <= last_seq_ || finished()) return false;
  last_seq_ = seq;
  return true;
}

bool ExecProgress::take_output(std::string_view exec, std::uint64_t seq) {
  return exec == exec_id_ && advance(seq);
}

ExecProgress::Event ExecProgress::take_event(const boost::json::object& event) {
  auto name = string_member(event, "event");
  if (!name || string_member(event, "exec") != exec_id_) return Event::kIgnored;
  auto seq = int_member(event, "seq");
  if (!seq || *seq < 0) return Event::kIgnored;
  if (*name == "exec.started") return advance(static_cast<std::uint64_t>(*seq)) ? Event::kStarted : Event::kIgnored;
  if (*name == "exec.timed_out") {
    if (!advance(static_cast<std::uint64_t>(*seq))) return Event::kIgnored;
    timeout_ms_ = int_member(event, "timeout_ms");
    return Event::kTimedOut;
  }
  if (*name == "exec.exit") {
    if (!advance(static_cast<std::uint64_t>(*seq))) return Event::kIgnored;
    exit_ = exit_from_json(event);
    exit_event_ = event;
    return Event::kExit;
  }
  return Event::kIgnored;
}

void ExecProgress::skip_before(std::uint64_t first_seq) {
  if (first_seq > 0 && first_seq - 1 > last_seq_) last_seq_ = first_seq - 1;
}

ReconnectBackoff::ReconnectBackoff(Duration budget, Duration first, Duration longest)
    : budget_(budget), first_(first), longest_(longest), current_(first) {}

std::optional<ReconnectBackoff::Duration> ReconnectBackoff::next(Duration elapsed) {
  if (elapsed >= budget_) return std::nullopt;
  Duration wait = std::min(current_, budget_ - elapsed);
  current_ = std::min(current_ * 2, longest_);
  return wait;
}

void ReconnectBackoff::reset() { current_ = first_; }

std::string generate_exec_id() {
  std::random_device random;
  std::uint64_t bits = (static_cast<std::uint64_t>(random()) << 32) ^ random();
  char text[24];
  std::snprintf(text, sizeof text, "ctl-%016llx", static_cast<unsigned long long>(bits));
  return text;
}

}  // namespace sandboxd::ctl
