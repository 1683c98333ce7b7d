#include "clients/sandboxctl/commands.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>

#include "clients/sandboxctl/control_connection.hpp"
#include "clients/sandboxctl/json_access.hpp"
#include "clients/sandboxctl/key_values.hpp"
#include "clients/sandboxctl/sandbox_table.hpp"

namespace sandboxd::ctl {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;

// Several destroys at once (each waits for its VM to go), well below the
// daemon's max_pending_requests.
constexpr std::size_t kParallelDestroys = 8;

using Finish = std::function<void(int status)>;
using Work = std::function<void(ControlConnection& connection, Finish finish)>;

// Connects, runs `work`, and returns the status it finishes with; a lost
// connection before that is a connection failure (2). These commands are
// not resumed: a create repeated after a lost answer would make a second
// sandbox.
int with_connection(const Target& target, const Work& work) {
  asio::io_context io;
  int status = kExitUsage;
  bool finished = false;
  std::shared_ptr<ControlConnection> connection;
  Finish finish = [&](int s) {
    if (finished) return;
    finished = true;
    status = s;
    connection->close();
  };
  ControlConnection::Handlers handlers;
  handlers.on_lost = [&](const std::string& why) {
    if (finished) return;
    std::cerr << "sandboxctl: lost the connection to the daemon: " << why << "\n";
    finish(kExitUsage);
  };
  connection = ControlConnection::create(io, std::move(handlers));
  connection->connect(target.url, target.token, [&](Expected<void, ConnectError> result) {
    if (!result) {
      std::cerr << connect_failure_text(result.error(), target);
      finished = true;
      status = kExitUsage;
      return;
    }
    work(*connection, finish);
  });
  io.run();
  return status;
}

void print_json(const json::value& value) { std::cout << json::serialize(value) << "\n"; }

}  // namespace

// A network policy file as the JSON value to send; the daemon checks its
// rules, this only that it is JSON of a sane size.
Expected<json::value, std::string> read_policy_file(const std::string& path) {
  constexpr std::size_t kMaxPolicyBytes = 1 << 20;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unexpected{"cannot read " + path + ": " + std::strerror(errno)};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > kMaxPolicyBytes) return Unexpected{path + " is larger than 1 MiB"};
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec) return Unexpected{path + " is not JSON: " + ec.message()};
  return value;
}

// The request's "egress" (a mode) or "network" (a policy file's JSON);
// false, with the reason on stderr, when the file cannot be used.
bool add_network(json::object& req, const std::optional<std::string>& egress,
                 const std::optional<std::string>& policy_file) {
  if (egress) req["egress"] = *egress;
  if (!policy_file) return true;
  auto policy = read_policy_file(*policy_file);
  if (!policy) {
    std::cerr << "sandboxctl: --policy: " << policy.error() << "\n";
    return false;
  }
  req["network"] = std::move(*policy);
  return true;
}

// Sends `req`, whose answer holds a Sandbox object, and prints its id (or,
// with --json, the object).
int request_sandbox(const Target& target, json::object req) {
  return with_connection(target, [&](ControlConnection& connection, Finish finish) {
    connection.request(std::move(req), [&target, finish](Expected<json::object, RequestError> answer) {
      if (!answer) {
        std::cerr << request_failure_text(answer.error(), target);
        return finish(answer.error().connection_lost ? kExitUsage : kExitServerError);
      }
      const auto* sandbox = object_member(*answer, "sandbox");
      if (sandbox == nullptr) {
        std::cerr << "sandboxctl: the daemon's answer holds no sandbox\n";
        return finish(kExitServerError);
      }
      if (target.json) {
        print_json(*sandbox);
      } else {
        std::cout << string_member(*sandbox, "id").value_or("?") << "\n";
      }
      finish(0);
    });
  });
}

int create_command(const Target& target, const CreateOptions& options) {
  auto labels = parse_key_values(options.labels, "--label");
  auto env = parse_key_values(options.env, "--env");
  if (!labels || !env) {
    std::cerr << "sandboxctl: " << (labels ? env.error() : labels.error()) << "\n";
    return kExitUsage;
  }
  // Only what the user gave: the daemon's own defaults apply to the rest.
  json::object req{{"op", "sandbox.create"}};
  if (options.image) req["image"] = *options.image;
  if (options.cpus) req["cpus"] = *options.cpus;
  if (options.memory_mib) req["memory_mib"] = *options.memory_mib;
  if (options.disk_mib) req["disk_mib"] = *options.disk_mib;
  if (options.disk_backing) req["disk_backing"] = *options.disk_backing;
  if (!labels->empty()) req["labels"] = std::move(*labels);
  if (!env->empty()) req["env"] = std::move(*env);
  if (options.lifetime_s) req["lifetime_s"] = *options.lifetime_s;
  if (options.idle_timeout_s) req["idle_timeout_s"] = *options.idle_timeout_s;
  if (!add_network(req, options.egress, options.policy_file)) return kExitUsage;
  return request_sandbox(target, std::move(req));
}

