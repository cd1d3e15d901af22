#include "slide/hash_tables.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "slide/debug_checks.h"
#include "slide/parallel.h"
#include "slide/rng.h"

namespace slide {

BucketScratch::BucketScratch(const HashFamily& family)
    : codes(family.n_codes()), hash_scratch(family.scratch_floats() + 1) {}

void bucket_indices_of(const HashFamily& family, int table_bits, const float* x,
                       BucketScratch& scratch, uint32_t* buckets) {
  family.codes(x, scratch.codes.data(), scratch.hash_scratch.data());
  const int k = family.codes_per_table();
  const int code_bits = bits_per_code(family.code_range());
  for (int t = 0; t < family.n_tables(); ++t)
    buckets[t] = bucket_index(scratch.codes.data() + t * k, k, code_bits, table_bits);
}

namespace {
// Neurons hashed per HashFamily::buckets_of_rows call of a table build.
constexpr int64_t kHashBlockRows = 64;
}  // namespace

void build_tables(const HashFamily& family, const Param& neurons, const int64_t* row_step,
                  int bucket_size, BucketPolicy policy, uint64_t seed, int n_threads,
                  HashTables& tables, const StopCheck& should_stop) {
  const int64_t n = neurons.rows;
  const int n_tables = tables.n_tables;
  if (n != tables.n_neurons || n_tables != family.n_tables() || neurons.cols != family.dim())
    throw std::invalid_argument("hash tables do not match the layer they index");
  if (bucket_size < 1) throw std::invalid_argument("bucket_size must be >= 1");

  // 1. Bucket of every neuron in every table, written table-major into the
  // tables' own id arrays (same size), so no n x n_tables temporary is needed.
  int32_t* bucket_of = tables.ids;
  ParallelErrors errors;
  StopPoll stop(should_stop);  // 3M neurons x 50 tables take seconds: Ctrl-C must not wait
#pragma omp parallel num_threads(n_threads)
  {
    // An exception must not leave a worksharing loop early (the other threads
    // would wait at its barrier forever): each iteration catches its own.
    std::vector<float> scratch;
    errors.run([&] { scratch.resize(family.rows_scratch_floats() + 1); });
#pragma omp for schedule(static)
    for (int64_t first = 0; first < n; first += kHashBlockRows) {
      errors.run([&] {
        stop.poll_in_team();
        family.buckets_of_rows(neurons.row(first), std::min(kHashBlockRows, n - first),
                               neurons.cols, tables.table_bits, bucket_of + first, n,
                               scratch.data());
      });
    }
  }
  if (errors.failed()) {
    std::fill(tables.offsets, tables.offsets + n_tables * (tables.n_buckets() + 1), 0);
    errors.rethrow();
  }

  // 2. Per table: counting sort by bucket (from a copy of the table's buckets,
  // since the sorted ids overwrite them), then trim overfull buckets.
  const int64_t n_buckets = tables.n_buckets();
#pragma omp parallel num_threads(n_threads)
  {
    std::vector<int32_t> start, sorted, cursor, order, table_buckets;
    std::vector<uint64_t> keys;
    errors.run([&] {
      start.resize(n_buckets + 1);
      sorted.resize(n);
      table_buckets.resize(n);
    });
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < n_tables; ++t) {
      errors.run([&] {
        stop.poll_in_team();
        int32_t* ids = tables.ids + t * n;
        std::copy(ids, ids + n, table_buckets.begin());
        std::fill(start.begin(), start.end(), 0);
        for (int64_t i = 0; i < n; ++i) ++start[table_buckets[i] + 1];
        const int32_t largest = *std::max_element(start.begin(), start.end());
        for (int64_t b = 0; b < n_buckets; ++b) start[b + 1] += start[b];
        int32_t* offsets = tables.offsets + t * (n_buckets + 1);
        if (largest <= bucket_size) {
          // No bucket to trim (the usual case): sort straight into the table.
          std::copy(start.begin(), start.end(), offsets);
          for (int64_t i = 0; i < n; ++i) ids[start[table_buckets[i]]++] = static_cast<int32_t>(i);
          return;
        }
        cursor.assign(start.begin(), start.end() - 1);
        for (int64_t i = 0; i < n; ++i) sorted[cursor[table_buckets[i]]++] = static_cast<int32_t>(i);

        int32_t written = 0;
        for (int64_t b = 0; b < n_buckets; ++b) {
          offsets[b] = written;
          const int32_t* first = sorted.data() + start[b];
          const int32_t count = start[b + 1] - start[b];
          if (count <= bucket_size) {
            for (int32_t j = 0; j < count; ++j) ids[written++] = first[j];
            continue;
          }
          // Overfull: keep the bucket_size ids with the largest keys, in id order.
          keys.resize(count);
          for (int32_t j = 0; j < count; ++j) {
            const int32_t id = first[j];
            keys[j] = policy == BucketPolicy::Fifo
                          ? (static_cast<uint64_t>(row_step ? row_step[id] : 0) << 32) |
                                static_cast<uint32_t>(id)
                          : mix64(derive_seed(seed, t) ^ static_cast<uint64_t>(id));
          }
          order.resize(count);
          for (int32_t j = 0; j < count; ++j) order[j] = j;
          std::nth_element(order.begin(), order.begin() + bucket_size, order.end(),
                           [&](int32_t a, int32_t c) { return keys[a] > keys[c]; });
          std::sort(order.begin(), order.begin() + bucket_size);
          for (int32_t j = 0; j < bucket_size; ++j) ids[written++] = first[order[j]];
        }
        offsets[n_buckets] = written;
      });
    }
  }
  if (errors.failed()) {
    // The id arrays hold bucket numbers now: leave valid (empty) tables behind.
    std::fill(tables.offsets, tables.offsets + n_tables * (n_buckets + 1), 0);
    errors.rethrow();
  }
}

}  // namespace slide
