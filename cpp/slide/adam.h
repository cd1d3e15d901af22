// Adam (Kingma & Ba), bias-corrected, applied row by row.
//
// Sparse rows are updated lazily: only in steps where they received a gradient.
// Rule for the skipped steps (documented in docs/parameters.md): when a row last
// updated at step t0 is updated again at step t, its moments first decay as
// dense Adam would have decayed them over the t - t0 - 1 gradient-free steps
// (m *= beta1^gap, v *= beta2^gap); the small moves dense Adam would have made in
// those steps from momentum alone are not applied. With gap 0 this is exactly Adam.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "slide/kernels.h"

namespace slide {

struct AdamConfig {
  float learning_rate = 0.f;  // no default here: the caller's (TrainConfig's)
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
};

// beta^(gap + 1) for the gaps that occur most, so a row update needs no pow().
class AdamDecayTable {
 public:
  explicit AdamDecayTable(const AdamConfig& config, int64_t size = 4096)
      : beta1_(config.beta1), beta2_(config.beta2), decay1_(size), decay2_(size) {
    for (int64_t gap = 0; gap < size; ++gap) {
      decay1_[gap] = static_cast<float>(std::pow(double(config.beta1), double(gap + 1)));
      decay2_[gap] = static_cast<float>(std::pow(double(config.beta2), double(gap + 1)));
    }
  }
  float decay1(int64_t gap) const { return lookup(decay1_, beta1_, gap); }
  float decay2(int64_t gap) const { return lookup(decay2_, beta2_, gap); }

 private:
  static float lookup(const std::vector<float>& table, float beta, int64_t gap) {
    if (gap < static_cast<int64_t>(table.size())) return table[gap];
    return static_cast<float>(std::pow(double(beta), double(gap + 1)));
  }
  float beta1_, beta2_;
  std::vector<float> decay1_, decay2_;
};

// Quantities shared by every row updated at one step t (1-based).
class AdamStep {
 public:
  AdamStep(const AdamConfig& config, const AdamDecayTable& decay, int64_t t)
      : config_(config),
        decay_(decay),
        step_(t),
        lr_t_(static_cast<float>(config.learning_rate *
                                 std::sqrt(1.0 - std::pow(double(config.beta2), double(t))) /
                                 (1.0 - std::pow(double(config.beta1), double(t))))) {}

  int64_t step() const { return step_; }

  // Updates n values of one row whose previous update was at step last_step
  // (0: never), with this step's gradient g; zeroes g.
  void update(float* w, float* m, float* v, float* g, int64_t n, int64_t last_step) const {
    // max(): a row step ahead of the current step (a damaged model) must not
    // index before the decay table; the binding refuses such models anyway.
    const int64_t gap = last_step > 0 ? std::max<int64_t>(step_ - last_step - 1, 0) : 0;
    const AdamCoefficients c{decay_.decay1(gap), decay_.decay2(gap), 1.0f - config_.beta1,
                             1.0f - config_.beta2, lr_t_, config_.epsilon};
    kernels().adam(w, m, v, g, n, c);
  }

 private:
  AdamConfig config_;
  const AdamDecayTable& decay_;
  int64_t step_;
  float lr_t_;
};

}  // namespace slide
