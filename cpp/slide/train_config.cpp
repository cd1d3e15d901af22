#include "slide/train_config.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "slide/bounds.h"

namespace slide {

void check_train_config(const TrainConfig& c) {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (c.hash_bits < 1 || c.hash_bits > kMaxHashBits)
    fail("hash_bits must be in [1, " + std::to_string(kMaxHashBits) + "]");
  if (c.bucket_size < 1) fail("bucket_size must be >= 1");
  if (c.limits.min_active < 0) fail("min_active must be >= 0");
  if (c.limits.max_active < 1) fail("max_active must be >= 1");
  if (!(c.adam.learning_rate > 0.f) || !std::isfinite(c.adam.learning_rate))
    fail("learning_rate must be finite and > 0");
  if (!(c.adam.beta1 >= 0.f && c.adam.beta1 < 1.f) ||
      !(c.adam.beta2 >= 0.f && c.adam.beta2 < 1.f) || !(c.adam.epsilon > 0.f))
    fail("Adam's betas must be in [0, 1) and epsilon > 0");
  if (c.batch_size < 1) fail("batch_size must be >= 1");
  if (c.n_threads < 1 || c.n_threads > kMaxThreads)
    fail("n_threads must be in [1, " + std::to_string(kMaxThreads) + "], got " +
         std::to_string(c.n_threads));
  if (!(c.rehash_growth >= 1.0) || !std::isfinite(c.rehash_growth))
    fail("rehash_growth must be finite and >= 1");
  if (c.rebuild_every < 0) fail("rebuild_every must be >= 0");
  if (!(c.dropout >= 0.0 && c.dropout < 1.0)) fail("dropout must be in [0, 1)");
}

}  // namespace slide
