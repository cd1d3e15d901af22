// The row loop of every predictor: rows of X in blocks, blocks in parallel,
// in chunks between which the calling thread polls for a stop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "slide/csr_view.h"
#include "slide/forward.h"
#include "slide/network.h"
#include "slide/parallel.h"
#include "slide/predictor.h"
#include "slide/stop_poll.h"
#include "slide/topk.h"

namespace slide {

// Inputs scored together: each weight row streamed from memory serves the whole
// block, so larger is better, up to what stays in L2 and keeps every thread busy.
inline int64_t row_block_for(int64_t n_rows, int n_threads) {
  const int64_t per_thread = (n_rows + n_threads - 1) / std::max(1, n_threads);
  const int64_t block = std::min<int64_t>(256, std::max<int64_t>(4, per_thread));
  return (block + 3) / 4 * 4;
}

// Runs body(first_row, last_row) over row blocks in parallel, in chunks so the
// calling thread can poll for a stop (Ctrl-C) between chunks.
template <typename Body>
void for_row_blocks(int64_t n_rows, int64_t block, int n_threads, const StopCheck& should_stop,
                    Body&& body) {
  const int64_t chunk = block * std::max(1, n_threads) * 2;
  ParallelErrors errors;
  StopPoll stop(should_stop);
  for (int64_t chunk_begin = 0; chunk_begin < n_rows; chunk_begin += chunk) {
    const int64_t chunk_end = std::min(n_rows, chunk_begin + chunk);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int64_t b = chunk_begin; b < chunk_end; b += block) {
      errors.run([&] { body(b, std::min(chunk_end, b + block)); });
    }
    errors.rethrow();
    stop.poll();
  }
}

// Runs body(first_row, n_rows, h) over blocks of `block` rows of X (as
// for_row_blocks), h being the rows' last hidden activations (n_rows x
// last_hidden_size, row-major): what every predictor scores.
template <typename Body>
void for_hidden_blocks(const Network& net, const FeatureMatrix& X, int64_t block, int n_threads,
                       const StopCheck& should_stop, Body&& body) {
  const int64_t dim = net.last_hidden_size();
  for_row_blocks(X.n_rows, block, n_threads, should_stop, [&](int64_t first, int64_t last) {
    HiddenActivations scratch(net);
    std::vector<float> h((last - first) * dim);
    for (int64_t r = first; r < last; ++r) {
      forward_hidden(net, X, r, scratch);
      std::copy(scratch.last(), scratch.last() + dim, h.data() + (r - first) * dim);
    }
    body(first, last - first, static_cast<const float*>(h.data()));
  });
}

// One top-k heap per row of [first, first + n), writing into those rows of out.
inline std::vector<TopK> row_heaps(TopKOutput out, int64_t first, int64_t n) {
  std::vector<TopK> heaps;
  heaps.reserve(n);
  for (int64_t r = first; r < first + n; ++r)
    heaps.emplace_back(out.labels + r * out.k, out.scores + r * out.k, out.k);
  return heaps;
}

}  // namespace slide