int set_network_command(const Target& target, const NetworkOptions& options) {
  json::object req{{"op", "sandbox.set_network"}, {"sandbox", options.sandbox}};
  if (!add_network(req, options.egress, options.policy_file)) return kExitUsage;
  return request_sandbox(target, std::move(req));
}

int list_command(const Target& target, const std::vector<std::string>& labels) {
  auto filter = parse_key_values(labels, "--label");
  if (!filter) {
    std::cerr << "sandboxctl: " << filter.error() << "\n";
    return kExitUsage;
  }
  json::object req{{"op", "sandbox.list"}};
  if (!filter->empty()) req["labels"] = std::move(*filter);

  return with_connection(target, [&](ControlConnection& connection, Finish finish) {
    connection.request(std::move(req), [&target, finish](Expected<json::object, RequestError> answer) {
      if (!answer) {
        std::cerr << request_failure_text(answer.error(), target);
        return finish(answer.error().connection_lost ? kExitUsage : kExitServerError);
      }
      const auto* sandboxes = array_member(*answer, "sandboxes");
      json::array empty;
      if (sandboxes == nullptr) sandboxes = &empty;
      if (target.json) {
        print_json(*sandboxes);
      } else {
        auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        std::cout << format_sandbox_table(*sandboxes, now);
      }
      finish(0);
    });
  });
}

int remove_command(const Target& target, const std::vector<std::string>& sandboxes) {
  struct Outcome {
    std::optional<json::object> sandbox;
    std::optional<RequestError> error;
  };
  std::vector<Outcome> outcomes(sandboxes.size());
  std::size_t next = 0;
  std::size_t outstanding = 0;
  bool connected = false;
  ControlConnection* connection = nullptr;
  Finish finish;

  // Keeps kParallelDestroys requests in flight until all were answered.
  std::function<void()> pump = [&] {
    while (outstanding < kParallelDestroys && next < sandboxes.size()) {
      std::size_t index = next++;
      ++outstanding;
      json::object req{{"op", "sandbox.destroy"}, {"sandbox", sandboxes[index]}};
      connection->request(std::move(req), [&, index](Expected<json::object, RequestError> answer) {
        --outstanding;
        if (answer) {
          const auto* sandbox = object_member(*answer, "sandbox");
          outcomes[index].sandbox = sandbox ? *sandbox : json::object();
        } else {
          outcomes[index].error = answer.error();
        }
        pump();
      });
    }
    if (outstanding == 0) finish(0);
  };

  int status = with_connection(target, [&](ControlConnection& c, Finish f) {
    connected = true;
    connection = &c;
    finish = std::move(f);
    pump();
  });
  if (!connected) return status;

  bool any_failed = false;
  bool lost = status != 0;
  json::array report;
  for (std::size_t i = 0; i < sandboxes.size(); ++i) {
    const auto& outcome = outcomes[i];
    if (outcome.sandbox) {
      if (target.json) {
        report.push_back(json::object{{"id", sandboxes[i]}, {"destroyed", true}, {"sandbox", *outcome.sandbox}});
      } else {
        std::cout << sandboxes[i] << "\n";
      }
      continue;
    }
    any_failed = true;
    bool answered = outcome.error && !outcome.error->connection_lost;
    if (!answered) lost = true;
    if (target.json) {
      json::object error{{"code", answered ? outcome.error->code : std::string("connection_lost")},
                         {"message", answered ? outcome.error->message : std::string("no answer from the daemon")}};
      report.push_back(json::object{{"id", sandboxes[i]}, {"destroyed", false}, {"error", std::move(error)}});
    } else if (answered) {
      std::cerr << request_failure_text(*outcome.error, target, sandboxes[i]);
    } else {
      std::cerr << "sandboxctl: " << sandboxes[i] << ": no answer from the daemon\n";
    }
  }
  if (target.json) print_json(report);
  if (lost) return kExitUsage;
  return any_failed ? kExitServerError : 0;
}

}  // namespace sandboxd::ctl
