// `sandboxd-host run` as a user runs it: real QEMU, real guest, real agent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <thread>

#include "subprocess.hpp"

using namespace sandboxd::testing;

namespace {

std::string host_binary() {
  const char* p = std::getenv("SANDBOXD_HOST");
  REQUIRE(p != nullptr);
  return p;
}

// In the initramfs image: these cases are about `run` itself, and it boots quickest.
ProcessResult run_in_sandbox(std::vector<std::string> command, const std::string& stdin_data = "",
                             std::vector<std::string> options = {}) {
  std::vector<std::string> argv = {host_binary(), "run", "--image", "mini"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  auto r = run_process(argv, stdin_data, std::chrono::seconds(180));
  INFO("stderr: " << r.err);
  REQUIRE_FALSE(r.timed_out);
  return r;
}

// A one-request HTTP server on 127.0.0.1 (an ephemeral port), answering `body`
// to whoever connects first, on its own thread; gives up after `patience`.
class OneShotHttpServer {
 public:
  OneShotHttpServer(std::string body, std::chrono::seconds patience) : body_(std::move(body)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(listener_, 1) == 0);
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, patience] { serve(patience); });
  }
  ~OneShotHttpServer() {
    thread_.join();
    ::close(listener_);
  }
  unsigned port() const { return port_; }
  const std::string& request() const { return request_; }  // read after the server is gone

 private:
  void serve(std::chrono::seconds patience) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(patience.count() * 1000)) != 1) return;
    int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[4096];
    while (request_.find("\r\n\r\n") == std::string::npos) {
      pollfd q{c, POLLIN, 0};
      if (::poll(&q, 1, 10000) != 1) break;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      request_.append(buf, static_cast<std::size_t>(n));
    }
    std::string response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_;
    (void)::write(c, response.data(), response.size());
    ::close(c);
  }

  std::string body_;
  int listener_ = -1;
  unsigned port_ = 0;
  std::string request_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("run: echo prints its argument and exits 0") {
  auto r = run_in_sandbox({"echo", "hello"});
  CHECK(r.out == "hello\n");
  CHECK(r.exit_code == 0);
}

TEST_CASE("run: the command's exit status becomes ours") {
  auto r = run_in_sandbox({"sh", "-c", "exit 7"});
  CHECK(r.exit_code == 7);
  CHECK(r.out.empty());
}

TEST_CASE("run: with no --image the sandbox is Debian, its root an overlay of the image's layers") {
  auto r = run_process({host_binary(), "run", "-u", "sandbox", "--", "sh", "-c",
                        "grep ^VERSION_CODENAME= /etc/os-release; stat -f -c %T /; id -un; cd && pwd"},
                       "", std::chrono::seconds(180));
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "VERSION_CODENAME=bookworm\noverlayfs\nsandbox\n/home/sandbox\n");
}

