#include "clients/sandboxctl/connection_target.hpp"

#include <boost/json/serialize.hpp>

namespace sandboxd::ctl {

std::string connect_failure_text(const ConnectError& error, const Target& target) {
  std::string where = target.url.display();
  switch (error.kind) {
    case ConnectError::Kind::kUnauthorized: {
      std::string text = "sandboxctl: the daemon refused the token (HTTP 401)\n";
      if (target.token.empty()) {
        text += "sandboxctl: no token was found; give --token or --token-file, set SANDBOXD_TOKEN or "
                "SANDBOXD_TOKEN_FILE, or add token_file to the config file\n";
      } else {
        text += "sandboxctl: the token came from " + target.token_source + "\n";
      }
      return text;
    }
    case ConnectError::Kind::kHttp:
      return "sandboxctl: " + where + " answered " + error.message + " instead of upgrading to a WebSocket\n";
    case ConnectError::Kind::kProtocol:
      return "sandboxctl: " + where + ": " + error.message + "\n";
    case ConnectError::Kind::kNetwork:
      break;
  }
  return "sandboxctl: cannot connect to " + where + ": " + error.message + "\n";
}

std::string request_failure_text(const RequestError& error, const Target& target, const std::string& context) {
  if (target.json && !error.connection_lost) return boost::json::serialize(error.error) + "\n";
  std::string text = "sandboxctl: ";
  if (!context.empty()) text += context + ": ";
  text += error.message.empty() ? std::string("the daemon answered an error") : error.message;
  if (!error.code.empty()) text += " (" + error.code + ")";
  return text + "\n";
}

}  // namespace sandboxd::ctl
