#include "daemon/api/operations.hpp"

#include <array>
#include <utility>

#include "daemon/api/client_session.hpp"
#include "daemon/api/file_operations.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/api/wire_format.hpp"

namespace sandboxd::api {
namespace json = boost::json;

namespace {

void hello(ClientSession& c, const Request& r) {
  auto version = parse_hello_version(r.members);
  if (!version) return c.fail(r.id, version.error());
  if (*version != kProtocolVersion) {
    ApiError e{ErrorCode::kUnsupportedProtocol, "this server speaks protocol 1", {}};
    e.details["supported"] = json::array{kProtocolVersion};
    return c.fail(r.id, e);
  }
  c.respond(r.id, {{"protocol", kProtocolVersion}});
}

void sandbox_create(ClientSession& c, const Request& r) {
  auto params = parse_create_sandbox(r.members);
  if (!params) return c.fail(r.id, params.error());
  c.begin_pending();
  std::weak_ptr<ClientSession> weak = c.weak_from_this();
  c.service().create(c.owner(), *params,
                     [weak, id = r.id](Expected<session::SandboxService::Created, session::Error> created) {
                       auto self = weak.lock();
                       if (!self) return;
                       self->end_pending();
                       if (!created) return self->fail(id, created.error());
                       self->respond(id, {{"sandbox", to_json(created->sandbox->info())}, {"existing", created->existing}});
                     });
}

void sandbox_list(ClientSession& c, const Request& r) {
  auto filter = parse_label_filter(r.members);
  if (!filter) return c.fail(r.id, filter.error());
  json::array list;
  for (const auto& s : c.service().list(c.owner(), *filter)) list.push_back(to_json(s->info()));
  c.respond(r.id, {{"sandboxes", std::move(list)}});
}

void sandbox_get(ClientSession& c, const Request& r) {
  auto sandbox_id = parse_sandbox_id(r.members);
  if (!sandbox_id) return c.fail(r.id, sandbox_id.error());
  c.begin_pending();
  std::weak_ptr<ClientSession> weak = c.weak_from_this();
  c.service().describe(c.owner(), *sandbox_id, [weak, id = r.id](Expected<session::SandboxInfo, session::Error> info) {
    auto self = weak.lock();
    if (!self) return;
    self->end_pending();
    if (!info) return self->fail(id, info.error());
    self->respond(id, {{"sandbox", to_json(*info)}});
  });
}

void sandbox_set_network(ClientSession& c, const Request& r) {
  auto sandbox_id = parse_sandbox_id(r.members);
  if (!sandbox_id) return c.fail(r.id, sandbox_id.error());
  auto choice = parse_network_choice(r.members);
  if (!choice) return c.fail(r.id, choice.error());
  if (!*choice) return c.fail(r.id, ApiError::bad_request("network", "give \"network\" (rules) or \"egress\""));
  auto sandbox = c.service().set_network(c.owner(), *sandbox_id, std::move(**choice));
  if (!sandbox) return c.fail(r.id, sandbox.error());
  c.respond(r.id, {{"sandbox", to_json((*sandbox)->info())}});
}

void sandbox_destroy(ClientSession& c, const Request& r) {
  auto sandbox_id = parse_sandbox_id(r.members);
  if (!sandbox_id) return c.fail(r.id, sandbox_id.error());
  c.begin_pending();
  std::weak_ptr<ClientSession> weak = c.weak_from_this();
  c.service().destroy(c.owner(), *sandbox_id,
                      [weak, id = r.id](Expected<std::shared_ptr<session::Sandbox>, session::Error> destroyed) {
                        auto self = weak.lock();
                        if (!self) return;
                        self->end_pending();
                        if (!destroyed) return self->fail(id, destroyed.error());
                        self->respond(id, {{"sandbox", to_json((*destroyed)->info())}});
                      });
}

json::object image_json(const vm::GuestImage& image) {
  json::array layers;
  std::uint64_t size = 0;
  for (const auto& layer : image.layers) {
    layers.push_back(json::object{{"name", layer.name}, {"fs", layer.fs}, {"size", layer.size}, {"sha256", layer.sha256}});
    size += layer.size;
  }
  return {{"name", image.name}, {"layers", std::move(layers)}, {"layers_size", size}};
}

void sandbox_checkpoint(ClientSession& c, const Request& r) {
  auto sandbox_id = parse_sandbox_id(r.members);
  if (!sandbox_id) return c.fail(r.id, sandbox_id.error());
  auto name = parse_image_name(r.members);
  if (!name) return c.fail(r.id, name.error());
  c.begin_pending();
  std::weak_ptr<ClientSession> weak = c.weak_from_this();
  c.service().checkpoint(c.owner(), *sandbox_id, *name,
                         [weak, id = r.id](Expected<vm::GuestImage, session::Error> image) {
                           auto self = weak.lock();
                           if (!self) return;
                           self->end_pending();
                           if (!image) return self->fail(id, image.error());
                           self->respond(id, {{"image", image_json(*image)}});
                         });
}

void image_delete(ClientSession& c, const Request& r) {
  auto name = parse_image_name(r.members);
  if (!name) return c.fail(r.id, name.error());
  c.begin_pending();
  std::weak_ptr<ClientSession> weak = c.weak_from_this();
  c.service().delete_image(c.owner(), *name, [weak, id = r.id](Expected<void, session::Error> removed) {
    auto self = weak.lock();
    if (!self) return;
    self->end_pending();
    if (!removed) return self->fail(id, removed.error());
    self->respond(id, {});
  });
}

void sandbox_subscribe(ClientSession& c, const Request& r) {
  auto sandbox_id = parse_sandbox_id(r.members);
  if (!sandbox_id) return c.fail(r.id, sandbox_id.error());
  auto s = c.service().get(c.owner(), *sandbox_id);
  if (!s) return c.fail(r.id, s.error());
  c.subscribed(*s);
  c.respond(r.id, {});
}

void sandbox_unsubscribe(ClientSession& c, const Request& r) {
  auto sandbox_id = parse_sandbox_id(r.members);
  if (!sandbox_id) return c.fail(r.id, sandbox_id.error());
  auto s = c.service().find(c.owner(), *sandbox_id);
  if (!s) return c.fail(r.id, s.error());
  c.unsubscribed(*sandbox_id);
  c.respond(r.id, {});
}

void exec_start(ClientSession& c, const Request& r) {
  auto params = parse_exec_start(r.members);
  if (!params) return c.fail(r.id, params.error());
  auto started = c.starting_exec([&] { return c.service().start_exec(c.owner(), std::move(*params)); });
  if (!started) return c.fail(r.id, started.error());
  auto exec = started->exec;
  // The response goes out before the exec's first entries: attach after it.
  c.respond(r.id, {{"exec", to_json(exec->info())}, {"existing", started->existing}});
  if (!started->existing) {
    c.attached(exec);
    (void)exec->attach(c.shared_from_this(), 0, false);
  }
}

void exec_attach(ClientSession& c, const Request& r) {
  auto params = parse_attach(r.members);
  if (!params) return c.fail(r.id, params.error());
  auto exec = c.service().find_exec(c.owner(), params->exec_id);
  if (!exec) return c.fail(r.id, exec.error());
  // Check first, answer, then replay: the replay must follow the response.
  if (params->after_seq + 1 < (*exec)->first_seq()) {
    auto refused = (*exec)->attach(c.shared_from_this(), params->after_seq, params->read_only);
    return c.fail(r.id, refused.error());
  }
  c.respond(r.id, {{"exec", to_json((*exec)->info())}});
  c.attached(*exec);
  (void)(*exec)->attach(c.shared_from_this(), params->after_seq, params->read_only);
}

void exec_detach(ClientSession& c, const Request& r) {
  auto exec_id = parse_exec_id(r.members);
  if (!exec_id) return c.fail(r.id, exec_id.error());
  auto exec = c.service().find_exec(c.owner(), *exec_id);
  if (!exec) return c.fail(r.id, exec.error());
  (*exec)->detach(&c);
  c.detached(*exec_id);
  c.respond(r.id, {});
}

void exec_get(ClientSession& c, const Request& r) {
  auto exec_id = parse_exec_id(r.members);
  if (!exec_id) return c.fail(r.id, exec_id.error());
  auto exec = c.service().find_exec(c.owner(), *exec_id);
  if (!exec) return c.fail(r.id, exec.error());
  c.respond(r.id, {{"exec", to_json((*exec)->info())}});
}

void exec_list(ClientSession& c, const Request& r) {
  auto sandbox = parse_optional_sandbox_id(r.members);
  if (!sandbox) return c.fail(r.id, sandbox.error());
  json::array list;
  for (const auto& e : c.service().list_execs(c.owner(), *sandbox)) list.push_back(to_json(e->info()));
  c.respond(r.id, {{"execs", std::move(list)}});
}

// The controls share their checks, in the documented order: not_found,
// read_only (any connection of the owner may control an exec, except one
// attached to it read-only), then the control's own (not_running first).
template <class Control>
void exec_control(ClientSession& c, const Request& r, Control control) {
  auto exec_id = parse_exec_id(r.members);
  if (!exec_id) return c.fail(r.id, exec_id.error());
  auto exec = c.service().find_exec(c.owner(), *exec_id);
  if (!exec) return c.fail(r.id, exec.error());
  auto& e = **exec;
  if (e.is_attached(&c)) {
    if (auto ok = e.check_control(&c); !ok) return c.fail(r.id, ok.error());
  }
  Expected<void, ApiError> done = control(e);
  if (!done) return c.fail(r.id, done.error());
  c.respond(r.id, {});
}

Expected<void, ApiError> domain(Expected<void, session::Error> r) {
  if (!r) return Unexpected{ApiError::from_domain(r.error())};
  return {};
}

void exec_resize(ClientSession& c, const Request& r) {
  exec_control(c, r, [&](session::Exec& e) -> Expected<void, ApiError> {
    auto p = parse_resize(r.members);
    if (!p) return Unexpected{p.error()};
    return domain(e.resize(p->cols, p->rows));
  });
}

void exec_signal(ClientSession& c, const Request& r) {
  exec_control(c, r, [&](session::Exec& e) -> Expected<void, ApiError> {
    auto p = parse_signal(r.members);
    if (!p) return Unexpected{p.error()};
    return domain(e.signal(p->signo));
  });
}

void exec_kill(ClientSession& c, const Request& r) {
  exec_control(c, r, [](session::Exec& e) { return domain(e.kill()); });
}

void exec_close_stdin(ClientSession& c, const Request& r) {
  exec_control(c, r, [](session::Exec& e) { return domain(e.write_stdin({}, true)); });
}

constexpr std::array<std::pair<std::string_view, Operation>, 28> kOperations{{
    {"hello", hello},
    {"sandbox.create", sandbox_create},
    {"sandbox.list", sandbox_list},
    {"sandbox.get", sandbox_get},
    {"sandbox.destroy", sandbox_destroy},
    {"sandbox.set_network", sandbox_set_network},
    {"sandbox.subscribe", sandbox_subscribe},
    {"sandbox.unsubscribe", sandbox_unsubscribe},
    {"sandbox.checkpoint", sandbox_checkpoint},
    {"image.delete", image_delete},
    {"exec.start", exec_start},
    {"exec.attach", exec_attach},
    {"exec.detach", exec_detach},
    {"exec.get", exec_get},
    {"exec.list", exec_list},
    {"exec.resize", exec_resize},
    {"exec.signal", exec_signal},
    {"exec.kill", exec_kill},
    {"exec.close_stdin", exec_close_stdin},
    {"file.stat", file_stat},
    {"file.list", file_list},
    {"file.mkdir", file_mkdir},
    {"file.remove", file_remove},
    {"file.rename", file_rename},
    {"file.chmod", file_chmod},
    {"file.read", file_read},
    {"file.write", file_write},
    {"file.cancel", file_cancel},
}};

}  // namespace

Operation find_operation(std::string_view op) {
  for (const auto& [name, fn] : kOperations) {
    if (name == op) return fn;
  }
  return nullptr;
}

}  // namespace sandboxd::api
