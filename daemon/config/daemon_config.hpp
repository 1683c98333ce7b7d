// The daemon's whole configuration: each component's own settings struct,
// composed, so that `serve` hands every component its part as it is
// (config.service to the sandbox service, config.pool to the pool, ...) and
// no value is copied from one struct to another on the way.
//
// A default-constructed DaemonConfig is the daemon's defaults; the setting
// table (setting_table.hpp) reads them off it for the reference and --help,
// so a default is written once, in the component's header. Which key sets
// which member, its range and its doc line are the table's; the text of a
// config file becomes a DaemonConfig in config_file.hpp; the reference of
// every key is daemon/config/README.md.
#pragma once

#include "daemon/api/connection_config.hpp"
#include "daemon/config/host_settings.hpp"
#include "daemon/session/service_config.hpp"
#include "daemon/vm/machine_config.hpp"
#include "daemon/vm/pool_config.hpp"

namespace sandboxd::config {

struct DaemonConfig {
  ListenConfig listen;
  AccessConfig access;
  RuntimeConfig runtime;
  session::ServiceConfig service;
  api::ConnectionConfig connection;
  vm::PoolConfig pool;
  vm::MachineConfig machine;
  NetworkSettings network;
  LoggingConfig log;

  friend bool operator==(const DaemonConfig&, const DaemonConfig&) = default;
};

}  // namespace sandboxd::config
