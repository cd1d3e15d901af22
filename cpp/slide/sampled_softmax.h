// The per-sample phase of SLIDE training: forward through the hidden layers,
// the sample's active set of output neurons (true labels, hash-table candidates,
// random negatives), softmax cross-entropy over that set only, and backward
// into the sample's own slot of BatchSlots. Runs on any thread: it reads the
// weights and writes nothing shared.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "slide/active_set.h"
#include "slide/batch_slots.h"
#include "slide/csr_view.h"
#include "slide/forward.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"
#include "slide/network.h"
#include "slide/rng.h"
#include "slide/train_config.h"

namespace slide {

// Per-thread scratch for the per-sample phase, allocated once per epoch.
struct ThreadScratch {
  ThreadScratch(const Network& net, const HashFamily* family)
      : activations(net), sampler(net.n_labels()), output_input_grad(net.last_hidden_size()) {
    if (family) {
      buckets.resize(family->n_tables());
      bucket_scratch = std::make_unique<BucketScratch>(*family);
    }
  }
  HiddenActivations activations;
  ActiveSetSampler sampler;
  std::vector<float> output_input_grad;  // dLoss/d(last hidden activation)
  std::vector<uint32_t> buckets;
  std::unique_ptr<BucketScratch> bucket_scratch;
  std::vector<float> logits;
};

// Forward and backward pass of sample `row` of X/Y into slot s of `slots`;
// gradients are scaled by inv_batch (the batch mean). `family` and `tables` are
// null in exact training.
void train_sample(const Network& net, const HashTables* tables, const HashFamily* family,
                  const TrainConfig& config, const FeatureMatrix& X, const LabelMatrix& Y,
                  int64_t row, int64_t s, float inv_batch, Rng& rng, BatchSlots& slots,
                  ThreadScratch& ts);

}  // namespace slide
