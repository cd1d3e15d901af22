#include "slide/active_set.h"

#include <algorithm>

#include "slide/debug_checks.h"

namespace slide {

ActiveSetSampler::ActiveSetSampler(int64_t n_neurons) : n_neurons_(n_neurons) {}

void ActiveSetSampler::start_sample() {
  members_.clear();
  ids_.clear();
  candidates_.clear();
  hits_.clear();
  n_true_ = 0;
}

bool ActiveSetSampler::insert(int32_t id) {
  SLIDE_ASSERT_INDEX(id, n_neurons_);
  return members_.insert(id, -1);
}

void ActiveSetSampler::add_bucket_candidates(const HashTables& tables, const uint32_t* buckets,
                                             int64_t budget) {
  // Union of the buckets, counting in how many tables each candidate appears.
  for (int t = 0; t < tables.n_tables; ++t) {
    const auto range = tables.bucket(t, buckets[t]);
    for (const int32_t* p = range.first; p != range.second; ++p) {
      const int32_t id = *p;
      SLIDE_ASSERT_INDEX(id, n_neurons_);
      const int32_t* candidate =
          members_.find_or_insert(id, static_cast<int32_t>(candidates_.size()));
      if (!candidate) {
        candidates_.push_back(id);
        hits_.push_back(1);
      } else if (*candidate >= 0) {
        ++hits_[*candidate];  // at most n_tables
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
  const size_t n = candidates_.size();
  const int max_hits = *std::max_element(hits_.begin(), hits_.end());
  std::vector<int64_t> count(max_hits + 2, 0);
  for (size_t j = 0; j < n; ++j) ++count[max_hits - hits_[j] + 1];
  for (int h = 0; h <= max_hits; ++h) count[h + 1] += count[h];
  by_hits_.resize(n);
  for (size_t j = 0; j < n; ++j) by_hits_[count[max_hits - hits_[j]]++] = candidates_[j];
  ids_.insert(ids_.end(), by_hits_.begin(), by_hits_.begin() + budget);
}

void ActiveSetSampler::add_group_candidates(const IdGroups& groups, int64_t budget) {
  for (const auto& [members, size] : groups)
    for (int64_t i = 0; i < size; ++i) {
      if (budget <= 0) return;
      if (insert(members[i])) {
        ids_.push_back(members[i]);
        --budget;
      }
    }
}

void ActiveSetSampler::build_for_training(const int32_t* labels, int64_t n_labels,
                                          const HashTables* tables, const uint32_t* buckets,
                                          const IdGroups* groups, const ActiveSetLimits& limits,
                                          bool exact, Rng& rng) {
  start_sample();
  for (int64_t i = 0; i < n_labels; ++i)
    if (insert(labels[i])) ids_.push_back(labels[i]);
  n_true_ = static_cast<int64_t>(ids_.size());

  if (exact || limits.min_active >= n_neurons_) {
    // Every other neuron in id order: a merge past the sorted true labels.
    true_sorted_.assign(ids_.begin(), ids_.end());
    std::sort(true_sorted_.begin(), true_sorted_.end());
    size_t next_true = 0;
    for (int32_t id = 0; id < n_neurons_; ++id) {
      if (next_true < true_sorted_.size() && true_sorted_[next_true] == id) {
        ++next_true;
        continue;
      }
      ids_.push_back(id);
    }
    first_random_ = static_cast<int64_t>(ids_.size());  // every neuron, none drawn
    random_pool_ = 0;
    return;
  }
  if (tables) add_bucket_candidates(*tables, buckets, limits.max_active - n_true_);
  if (groups) add_group_candidates(*groups, limits.max_active - n_true_);

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

}  // namespace slide
