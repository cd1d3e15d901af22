// Helpers for OpenMP regions: an exception thrown by any worker is captured and
// rethrown on the calling thread after the region (an exception escaping an
// OpenMP region terminates the process).
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace slide {

class ParallelErrors {
 public:
  // Runs fn(), storing the first exception instead of letting it escape.
  template <typename Fn>
  void run(Fn&& fn) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;  // skip remaining work
    try {
      fn();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr error_;
};

}  // namespace slide
