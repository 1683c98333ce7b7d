// The file operations of the control plane (WS_PROTOCOL.md, "Files"), one
// function each, listed in operations.cpp's table beside the others.
#pragma once

#include "daemon/api/operations.hpp"

namespace sandboxd::api {

void file_stat(ClientSession& c, const Request& r);
void file_list(ClientSession& c, const Request& r);
void file_mkdir(ClientSession& c, const Request& r);
void file_remove(ClientSession& c, const Request& r);
void file_rename(ClientSession& c, const Request& r);
void file_chmod(ClientSession& c, const Request& r);
void file_read(ClientSession& c, const Request& r);
void file_write(ClientSession& c, const Request& r);
void file_cancel(ClientSession& c, const Request& r);

}  // namespace sandboxd::api
