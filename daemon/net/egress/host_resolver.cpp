#include "daemon/net/egress/host_resolver.hpp"

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>

namespace sandboxd::net {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

class AsioHostResolver final : public HostResolver {
 public:
  explicit AsioHostResolver(asio::any_io_executor executor) : resolver_(std::move(executor)) {}

  void resolve(std::string name, Callback done) override {
    // The completion owns the callback; asio keeps the operation (and so the
    // callback) alive after this resolver is destroyed, and delivers it.
    resolver_.async_resolve(
        asio::ip::tcp::v4(), name, "",
        [done = std::move(done)](const error_code& ec, const asio::ip::tcp::resolver::results_type& results) {
          done(lookup_of(ec, results));
        });
  }

  void cancel() override { resolver_.cancel(); }

 private:
  static HostLookup lookup_of(const error_code& ec, const asio::ip::tcp::resolver::results_type& results) {
    HostLookup lookup;
    if (ec == asio::error::host_not_found) {
      lookup.outcome = HostLookup::Outcome::kNoSuchName;
      return lookup;
    }
    if (ec && ec != asio::error::no_data) return lookup;  // kFailed
    lookup.outcome = HostLookup::Outcome::kFound;
    for (const auto& entry : results) {
      auto a = entry.endpoint().address();
      if (!a.is_v4()) continue;
      auto ip = wire::Ipv4Address::from_u32(a.to_v4().to_uint());
      if (std::find(lookup.addresses.begin(), lookup.addresses.end(), ip) == lookup.addresses.end())
        lookup.addresses.push_back(ip);
    }
    return lookup;
  }

  asio::ip::tcp::resolver resolver_;
};

}  // namespace

std::shared_ptr<HostResolver> make_host_resolver(asio::any_io_executor executor) {
  return std::make_shared<AsioHostResolver>(std::move(executor));
}

}  // namespace sandboxd::net
