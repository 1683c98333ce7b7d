// Work that may block — an fsync, a popen, reading a cache file — done on a
// worker thread instead of the event loop, with its result handed back to
// the loop. One worker, so work runs in the order it was given: a record
// written before its removal is always written first.
//
// `then` runs on the loop's executor and may run after whoever asked is
// gone: it must hold what it touches alive or check a weak reference. The
// destructor waits for the work already queued (its `then` is dropped if the
// loop no longer runs).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <type_traits>
#include <utility>

namespace sandboxd::service {

class BlockingWork {
 public:
  explicit BlockingWork(boost::asio::any_io_executor loop) : loop_(std::move(loop)), worker_(1) {}
  ~BlockingWork() { worker_.join(); }
  BlockingWork(const BlockingWork&) = delete;
  BlockingWork& operator=(const BlockingWork&) = delete;

  // Runs `work()` on the worker, then `then(result)` (or `then()` for work
  // that returns nothing) on the loop.
  template <class Work, class Then>
  void run(Work work, Then then) {
    boost::asio::post(worker_, [loop = loop_, work = std::move(work), then = std::move(then)]() mutable {
      if constexpr (std::is_void_v<std::invoke_result_t<Work&>>) {
        work();
        boost::asio::post(loop, std::move(then));
      } else {
        auto result = work();
        boost::asio::post(loop, [then = std::move(then), result = std::move(result)]() mutable {
          then(std::move(result));
        });
      }
    });
  }

  const boost::asio::any_io_executor& loop() const { return loop_; }

 private:
  boost::asio::any_io_executor loop_;
  boost::asio::thread_pool worker_;
};

}  // namespace sandboxd::service
