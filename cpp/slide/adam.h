// Adam (Kingma & Ba), bias-corrected, applied row by row.
//
// Sparse rows are updated lazily: only in steps where they received a gradient.
// Rule for the skipped steps (documented in the parameters guide): when a row
// last updated at step t0 is updated again at step t, its moments first decay
// as dense Adam would have decayed them over the t - t0 - 1 gradient-free steps
// (m *= beta1^gap, v *= beta2^gap); the small moves dense Adam would have made in
// those steps from momentum alone are not applied. With gap 0 this is exactly Adam.
#pragma once

#include <cmath>
#include <cstdint>

namespace slide {

struct AdamConfig {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
};

// Quantities shared by every row updated at one step t (1-based).
class AdamStep {
 public:
  AdamStep(const AdamConfig& config, int64_t t)
      : config_(config),
        step_(t),
        lr_t_(static_cast<float>(config.learning_rate *
                                 std::sqrt(1.0 - std::pow(double(config.beta2), double(t))) /
                                 (1.0 - std::pow(double(config.beta1), double(t))))) {}

  int64_t step() const { return step_; }

  // Updates n values of one row whose previous update was at step last_step
  // (0: never). g is the gradient of this step.
  void update(float* w, float* m, float* v, const float* g, int64_t n, int64_t last_step) const {
    const int64_t gap = last_step > 0 ? step_ - last_step - 1 : 0;
    float decay1 = config_.beta1, decay2 = config_.beta2;
    if (gap > 0) {
      decay1 *= static_cast<float>(std::pow(double(config_.beta1), double(gap)));
      decay2 *= static_cast<float>(std::pow(double(config_.beta2), double(gap)));
    }
    const float one_minus_b1 = 1.0f - config_.beta1;
    const float one_minus_b2 = 1.0f - config_.beta2;
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i];
      const float mi = decay1 * m[i] + one_minus_b1 * gi;
      const float vi = decay2 * v[i] + one_minus_b2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] -= lr_t_ * mi / (std::sqrt(vi) + config_.epsilon);
    }
  }

 private:
  AdamConfig config_;
  int64_t step_;
  float lr_t_;
};

}  // namespace slide
