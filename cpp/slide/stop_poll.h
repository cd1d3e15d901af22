// Stopping a long engine call from the caller (Ctrl-C in Python): the caller
// passes a StopCheck; the engine polls it from the calling thread between units
// of work (batches, row chunks), at most every kPollInterval, and leaves with
// slide::Interrupted after the last complete unit.
#pragma once

#include <omp.h>

#include <chrono>
#include <functional>

namespace slide {

// Returns true when the call should stop. Called only by the calling thread.
using StopCheck = std::function<bool()>;

// Thrown by StopPoll::poll; the binding turns it into the pending Python exception.
struct Interrupted {};

class StopPoll {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{50};

  explicit StopPoll(const StopCheck& should_stop)
      : should_stop_(should_stop), last_(std::chrono::steady_clock::now()) {}

  // Throws Interrupted when the check says stop; asks it at most every kPollInterval.
  void poll() {
    if (!should_stop_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ <= kPollInterval) return;
    last_ = now;
    if (should_stop_()) throw Interrupted{};
  }

  // poll() inside a parallel loop (within ParallelErrors::run, which then
  // skips the team's remaining work and rethrows Interrupted after the region):
  // only thread 0, the calling thread, asks.
  void poll_in_team() {
    if (omp_get_thread_num() == 0) poll();
  }

 private:
  const StopCheck& should_stop_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace slide
