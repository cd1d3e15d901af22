// One epoch of SLIDE training. Per batch: the samples run in parallel (forward,
// sampled softmax over the sample's active set, backward), each into its own
// slot; then each touched row's gradient is summed in sample order and updated
// by lazy Adam (rows in parallel), or by dense Adam when asked (every other row
// also steps, with a zero gradient). Unlike SLIDE's HOGWILD, no gradient row is
// written by two threads, so no update is lost and the result does not depend on
// the thread count. Also the rehash / rebuild schedule of the output tables.
#pragma once

#include <cstdint>

#include "slide/csr_view.h"
#include "slide/hash_tables.h"
#include "slide/network.h"
#include "slide/sampled_softmax.h"
#include "slide/stop_poll.h"
#include "slide/train_config.h"

namespace slide {

// Schedule state carried from epoch to epoch (and pickled with the model).
struct TrainSchedule {
  int64_t step = 0;               // Adam steps done so far
  int64_t samples_seen = 0;       // training samples processed so far (keys per-sample streams)
  int64_t next_rehash_step = 0;   // rehash when step reaches this
  double rehash_interval = 1.0;   // steps until the next rehash after that (starts at the
                                  // estimator's rehash_interval)
  int64_t n_rehashes = 0;
  uint64_t hash_seed = 0;         // seed of the current hash functions
};

struct EpochStats {
  double loss_sum = 0.0;          // sum over labelled samples of their loss
  int64_t n_labelled = 0;         // samples with at least one label
  int64_t n_samples = 0;
  double active_sum = 0.0;        // sum of active-set sizes (labelled samples)
  int64_t n_rehashes = 0;
  int64_t n_rebuilds = 0;
};

// Trains over the rows `order[0..n_order)` of X/Y in batches. `tables` may be
// null when config.exact or when `negatives` gives the candidates. Throws std::runtime_error (before applying the step)
// when a batch's loss is not finite, and Interrupted after the step in which
// `should_stop` (polled between batches, StopPoll) said stop.
EpochStats train_epoch(Network& net, HashTables* tables, const FeatureMatrix& X,
                       const LabelMatrix& Y, const int64_t* order, int64_t n_order,
                       const TrainConfig& config, TrainSchedule& schedule,
                       const StopCheck& should_stop, const ClusterNegatives& negatives = {});

// Rebuilds the output layer's tables with the schedule's current hash functions.
// On Interrupted (polled `should_stop`) the tables are left unbuilt (empty).
void rebuild_output_tables(const Network& net, HashTables& tables, const TrainConfig& config,
                           const TrainSchedule& schedule, const StopCheck& should_stop = {});

}  // namespace slide
