// The pool's inventory over a fake machine factory: warm machines, refills,
// waiters, failures and stop.
#include <catch2/catch.hpp>

#include "daemon/vm/vm_pool.hpp"
#include "fake_machine.hpp"

using namespace sandboxd;
using namespace sandboxd::vm;
using namespace sandboxd::testing;

namespace {

const MachineShape kShape{"default", 1, 256};

struct PoolWorld {
  boost::asio::io_context io;
  FakeFactory factory{io};
  VmPool pool;
  explicit PoolWorld(PoolConfig config = {2, 2}) : pool(io, factory, config) {}
  bool run(const std::function<bool()>& done) { return run_until(io, done); }

  struct Got {
    bool answered = false;
    bool from_pool = false;
    MachinePtr machine;
    std::string error;
  };
  std::shared_ptr<Got> acquire(const MachineShape& shape = kShape) {
    auto got = std::make_shared<Got>();
    pool.acquire(shape, [got](Expected<MachinePtr, std::string> m, bool from_pool) {
      got->answered = true;
      got->from_pool = from_pool;
      if (m) got->machine = std::move(*m);
      else got->error = m.error();
    });
    return got;
  }
};

}  // namespace

TEST_CASE("pool: keeps warm_per_shape machines ready and refills after an acquire") {
  PoolWorld w;
  w.pool.keep_warm(kShape);
  REQUIRE(w.run([&] { return w.pool.ready(kShape) == 2; }));
  auto got = w.acquire();
  REQUIRE(got->answered);  // at once, from inventory
  CHECK(got->from_pool);
  CHECK(got->machine);
  REQUIRE(w.run([&] { return w.pool.ready(kShape) == 2; }));
  CHECK(w.factory.asked.size() == 3);
}

TEST_CASE("pool: an acquire that finds nothing ready gets a boot of its own at once, whatever the refill budget") {
  PoolWorld w({0, 1});
  w.factory.hold = true;
  auto a = w.acquire();
  auto b = w.acquire();
  auto c = w.acquire({"default", 2, 512});
  CHECK(w.factory.held() == 3);  // max_parallel_refills bounds refills only
  w.factory.release_held();
  REQUIRE(w.run([&] { return a->answered && b->answered && c->answered; }));
  CHECK_FALSE(a->from_pool);
  CHECK(a->machine);
  CHECK(c->machine);
  CHECK(w.factory.asked.back() == MachineShape{"default", 2, 512});
}

TEST_CASE("pool: background refills share max_parallel_refills") {
  PoolWorld w({4, 1});
  w.factory.hold = true;
  w.pool.keep_warm(kShape);
  CHECK(w.factory.held() == 1);
  CHECK(w.pool.booting() == 1);
  w.factory.release_held();
  w.factory.hold = true;
  REQUIRE(w.run([&] { return w.pool.ready(kShape) == 1; }));
  CHECK(w.factory.held() == 1);  // the next refill, and only one
}

TEST_CASE("pool: a ready machine that ends while it waits is dropped and replaced") {
  PoolWorld w({1, 2});
  w.pool.keep_warm(kShape);
  REQUIRE(w.run([&] { return w.pool.ready(kShape) == 1; }));
  FakeMachine* first = w.factory.handed_out.back();
  first->crash("QEMU exit status 1");
  REQUIRE(w.run([&] { return w.factory.ledger->created == 2 && w.pool.ready(kShape) == 1; }));
  REQUIRE(w.run([&] { return w.factory.ledger->live == 1; }));
  FakeMachine* replacement = w.factory.handed_out.back();
  CHECK(replacement != first);
  auto got = w.acquire();
  CHECK(got->machine.get() == replacement);
}

TEST_CASE("pool: repeated boot failures fail the waiters and pause refills") {
  PoolWorld w({2, 2});
  w.factory.failing = "no such image";
  auto got = w.acquire();
  w.pool.keep_warm(kShape);
  REQUIRE(w.run([&] { return got->answered; }));
  CHECK(got->error == "no such image");
  REQUIRE(w.run([&] { return w.pool.boot_failures() >= VmPool::kFailuresBeforePause && w.pool.booting() == 0; }));
  auto asked = w.factory.asked.size();
  run_until(w.io, [] { return false; }, std::chrono::milliseconds(100));
  CHECK(w.factory.asked.size() == asked);  // paused, not looping on a broken image
}

TEST_CASE("pool: stop fails waiters, stops ready machines, and is done once every machine is gone, booting ones too") {
  PoolWorld w({1, 2});
  w.pool.keep_warm(kShape);
  REQUIRE(w.run([&] { return w.pool.ready(kShape) == 1; }));
  w.factory.hold = true;
  auto first = w.acquire();   // the ready one
  auto waiting = w.acquire(); // waits for a boot
  bool done = false;
  w.pool.stop([&] { done = true; });
  CHECK(waiting->answered);
  CHECK_FALSE(waiting->error.empty());
  CHECK_FALSE(done);  // machines are still booting
  w.factory.release_held();
  REQUIRE(w.run([&] { return done; }));
  first->machine.reset();
  CHECK(w.factory.ledger->live == 0);
  auto late = w.acquire();
  CHECK(late->answered);
  CHECK_FALSE(late->error.empty());
}