TEST_CASE("run: ls / lists the guest's root, not the host's") {
  auto r = run_in_sandbox({"ls", "/"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("proc\n") != std::string::npos);
  CHECK(r.out.find("init\n") != std::string::npos);  // the agent, as the guest's /init
  CHECK(r.out.find("work\n") == std::string::npos);  // the host's /work is not there
}

TEST_CASE("run: stdin reaches the command") {
  auto r = run_in_sandbox({"cat"}, "abc\n");
  CHECK(r.out == "abc\n");
  CHECK(r.exit_code == 0);
}

TEST_CASE("run: stdout and stderr stay apart") {
  auto r = run_in_sandbox({"sh", "-c", "echo to-out; echo to-err >&2"});
  CHECK(r.out == "to-out\n");
  CHECK(r.err.find("to-err\n") != std::string::npos);
}

TEST_CASE("run: a missing command exits 127 with a message") {
  auto r = run_in_sandbox({"no-such-command-here"});
  CHECK(r.exit_code == 127);
  CHECK(r.err.find("no-such-command-here") != std::string::npos);
  CHECK(r.err.find("No such file or directory") != std::string::npos);
}

TEST_CASE("run: a command killed by a signal exits 128+signal") {
  auto r = run_in_sandbox({"sh", "-c", "kill -TERM $$"});
  CHECK(r.exit_code == 128 + SIGTERM);
}

TEST_CASE("run: environment and working directory are applied") {
  auto r = run_in_sandbox({"sh", "-c", "echo $GREETING; pwd"}, "", {"-e", "GREETING=hi there", "-w", "/tmp"});
  CHECK(r.out == "hi there\n/tmp\n");
}

TEST_CASE("run: 100 MB of stdout arrive intact") {
  // The guest writes random bytes to a file, reports their checksum on stderr,
  // then streams the file: the checksum of what arrived must match.
  auto r = run_in_sandbox(
      {"sh", "-c", "head -c 100000000 /dev/urandom > /tmp/data && sha256sum /tmp/data >&2 && cat /tmp/data"}, "",
      {"--memory", "512"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.size() == 100000000u);
  std::string guest_sum = r.err.substr(0, 64);
  CHECK(sha256_hex(r.out) == guest_sum);
}

TEST_CASE("run: 20 MB of stdin arrive intact") {
  std::string data(20 * 1000 * 1000, '\0');
  unsigned x = 12345;
  for (auto& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  auto r = run_in_sandbox({"sh", "-c", "sha256sum | cut -c1-64"}, data);
  CHECK(r.exit_code == 0);
  CHECK(r.out == sha256_hex(data) + "\n");
}

TEST_CASE("run: SIGKILL of sandboxd-host leaves no QEMU behind") {
  pid_t host = start_process({host_binary(), "run", "--", "sleep", "100"});
  // Wait for its QEMU child to appear.
  std::vector<pid_t> qemu;
  for (int i = 0; i < 200 && qemu.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    qemu.clear();
    for (pid_t child : children_of(host))
      for (pid_t q : processes_named("qemu-system-x86"))
        if (q == child) qemu.push_back(q);
  }
  REQUIRE(qemu.size() == 1);
  pid_t qemu_pid = qemu[0];
  ::kill(host, SIGKILL);
  int status;
  ::waitpid(host, &status, 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !is_running(qemu_pid);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(gone);
}

TEST_CASE("run: --net slirp gets a DHCP lease and reaches a host server through 10.0.2.2") {
  ProcessResult r;
  {
    OneShotHttpServer server("served by the host\n", std::chrono::seconds(150));
    r = run_in_sandbox({"sh", "-c",
                        "ip -4 addr show dev eth0; ip route; cat /etc/resolv.conf; "
                        "wget -q -O- http://10.0.2.2:" + std::to_string(server.port()) + "/page"},
                       "", {"--net", "slirp"});
  }
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("inet 10.0.2.15/24") != std::string::npos);
  CHECK(r.out.find("default via 10.0.2.2") != std::string::npos);
  CHECK(r.out.find("nameserver 10.0.2.3") != std::string::npos);
  CHECK(r.out.find("served by the host\n") != std::string::npos);
}

TEST_CASE("run: --net none gives the guest no eth0, only lo (and lo is up)") {
  auto r = run_in_sandbox({"sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"},
                          "", {"--net", "none"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("eth0") == std::string::npos);
  CHECK(r.out.rfind("lo\n", 0) == 0);
  CHECK(r.out.find("0x9\n") != std::string::npos);  // IFF_UP | IFF_LOOPBACK
}

TEST_CASE("run: bad --net and --mtu values are refused with exit 125") {
  for (auto options : std::vector<std::vector<std::string>>{{"--net", "tap"}, {"--mtu", "575"}, {"--mtu", "65521"}}) {
    auto r = run_in_sandbox({"true"}, "", options);
    CHECK(r.exit_code == 125);
    CHECK_FALSE(r.err.empty());
  }
}
