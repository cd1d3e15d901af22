// ActiveSetSampler: true labels first (deduplicated), then the bucket
// candidates found in most tables, then distinct random negatives up to min_active.
#include <algorithm>
#include <set>
#include <vector>

#include "check.h"
#include "slide/active_set.h"
#include "slide/rng.h"

namespace {

// Two tables of two buckets over 12 neurons; the sample falls in bucket 0 of both.
struct SmallTables {
  // Table 0, bucket 0: {4, 5, 6}; bucket 1: the rest. Table 1, bucket 0: {5, 6, 9}.
  std::vector<int32_t> offsets{0, 3, 12, 0, 3, 12};
  std::vector<int32_t> ids{4, 5, 6, 0, 1, 2, 3, 7, 8, 9, 10, 11,
                           5, 6, 9, 0, 1, 2, 3, 4, 7, 8, 10, 11};
  slide::HashTables tables;
  SmallTables() {
    tables.offsets = offsets.data();
    tables.ids = ids.data();
    tables.n_tables = 2;
    tables.table_bits = 1;
    tables.n_neurons = 12;
  }
  // The active set of a sample with one true label that falls in bucket 0 of both tables.
  const std::vector<int32_t>& sample(slide::ActiveSetSampler& sampler, int32_t label,
                                     slide::ActiveSetLimits limits, slide::Rng& rng) const {
    const uint32_t buckets[] = {0, 0};
    sampler.build_for_training(&label, 1, &tables, buckets, nullptr, limits, false, rng);
    return sampler.ids();
  }
};

bool all_distinct(const std::vector<int32_t>& ids) {
  return std::set<int32_t>(ids.begin(), ids.end()).size() == ids.size();
}

}  // namespace

TEST(active_set_exact_holds_every_neuron_true_labels_first) {
  slide::ActiveSetSampler sampler(12);
  slide::Rng rng(1);
  const int32_t labels[] = {3, 3, 1};
  sampler.build_for_training(labels, 3, nullptr, nullptr, nullptr, {0, 12}, true, rng);
  const auto& ids = sampler.ids();
  CHECK_EQ(sampler.n_true(), 2);
  CHECK_EQ(ids[0], 3);
  CHECK_EQ(ids[1], 1);
  CHECK_EQ(static_cast<int64_t>(ids.size()), 12);
  CHECK(all_distinct(ids));
  CHECK_EQ(sampler.random_pool(), 0);
}

TEST(active_set_keeps_candidates_found_in_most_tables) {
  const SmallTables t;
  slide::ActiveSetSampler sampler(12);
  slide::Rng rng(2);
  // Room for 2 candidates: 5 and 6 are in both tables' buckets, 4 and 9 in one.
  const auto& ids = t.sample(sampler, 0, {0, 3}, rng);
  CHECK_EQ(static_cast<int64_t>(ids.size()), 3);
  CHECK_EQ(ids[0], 0);
  CHECK_EQ(ids[1], 5);
  CHECK_EQ(ids[2], 6);
}

TEST(active_set_pads_with_distinct_random_negatives) {
  const SmallTables t;
  slide::ActiveSetSampler sampler(12);
  slide::Rng rng(3);
  for (int repeat = 0; repeat < 20; ++repeat) {  // the marker array is reused per sample
    const auto& ids = t.sample(sampler, 11, {8, 100}, rng);
    CHECK_EQ(ids[0], 11);
    CHECK_EQ(sampler.first_random(), 5);  // 11, then 4, 5, 6, 9 from the buckets
    CHECK_EQ(sampler.random_pool(), 12 - 5);
    CHECK_EQ(static_cast<int64_t>(ids.size()), 8);
    CHECK(all_distinct(ids));
    CHECK(std::all_of(ids.begin(), ids.end(), [](int32_t id) { return id >= 0 && id < 12; }));
  }
}
