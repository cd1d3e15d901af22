#include "slide/predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "slide/active_set.h"
#include "slide/forward.h"
#include "slide/kernels.h"
#include "slide/parallel.h"
#include "slide/topk.h"

namespace slide {
namespace {

constexpr int64_t kLabelBlock = 256;  // output neurons per kernel call (stays in L2)

// Inputs scored together: each weight row streamed from memory serves the whole
// block, so larger is better, up to what stays in L2 and keeps every thread busy.
int64_t row_block_for(int64_t n_rows, int n_threads) {
  const int64_t per_thread = (n_rows + n_threads - 1) / std::max(1, n_threads);
  const int64_t block = std::min<int64_t>(256, std::max<int64_t>(4, per_thread));
  return (block + 3) / 4 * 4;
}

// Runs body(first_row, last_row) over row blocks in parallel, in chunks so the
// calling thread can check for Ctrl-C between chunks.
template <typename Body>
void for_row_blocks(int64_t n_rows, int64_t block, int n_threads, const StopCheck& should_stop,
                    Body&& body) {
  const int64_t chunk = block * std::max(1, n_threads) * 2;
  ParallelErrors errors;
  auto last_check = std::chrono::steady_clock::now();
  for (int64_t chunk_begin = 0; chunk_begin < n_rows; chunk_begin += chunk) {
    const int64_t chunk_end = std::min(n_rows, chunk_begin + chunk);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int64_t b = chunk_begin; b < chunk_end; b += block) {
      errors.run([&] { body(b, std::min(chunk_end, b + block)); });
    }
    errors.rethrow();
    const auto now = std::chrono::steady_clock::now();
    if (should_stop && now - last_check > std::chrono::milliseconds(50)) {
      last_check = now;
      if (should_stop()) throw Interrupted{};
    }
  }
}

// Last hidden activations of rows [first, last) into out (row-major).
void hidden_block(const Network& net, const FeatureMatrix& X, int64_t first, int64_t last,
                  HiddenActivations& scratch, float* out) {
  const int64_t dim = net.last_hidden_size();
  for (int64_t r = first; r < last; ++r) {
    forward_hidden(net, X, r, scratch);
    std::copy(scratch.last(), scratch.last() + dim, out + (r - first) * dim);
  }
}

}  // namespace

void predict_topk_exact(const Network& net, const FeatureMatrix& X, TopKOutput out,
                        int n_threads, const StopCheck& should_stop) {
  const int64_t dim = net.last_hidden_size();
  const int64_t n_labels = net.n_labels();
  const Layer& output = net.output;
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  for_row_blocks(X.n_rows, row_block, n_threads, should_stop, [&](int64_t first, int64_t last) {
    const Kernels& k = kernels();
    HiddenActivations scratch(net);
    std::vector<float> h(row_block * dim);
    std::vector<float> scores(row_block * kLabelBlock);
    const int64_t n = last - first;
    hidden_block(net, X, first, last, scratch, h.data());
    std::vector<TopK> heaps;
    for (int64_t r = 0; r < n; ++r)
      heaps.emplace_back(out.labels + (first + r) * out.k, out.scores + (first + r) * out.k, out.k);
    for (int64_t c = 0; c < n_labels; c += kLabelBlock) {
      const int64_t width = std::min(kLabelBlock, n_labels - c);
      k.score_block(h.data(), n, output.weight.row(c), output.bias.value + c, width, dim,
                    scores.data(), kLabelBlock);
      for (int64_t r = 0; r < n; ++r) {
        TopK& heap = heaps[r];
        const float* row_scores = scores.data() + r * kLabelBlock;
        float threshold = heap.threshold();
        for (int64_t j = 0; j < width; ++j) {
          if (row_scores[j] >= threshold) {
            heap.push(row_scores[j], static_cast<int32_t>(c + j));
            threshold = heap.threshold();
          }
        }
      }
    }
    for (TopK& heap : heaps) heap.finish();
  });
}

void predict_topk_lsh(const Network& net, const HashTables& tables, const LshQuery& query,
                      const FeatureMatrix& X, TopKOutput out, int n_threads,
                      const StopCheck& should_stop) {
  const auto family = make_hash_family(query.hash_kind, static_cast<int>(net.last_hidden_size()),
                                       query.codes_per_table, tables.n_tables, query.hash_seed);
  const int64_t dim = net.last_hidden_size();
  const Layer& output = net.output;
  for_row_blocks(X.n_rows, 32, n_threads, should_stop, [&](int64_t first, int64_t last) {
    const Kernels& k = kernels();
    HiddenActivations scratch(net);
    BucketScratch bucket_scratch(*family);
    std::vector<uint32_t> buckets(tables.n_tables);
    ActiveSetSampler sampler(net.n_labels());
    for (int64_t r = first; r < last; ++r) {
      forward_hidden(net, X, r, scratch);
      const float* h = scratch.last();
      bucket_indices_of(*family, tables.table_bits, h, bucket_scratch, buckets.data());
      sampler.build_for_inference(tables, buckets.data(), query.max_candidates, query.fallback,
                                  query.n_fallback, out.k);
      TopK heap(out.labels + r * out.k, out.scores + r * out.k, out.k);
      for (int32_t id : sampler.ids())
        heap.push(k.dot(output.weight.row(id), h, dim) + output.bias.value[id], id);
      heap.finish();
    }
  });
}

void predict_scores(const Network& net, const FeatureMatrix& X, float* out, bool softmax,
                    int n_threads, const StopCheck& should_stop) {
  const int64_t dim = net.last_hidden_size();
  const int64_t n_labels = net.n_labels();
  const Layer& output = net.output;
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  for_row_blocks(X.n_rows, row_block, n_threads, should_stop, [&](int64_t first, int64_t last) {
    HiddenActivations scratch(net);
    std::vector<float> h(row_block * dim);
    const int64_t n = last - first;
    hidden_block(net, X, first, last, scratch, h.data());
    float* block_out = out + first * n_labels;
    for (int64_t c = 0; c < n_labels; c += kLabelBlock) {
      const int64_t width = std::min(kLabelBlock, n_labels - c);
      kernels().score_block(h.data(), n, output.weight.row(c), output.bias.value + c, width, dim,
                            block_out + c, n_labels);
    }
    if (!softmax) return;
    for (int64_t r = 0; r < n; ++r) {
      float* row = block_out + r * n_labels;
      const float max_logit = *std::max_element(row, row + n_labels);
      double norm = 0.0;
      for (int64_t j = 0; j < n_labels; ++j) {
        row[j] = std::exp(row[j] - max_logit);
        norm += row[j];
      }
      const float inv = static_cast<float>(1.0 / norm);
      for (int64_t j = 0; j < n_labels; ++j) row[j] *= inv;
    }
  });
}

void transform_hidden(const Network& net, const FeatureMatrix& X, float* out, int n_threads) {
  const int64_t dim = net.last_hidden_size();
  for_row_blocks(X.n_rows, row_block_for(X.n_rows, n_threads), n_threads, nullptr,
                 [&](int64_t first, int64_t last) {
    HiddenActivations scratch(net);
    hidden_block(net, X, first, last, scratch, out + first * dim);
  });
}

}  // namespace slide
