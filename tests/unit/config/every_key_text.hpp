// A config text that sets every key, each to a value other than its default,
// for the tests that must see every setting read.
#pragma once

#include <string_view>

namespace sandboxd::config::test {

inline constexpr std::string_view kEveryKeyText = R"(
listen = [::1]:8080
socket_path = /run/sbx/api.sock
runtime_dir = /run/sbx
token_file = /etc/sandboxd/token
image_store = /srv/sandboxd/images
disk_dir = /srv/sandboxd/disks
token = 0123456789abcdef0123
allowed_origins = https://app.example.com, http://localhost:3000
allowed_host_roots = /srv//agents/, /data/shared
image = python-3.11
pool_size = 0
default_cpus = 2
default_memory_mib = 512
max_cpus = 8
max_memory_mib = 8192
default_file_disk_mib = 1024
max_disk_mib = 2048
max_sandboxes_per_token = 100
max_frame_bytes = 4M
max_pending_requests = 128
exec_log_bytes = 32M
exec_retention_s = 15m
max_retained_execs = 50
default_lifetime_s = 2h
default_idle_timeout_s = 0
accelerator = tcg
network = slirp
egress = allow-all
network_policy = /etc/sandboxd/policy.json
host_aliases = files.internal=127.0.0.1, db.internal=10.1.2.3
log_level = debug
)";

}  // namespace sandboxd::config::test
