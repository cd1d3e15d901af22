#include "slide/active_set.h"

#include <algorithm>

#include "slide/debug_checks.h"

namespace slide {

ActiveSetSampler::ActiveSetSampler(int64_t n_neurons)
    : n_neurons_(n_neurons), stamp_(n_neurons, 0), hits_(n_neurons, 0) {}

void ActiveSetSampler::start_sample() {
  if (++epoch_ == 0) {  // wrapped around: old stamps could collide
    std::fill(stamp_.begin(), stamp_.end(), 0u);
    epoch_ = 1;
  }
  ids_.clear();
  candidates_.clear();
  n_true_ = 0;
}

bool ActiveSetSampler::insert(int32_t id) {
  SLIDE_ASSERT_INDEX(id, n_neurons_);
  if (stamp_[id] == epoch_) return false;
  stamp_[id] = epoch_;
  return true;
}

void ActiveSetSampler::add_bucket_candidates(const HashTables& tables, const uint32_t* buckets,
                                             int64_t budget) {
  // Union of the buckets, counting in how many tables each candidate appears.
  for (int t = 0; t < tables.n_tables; ++t) {
    const auto range = tables.bucket(t, buckets[t]);
    for (const int32_t* p = range.first; p != range.second; ++p) {
      const int32_t id = *p;
      SLIDE_ASSERT_INDEX(id, n_neurons_);
      if (stamp_[id] != epoch_) {
        stamp_[id] = epoch_;
        hits_[id] = 1;
        candidates_.push_back(id);
      } else if (hits_[id] < UINT16_MAX) {
        ++hits_[id];  // true labels are counted too, harmlessly
      }
    }
  }
  if (budget <= 0) return;
  if (static_cast<int64_t>(candidates_.size()) <= budget) {
    ids_.insert(ids_.end(), candidates_.begin(), candidates_.end());
    return;
  }
  // Too many: keep the candidates found in most tables (counting sort by hits,
  // stable, so ties keep retrieval order and the result is deterministic).
  int max_hits = 0;
  for (int32_t id : candidates_) max_hits = std::max<int>(max_hits, hits_[id]);
  std::vector<int64_t> count(max_hits + 2, 0);
  for (int32_t id : candidates_) ++count[max_hits - hits_[id] + 1];
  for (int h = 0; h <= max_hits; ++h) count[h + 1] += count[h];
  by_hits_.resize(candidates_.size());
  for (int32_t id : candidates_) by_hits_[count[max_hits - hits_[id]]++] = id;
  ids_.insert(ids_.end(), by_hits_.begin(), by_hits_.begin() + budget);
}

void ActiveSetSampler::build_for_training(const int32_t* labels, int64_t n_labels,
                                          const HashTables* tables, const uint32_t* buckets,
                                          const ActiveSetLimits& limits, bool exact, Rng& rng) {
  start_sample();
  for (int64_t i = 0; i < n_labels; ++i)
    if (insert(labels[i])) ids_.push_back(labels[i]);
  n_true_ = static_cast<int64_t>(ids_.size());

  if (exact || limits.min_active >= n_neurons_) {
    for (int32_t id = 0; id < n_neurons_; ++id)
      if (stamp_[id] != epoch_) ids_.push_back(id);
    first_random_ = static_cast<int64_t>(ids_.size());  // every neuron, none drawn
    random_pool_ = 0;
    return;
  }
  add_bucket_candidates(*tables, buckets, limits.max_active - n_true_);

  first_random_ = static_cast<int64_t>(ids_.size());
  random_pool_ = n_neurons_ - first_random_;
  // Random negatives up to min_active; the bounded number of draws keeps this
  // cheap even when most of the layer is already in the set.
  int64_t missing = limits.min_active - static_cast<int64_t>(ids_.size());
  for (int64_t draws = 4 * missing + 16; missing > 0 && draws > 0; --draws) {
    const int32_t id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(n_neurons_)));
    if (insert(id)) {
      ids_.push_back(id);
      --missing;
    }
  }
}

void ActiveSetSampler::build_for_inference(const HashTables& tables, const uint32_t* buckets,
                                           int64_t max_active, const int32_t* fallback,
                                           int64_t n_fallback, int64_t at_least) {
  start_sample();
  add_bucket_candidates(tables, buckets, max_active);
  for (int64_t i = 0; i < n_fallback && static_cast<int64_t>(ids_.size()) < at_least; ++i) {
    const int32_t id = fallback[i];
    // Only reached when every candidate was kept (callers ensure max_active >=
    // at_least), so a stamp means "already in the set".
    if (stamp_[id] != epoch_) {
      stamp_[id] = epoch_;
      ids_.push_back(id);
    }
  }
}

}  // namespace slide
