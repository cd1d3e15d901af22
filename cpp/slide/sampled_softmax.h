// The per-sample phase of SLIDE training: forward through the hidden layers
// (dropout on the last one), the sample's active set of output neurons (true
// labels, candidates from the hash tables or the label clusters, random
// negatives), softmax cross-entropy over that set only, and backward into the
// sample's own slot of BatchSlots. Runs on any thread: it reads the weights and
// writes nothing shared.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "slide/active_set.h"
#include "slide/batch_slots.h"
#include "slide/cluster_order.h"
#include "slide/csr_view.h"
#include "slide/forward.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"
#include "slide/label_clusters.h"
#include "slide/network.h"
#include "slide/rng.h"
#include "slide/train_config.h"

namespace slide {

// Hard negatives: a sample's candidates are the labels of its `n_probes` best
// clusters of `clusters`, an index of the output layer built before the epoch
// (it goes stale as the epoch trains, as hash tables do between rehashes).
struct ClusterNegatives {
  const LabelClusters* clusters = nullptr;
  int64_t n_probes = 0;
};

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
  std::vector<float> cluster_scores;
  std::unique_ptr<ClusterOrder> cluster_order;  // made at the first sample (sizes fixed per epoch)
  ActiveSetSampler::IdGroups cluster_members;
};

// Forward and backward pass of sample `row` of X/Y into slot s of `slots`;
// gradients are scaled by inv_batch (the batch mean). `family` and `tables` are
// null in exact training and when `negatives` gives the candidates. `rng` (the
// sample's stream) draws the dropout mask, then the random negatives.
void train_sample(const Network& net, const HashTables* tables, const HashFamily* family,
                  const ClusterNegatives& negatives, const TrainConfig& config,
                  const FeatureMatrix& X, const LabelMatrix& Y, int64_t row, int64_t s,
                  float inv_batch, Rng& rng, BatchSlots& slots, ThreadScratch& ts);

}  // namespace slide
