// Per-thread construction of a sample's active output neurons: its true labels,
// then its candidates (the union of its L buckets, most frequent across tables
// first when the union is too large, or the members of its best label
// clusters, best cluster first), then random negatives up to a minimum size.
//
// The negatives are drawn per sample. (Drawing them once per batch and sharing
// them cuts the rows Adam updates per batch ~100x, but measured on 100k labels it
// lowered P@1 after 3 epochs from 0.69 to 0.51: each row then sees rare, large
// Adam steps instead of frequent small ones.)
//
// Membership is tracked in a hash set sized by the active set (id_set.h: O(1)
// reset per sample, no allocation after the first samples, and no array of
// n_labels entries per thread, which misses the cache at 10^6 labels).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "slide/hash_tables.h"
#include "slide/id_set.h"
#include "slide/rng.h"

namespace slide {

struct ActiveSetLimits {
  int64_t min_active = 0;  // pad with random neurons below this (training only)
  int64_t max_active = 0;  // keep the most frequent bucket candidates above this
};

class ActiveSetSampler {
 public:
  explicit ActiveSetSampler(int64_t n_neurons);

  // Groups of candidate ids (the members of a sample's best clusters), best first.
  using IdGroups = std::vector<std::pair<const int32_t*, int64_t>>;

  // Training: ids() starts with the n_true() deduplicated true labels, then the
  // candidates of `tables` (buckets: tables->n_tables entries) or of `groups`
  // (either may be null), then random negatives. `exact` selects every neuron;
  // `rng` draws the random negatives (a per-sample stream).
  void build_for_training(const int32_t* labels, int64_t n_labels, const HashTables* tables,
                          const uint32_t* buckets, const IdGroups* groups,
                          const ActiveSetLimits& limits, bool exact, Rng& rng);

  const std::vector<int32_t>& ids() const { return ids_; }
  int64_t n_true() const { return n_true_; }
  // Training: ids()[first_random()..] are the uniform random negatives, drawn
  // from the random_pool() neurons not already in the set.
  int64_t first_random() const { return first_random_; }
  int64_t random_pool() const { return random_pool_; }

 private:
  void start_sample();
  bool insert(int32_t id);  // false if already present
  void add_bucket_candidates(const HashTables& tables, const uint32_t* buckets, int64_t budget);
  void add_group_candidates(const IdGroups& groups, int64_t budget);

  int64_t n_neurons_;
  // Every id met this sample (true labels, all bucket candidates, negatives),
  // with the index of its entry in candidates_ (-1: not a bucket candidate).
  IdSet members_;
  std::vector<int32_t> ids_;
  std::vector<int32_t> candidates_;
  std::vector<int32_t> hits_;     // per candidate: tables whose bucket holds it
  std::vector<int32_t> by_hits_;
  std::vector<int32_t> true_sorted_;
  int64_t n_true_ = 0;
  int64_t first_random_ = 0;
  int64_t random_pool_ = 0;
};

}  // namespace slide
