// Compact LSH tables of neuron ids: per table, the ids sorted by bucket plus an
// offsets array (counting sort), so empty buckets cost 4 bytes, not a
// pre-allocated slot array. Memory: n_tables * ((2^table_bits + 1) + n_neurons) * 4 bytes.
#pragma once

#include <cstdint>
#include <utility>

#include "slide/hash_family.h"
#include "slide/network.h"
#include "slide/stop_poll.h"

namespace slide {

// Which neurons a full bucket keeps.
enum class BucketPolicy {
  Fifo,       // the bucket_size most recently updated neurons (ties: higher id)
  Reservoir,  // a uniform random subset of bucket_size neurons
};

// Views of caller-owned arrays.
struct HashTables {
  int32_t* offsets = nullptr;  // n_tables x (2^table_bits + 1)
  int32_t* ids = nullptr;      // n_tables x n_neurons (a table uses offsets[last] of them)
  int n_tables = 0;
  int table_bits = 0;
  int64_t n_neurons = 0;

  int64_t n_buckets() const { return int64_t{1} << table_bits; }
  // [begin, end) of the ids in bucket b of table t.
  std::pair<const int32_t*, const int32_t*> bucket(int t, uint32_t b) const {
    const int32_t* off = offsets + t * (n_buckets() + 1);
    const int32_t* base = ids + t * n_neurons;
    return {base + off[b], base + off[b + 1]};
  }
};

// Per-thread buffers to turn a vector into one bucket index per table.
struct BucketScratch {
  explicit BucketScratch(const HashFamily& family);
  std::vector<uint32_t> codes;
  std::vector<float> hash_scratch;
};

// Bucket of every table for vector x (n_tables entries written to buckets).
void bucket_indices_of(const HashFamily& family, int table_bits, const float* x,
                       BucketScratch& scratch, uint32_t* buckets);

// Hashes every row of `neurons` (neuron-major weights) and rebuilds all tables.
// `row_step` (may be null) orders neurons for the FIFO policy; `seed` drives the
// reservoir choice. Runs on n_threads threads. Polls `should_stop` (may be
// empty) while hashing and sorting; on Interrupted, as on any error, the
// tables are left valid but empty (every offset 0): unbuilt.
void build_tables(const HashFamily& family, const Param& neurons, const int64_t* row_step,
                  int bucket_size, BucketPolicy policy, uint64_t seed, int n_threads,
                  HashTables& tables, const StopCheck& should_stop = {});

}  // namespace slide
