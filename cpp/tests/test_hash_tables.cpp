// build_tables: every neuron lands in the bucket its weight row hashes to,
// once per table; a full bucket keeps bucket_size neurons (FIFO: the most
// recently updated).
#include <algorithm>
#include <vector>

#include "check.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"
#include "slide/network.h"
#include "slide/rng.h"

namespace {

struct Layer {
  int64_t n = 200, dim = 16;
  std::vector<float> weights;
  slide::Param param;
  explicit Layer(uint64_t seed) : weights(n * dim) {
    slide::Rng rng(seed);
    for (float& w : weights) w = static_cast<float>(rng.below(1000)) / 500.f - 1.f;
    param.value = weights.data();
    param.rows = n;
    param.cols = dim;
  }
};

struct Tables {
  std::vector<int32_t> offsets, ids;
  slide::HashTables view;
  Tables(int n_tables, int table_bits, int64_t n_neurons)
      : offsets(n_tables * ((int64_t{1} << table_bits) + 1)), ids(n_tables * n_neurons) {
    view.offsets = offsets.data();
    view.ids = ids.data();
    view.n_tables = n_tables;
    view.table_bits = table_bits;
    view.n_neurons = n_neurons;
  }
};

}  // namespace

TEST(hash_tables_put_every_neuron_in_its_bucket) {
  const Layer layer(5);
  const int n_tables = 4, table_bits = 4;
  const auto family = slide::make_hash_family(slide::HashKind::SimHash, 16, 4, n_tables, 9);
  Tables t(n_tables, table_bits, layer.n);
  slide::build_tables(*family, layer.param, nullptr, 1000, slide::BucketPolicy::Fifo, 0, 2,
                      t.view);
  slide::BucketScratch scratch(*family);
  std::vector<uint32_t> buckets(n_tables);
  for (int64_t id = 0; id < layer.n; ++id) {
    slide::bucket_indices_of(*family, table_bits, layer.param.row(id), scratch, buckets.data());
    for (int tb = 0; tb < n_tables; ++tb) {
      const auto range = t.view.bucket(tb, buckets[tb]);
      CHECK_EQ(std::count(range.first, range.second, static_cast<int32_t>(id)), 1);
    }
  }
  for (int tb = 0; tb < n_tables; ++tb)  // and nowhere else: each table holds every neuron once
    CHECK_EQ(t.offsets[tb * 17 + 16], 200);
}

TEST(hash_tables_fifo_keeps_the_most_recently_updated) {
  const Layer layer(6);
  const int n_tables = 2, table_bits = 1, bucket_size = 5;
  const auto family = slide::make_hash_family(slide::HashKind::SimHash, 16, 1, n_tables, 4);
  std::vector<int64_t> row_step(layer.n);
  for (int64_t id = 0; id < layer.n; ++id) row_step[id] = (id * 37) % layer.n;
  Tables t(n_tables, table_bits, layer.n);
  slide::build_tables(*family, layer.param, row_step.data(), bucket_size,
                      slide::BucketPolicy::Fifo, 0, 1, t.view);
  slide::BucketScratch scratch(*family);
  std::vector<uint32_t> buckets(n_tables);
  for (int tb = 0; tb < n_tables; ++tb) {
    for (uint32_t b = 0; b < 2; ++b) {
      const auto range = t.view.bucket(tb, b);
      CHECK(range.second - range.first <= bucket_size);
      // The newest member of the bucket among all neurons that hash there is kept.
      int64_t newest = -1, newest_kept = -1;
      for (int64_t id = 0; id < layer.n; ++id) {
        slide::bucket_indices_of(*family, table_bits, layer.param.row(id), scratch,
                                 buckets.data());
        if (buckets[tb] == b) newest = std::max(newest, row_step[id]);
      }
      for (const int32_t* p = range.first; p != range.second; ++p)
        newest_kept = std::max(newest_kept, row_step[*p]);
      CHECK_EQ(newest_kept, newest);
    }
  }
}
