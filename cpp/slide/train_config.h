// The training options of one epoch. Every field named like a SlideClassifier
// parameter is that parameter, with the same name and default
// (tests/test_parameters.py compares them); the rest is fixed by the fitted
// network (exact, hash_family, seed) or by Adam.
#pragma once

#include <cstdint>

#include "slide/active_set.h"
#include "slide/adam.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"

namespace slide {

enum class AdamUpdates { Lazy, Dense };

struct TrainConfig {
  bool exact = false;  // every output neuron active (no hashing)
  HashKind hash_family = HashKind::DWTA;
  int hash_bits = 6;  // codes per table (K)
  int bucket_size = 128;
  BucketPolicy bucket_policy = BucketPolicy::Fifo;
  ActiveSetLimits limits{512, 4096};  // min_active, max_active
  AdamConfig adam{3e-3f};             // learning_rate; the betas and epsilon are Adam's own
  int64_t batch_size = 128;
  int n_threads = 1;
  uint64_t seed = 0;            // random negatives (one stream per sample)
  double rehash_growth = 1.1;   // each rehash interval is this factor longer than the previous
  int64_t rebuild_every = 20;   // draw new hash functions every this many rehashes (0: never)
  // Sampled-softmax correction: the logits of the uniform random negatives get
  // + log(pool / drawn), the inverse of their inclusion probability.
  bool logq_correction = true;
  // Dense: also step the rows of the input and output layers that got no
  // gradient (PyTorch's dense Adam); Lazy: only the touched rows (adam.h).
  AdamUpdates adam_updates = AdamUpdates::Lazy;
  // Inverted dropout of the last hidden layer in training: each sample zeroes
  // each unit with this probability and scales the others by 1 / (1 - dropout).
  double dropout = 0.5;
};

// std::invalid_argument naming the first option out of range.
void check_train_config(const TrainConfig& config);

}  // namespace slide
