// Lazy Adam (adam.h): with gap 0 exactly Adam; a row skipped for `gap` steps
// first decays its moments by beta^(gap + 1), its weight taking no momentum-only moves.
#include <cmath>
#include <vector>

#include "check.h"
#include "slide/adam.h"

namespace {

struct Reference {  // one value, in double
  double w, m = 0, v = 0;
  void step(const slide::AdamConfig& c, int64_t t, int64_t gap, double g) {
    m = std::pow(c.beta1, gap + 1) * m + (1 - c.beta1) * g;
    v = std::pow(c.beta2, gap + 1) * v + (1 - c.beta2) * g * g;
    const double lr_t = c.learning_rate * std::sqrt(1 - std::pow(c.beta2, t)) /
                        (1 - std::pow(c.beta1, t));
    w -= lr_t * m / (std::sqrt(v) + c.epsilon);
  }
};

bool close(double a, double b) { return std::fabs(a - b) <= 1e-6 * (1 + std::fabs(b)); }

}  // namespace

TEST(adam_lazy_rows_decay_their_moments_over_skipped_steps) {
  slide::AdamConfig config{1e-2f};
  const slide::AdamDecayTable decay(config, 8);  // small table: gap 5000 takes the pow() path
  const int64_t steps[] = {1, 2, 5, 5006};      // gaps 0, 0, 2, 5000
  const float gradients[] = {0.3f, -0.1f, 0.7f, 0.2f};
  float w = 0.5f, m = 0.f, v = 0.f;
  Reference ref{0.5};
  int64_t last = 0;
  for (int i = 0; i < 4; ++i) {
    float g = gradients[i];
    slide::AdamStep(config, decay, steps[i]).update(&w, &m, &v, &g, 1, last);
    ref.step(config, steps[i], last > 0 ? steps[i] - last - 1 : 0, gradients[i]);
    CHECK_EQ(g, 0.f);  // the step consumes the gradient
    CHECK(close(w, ref.w));
    CHECK(close(m, ref.m));
    CHECK(close(v, ref.v));
    last = steps[i];
  }
}

TEST(adam_updates_every_value_of_a_row_alike) {
  slide::AdamConfig config{3e-3f};
  const slide::AdamDecayTable decay(config);
  std::vector<float> w(37, 1.f), m(37, 0.f), v(37, 0.f), g(37, 0.25f);  // odd length: SIMD tails
  slide::AdamStep(config, decay, 1).update(w.data(), m.data(), v.data(), g.data(), 37, 0);
  for (int i = 1; i < 37; ++i) CHECK_EQ(w[i], w[0]);
  CHECK(close(w[0], 1.0 - 3e-3));  // first step: -lr * sign(g)
}
