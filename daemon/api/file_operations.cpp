#include "daemon/api/file_operations.hpp"

#include "daemon/api/client_session.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/api/wire_format.hpp"

namespace sandboxd::api {
namespace json = boost::json;

namespace {

// Every metadata operation: one exec of the guest's file tool, answered when
// it ends (it counts as pending meanwhile).
void metadata_op(ClientSession& c, const Request& r, session::FileOpKind kind) {
  auto request = parse_file_op(r.members, kind);
  if (!request) return c.fail(r.id, request.error());
  c.begin_pending();
  std::weak_ptr<ClientSession> weak = c.weak_from_this();
  c.service().file_op(c.owner(), request->sandbox, request->params,
                      [weak, id = r.id, kind](Expected<session::FileOpResult, session::Error> result) {
                        auto self = weak.lock();
                        if (!self) return;
                        self->end_pending();
                        if (!result) return self->fail(id, result.error());
                        if (kind == session::FileOpKind::kStat)
                          return self->respond(id, {{"entry", to_json(result->entries.front())}});
                        if (kind == session::FileOpKind::kList) {
                          json::array entries;
                          for (const auto& e : result->entries) entries.push_back(to_json(e));
                          return self->respond(id, {{"entries", std::move(entries)}, {"truncated", result->truncated}});
                        }
                        self->respond(id, {});
                      });
}

}  // namespace

void file_stat(ClientSession& c, const Request& r) { metadata_op(c, r, session::FileOpKind::kStat); }
void file_list(ClientSession& c, const Request& r) { metadata_op(c, r, session::FileOpKind::kList); }
void file_mkdir(ClientSession& c, const Request& r) { metadata_op(c, r, session::FileOpKind::kMkdir); }
void file_remove(ClientSession& c, const Request& r) { metadata_op(c, r, session::FileOpKind::kRemove); }
void file_rename(ClientSession& c, const Request& r) { metadata_op(c, r, session::FileOpKind::kRename); }
void file_chmod(ClientSession& c, const Request& r) { metadata_op(c, r, session::FileOpKind::kChmod); }

void file_read(ClientSession& c, const Request& r) {
  auto request = parse_file_read(r.members);
  if (!request) return c.fail(r.id, request.error());
  c.transfers().start_read(c, r.id, std::move(*request));
}

void file_write(ClientSession& c, const Request& r) {
  auto request = parse_file_write(r.members);
  if (!request) return c.fail(r.id, request.error());
  c.transfers().start_write(c, r.id, std::move(*request));
}

void file_cancel(ClientSession& c, const Request& r) {
  auto transfer = parse_transfer_id(r.members);
  if (!transfer) return c.fail(r.id, transfer.error());
  c.transfers().cancel(c, r.id, *transfer);
}

}  // namespace sandboxd::api
