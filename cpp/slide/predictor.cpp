#include "slide/predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
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

using ScoreBlockFn = decltype(Kernels::score_block);

ScoreBlockFn score_block_for(const OutputScoring& scoring) {
  const Kernels& k = kernels();
  return scoring.precision == Precision::kBfloat16 ? k.score_block_bf16 : k.score_block;
}

// Pushes the scores that reach the heap's threshold, scores[j] labelled label(j);
// the SIMD search skips the bulk of them (below the k-th best so far).
template <typename LabelOf>
void push_candidates(const Kernels& k, const float* scores, int64_t n, LabelOf label, TopK& heap) {
  float threshold = heap.threshold();
  for (int64_t j = k.first_at_least(scores, n, threshold); j < n;
       j += 1 + k.first_at_least(scores + j + 1, n - j - 1, threshold)) {
    heap.push(scores[j], label(j));
    threshold = heap.threshold();
  }
}

// Packs the output layer into `packed` with the given kernels, panels split between threads.
void pack_output_with(const Kernels& k, const Layer& output, int64_t dim, uint32_t* packed,
                      int n_threads) {
  const int64_t n_labels = output.n_out();
  const int64_t n_panels = (n_labels + kBf16PanelWidth - 1) / kBf16PanelWidth;
  const int64_t words = bf16_panel_words(dim);
  constexpr int64_t kPanelsPerTask = 64;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int64_t first = 0; first < n_panels; first += kPanelsPerTask) {
    const int64_t c = first * kBf16PanelWidth;
    const int64_t width = std::min(kPanelsPerTask * kBf16PanelWidth, n_labels - c);
    k.pack_bf16_panels(output.weight.row(c), width, dim, packed + first * words);
  }
}

// Scores of blocks of rows against the whole output layer, label block by label
// block. With native bfloat16 kernels the scores come from the packed layer: the
// caller's (packed once per model), else packed here once for the call (in
// parallel) instead of once per row block; everything else scores the float32
// weights directly.
class OutputLayerScorer {
 public:
  OutputLayerScorer(const Layer& output, int64_t dim, const OutputScoring& scoring, int n_threads)
      : output_(output), dim_(dim), kernels_(kernels()), precision_(scoring.precision) {
    if (precision_ != Precision::kBfloat16 || !kernels_.pack_bf16_panels) return;
    packed_ = scoring.packed_bf16;
    if (packed_) return;
    own_packed_.resize(static_cast<size_t>(bf16_packed_words(output.n_out(), dim)));
    pack_output_with(kernels_, output, dim, own_packed_.data(), n_threads);
    packed_ = own_packed_.data();
  }

  // out[r * out_stride + j] = score of row r of h (n x dim) against neuron c + j,
  // j < width; c is a multiple of kLabelBlock.
  void score(const float* h, int64_t n, int64_t c, int64_t width, float* out,
             int64_t out_stride) const {
    const float* bias = output_.bias.value + c;
    if (packed_) {
      kernels_.score_packed_bf16(h, n, packed_ + c / kBf16PanelWidth * bf16_panel_words(dim_),
                                 bias, width, dim_, out, out_stride);
    } else if (precision_ == Precision::kBfloat16) {
      kernels_.score_block_bf16(h, n, output_.weight.row(c), bias, width, dim_, out, out_stride);
    } else {
      kernels_.score_block(h, n, output_.weight.row(c), bias, width, dim_, out, out_stride);
    }
  }

 private:
  static_assert(kLabelBlock % kBf16PanelWidth == 0, "label blocks start on a packed panel");
  const Layer& output_;
  int64_t dim_;
  const Kernels& kernels_;  // one set for the whole call, even if another is selected meanwhile
  Precision precision_;
  const uint32_t* packed_ = nullptr;  // null: score the float32 weights
  std::vector<uint32_t> own_packed_;
};

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

int64_t packed_output_bf16_words(const Network& net) {
  if (!kernels().pack_bf16_panels) return 0;
  return bf16_packed_words(net.n_labels(), net.last_hidden_size());
}

bool pack_output_bf16(const Network& net, uint32_t* packed, int n_threads) {
  const Kernels& k = kernels();
  if (!k.pack_bf16_panels) return false;
  pack_output_with(k, net.output, net.last_hidden_size(), packed, n_threads);
  return true;
}

void predict_topk_exact(const Network& net, const FeatureMatrix& X, TopKOutput out,
                        const OutputScoring& scoring, int n_threads,
                        const StopCheck& should_stop) {
  const int64_t dim = net.last_hidden_size();
  const int64_t n_labels = net.n_labels();
  const Layer& output = net.output;
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  const OutputLayerScorer scorer(output, dim, scoring, n_threads);
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
      scorer.score(h.data(), n, c, width, scores.data(), kLabelBlock);
      for (int64_t r = 0; r < n; ++r) {
        push_candidates(k, scores.data() + r * kLabelBlock, width,
                        [c](int64_t j) { return static_cast<int32_t>(c + j); }, heaps[r]);
      }
    }
    for (TopK& heap : heaps) heap.finish();
  });
}

namespace {

// A set of labels (a cluster, an LSH candidate set) scored for some rows of a
// block: their weight rows are gathered once into a contiguous panel, then scored
// against all those rows by the blocked kernel (the best clusters are shared by
// many rows). The same kernel chain as exact scoring, so a label's score is the
// same bits whichever path scored it, and does not depend on the other rows.
class GatheredScorer {
 public:
  GatheredScorer(const Layer& output, int64_t dim, int64_t max_rows, ScoreBlockFn score_block)
      : output_(output), dim_(dim), score_block_(score_block), panel_(kLabelBlock * dim),
        panel_bias_(kLabelBlock), packed_h_(max_rows * dim), scores_(max_rows * kLabelBlock) {}

  // Pushes the scores of labels ids[0..size) of rows rows[0..n_rows) of h
  // (row-major, dim wide) into heaps[row].
  void score(const int32_t* ids, int64_t size, const int32_t* rows, int64_t n_rows,
             const float* h, std::vector<TopK>& heaps) {
    for (int64_t i = 0; i < n_rows; ++i)
      std::copy(h + rows[i] * dim_, h + (rows[i] + 1) * dim_, packed_h_.data() + i * dim_);
    for (int64_t start = 0; start < size; start += kLabelBlock) {
      const int64_t width = std::min(kLabelBlock, size - start);
      for (int64_t j = 0; j < width; ++j) {
        const int32_t id = ids[start + j];
        std::copy(output_.weight.row(id), output_.weight.row(id) + dim_, panel_.data() + j * dim_);
        panel_bias_[j] = output_.bias.value[id];
      }
      score_block_(packed_h_.data(), n_rows, panel_.data(), panel_bias_.data(), width, dim_,
                   scores_.data(), kLabelBlock);
      for (int64_t i = 0; i < n_rows; ++i) {
        push_candidates(kernels(), scores_.data() + i * kLabelBlock, width,
                        [&](int64_t j) { return ids[start + j]; }, heaps[rows[i]]);
      }
    }
  }

 private:
  const Layer& output_;
  int64_t dim_;
  ScoreBlockFn score_block_;
  std::vector<float> panel_, panel_bias_, packed_h_, scores_;
};

}  // namespace

void predict_topk_lsh(const Network& net, const HashTables& tables, const LshQuery& query,
                      const FeatureMatrix& X, TopKOutput out, const OutputScoring& scoring,
                      int n_threads, const StopCheck& should_stop) {
  const auto family = make_hash_family(query.hash_kind, static_cast<int>(net.last_hidden_size()),
                                       query.codes_per_table, tables.n_tables, query.hash_seed);
  const int64_t dim = net.last_hidden_size();
  // Large blocks: each one allocates a sampler with a marker per label.
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  for_row_blocks(X.n_rows, row_block, n_threads, should_stop, [&](int64_t first, int64_t last) {
    HiddenActivations scratch(net);
    const int64_t n = last - first;
    std::vector<float> h(n * dim);
    hidden_block(net, X, first, last, scratch, h.data());
    BucketScratch bucket_scratch(*family);
    std::vector<uint32_t> buckets(tables.n_tables);
    ActiveSetSampler sampler(net.n_labels());
    GatheredScorer scorer(net.output, dim, 1, score_block_for(scoring));
    std::vector<TopK> heaps;
    for (int64_t r = 0; r < n; ++r)
      heaps.emplace_back(out.labels + (first + r) * out.k, out.scores + (first + r) * out.k, out.k);
    for (int64_t r = 0; r < n; ++r) {
      bucket_indices_of(*family, tables.table_bits, h.data() + r * dim, bucket_scratch,
                        buckets.data());
      sampler.build_for_inference(tables, buckets.data(), query.max_candidates, query.fallback,
                                  query.n_fallback, out.k);
      const int32_t row = static_cast<int32_t>(r);
      scorer.score(sampler.ids().data(), static_cast<int64_t>(sampler.ids().size()), &row, 1,
                   h.data(), heaps);
    }
    for (TopK& heap : heaps) heap.finish();
  });
}

namespace {

// Clusters in decreasing score (ties: lower index first): the first n_first by
// one pass with a running top-n_first (most scores fail its threshold at once),
// the rest by a full sort only when a row needs more (its clusters held < k labels).
class ClusterOrder {
 public:
  explicit ClusterOrder(int64_t n_clusters, int64_t n_first)
      : n_first_(n_first), order_(n_clusters), best_scores_(n_first) {}

  const std::vector<int32_t>& rank(const float* scores) {
    const int64_t n_clusters = static_cast<int64_t>(order_.size());
    TopK best(order_.data(), best_scores_.data(), n_first_);
    float threshold = best.threshold();
    for (int64_t c = 0; c < n_clusters; ++c) {
      if (!(scores[c] < threshold)) {  // NaN passes: push ranks it last
        best.push(scores[c], static_cast<int32_t>(c));
        threshold = best.threshold();
      }
    }
    best.finish();
    scores_ = scores;
    return order_;
  }

  void rank_rest() {
    std::vector<char> taken(order_.size(), 0);
    for (int64_t i = 0; i < n_first_; ++i) taken[order_[i]] = 1;
    int64_t next = n_first_;
    for (int64_t c = 0; c < static_cast<int64_t>(order_.size()); ++c)
      if (!taken[c]) order_[next++] = static_cast<int32_t>(c);
    // TopK's ranking (ties: lower index first); NaN (a damaged model) ranks
    // last, as TopK::push ranks it, keeping the order a strict weak ordering.
    const float* scores = scores_;
    const auto key = [scores](int32_t c) {
      return std::isnan(scores[c]) ? -std::numeric_limits<float>::infinity() : scores[c];
    };
    std::sort(order_.begin() + n_first_, order_.end(), [&key](int32_t a, int32_t b) {
      return TopK::worse(key(b), b, key(a), a);
    });
  }

 private:
  int64_t n_first_;
  std::vector<int32_t> order_;
  std::vector<float> best_scores_;
  const float* scores_ = nullptr;
};

}  // namespace

void predict_topk_clustered(const Network& net, const LabelClusters& clusters, int64_t n_probes,
                            const FeatureMatrix& X, TopKOutput out, const OutputScoring& scoring,
                            int n_threads, const StopCheck& should_stop) {
  const auto members = [&clusters](int32_t c) { return clusters.ids + clusters.offsets[c]; };
  const auto cluster_size = [&clusters](int32_t c) -> int64_t {
    return clusters.offsets[c + 1] - clusters.offsets[c];
  };
  const int64_t dim = net.last_hidden_size();
  const int64_t n_clusters = clusters.n_clusters;
  const int64_t n_first = std::min(n_probes, n_clusters);
  // Smaller blocks than exact scoring: the block's cluster scores must stay in L2.
  const int64_t row_block = std::min<int64_t>(64, row_block_for(X.n_rows, n_threads));
  for_row_blocks(X.n_rows, row_block, n_threads, should_stop, [&](int64_t first, int64_t last) {
    const ScoreBlockFn score_block = score_block_for(scoring);
    HiddenActivations scratch(net);
    const int64_t n = last - first;
    std::vector<float> h(n * dim);
    std::vector<float> cluster_scores(n * n_clusters);
    hidden_block(net, X, first, last, scratch, h.data());
    for (int64_t c = 0; c < n_clusters; c += kLabelBlock) {
      score_block(h.data(), n, clusters.centroid_weights + c * dim, clusters.centroid_biases + c,
                  std::min(kLabelBlock, n_clusters - c), dim, cluster_scores.data() + c,
                  n_clusters);
    }
    // (cluster, row) for each row's n_first best clusters, grouped by cluster.
    ClusterOrder order(n_clusters, n_first);
    std::vector<std::pair<int32_t, int32_t>> probes;
    probes.reserve(n * n_first);
    std::vector<int64_t> n_scored(n, 0);
    for (int64_t r = 0; r < n; ++r) {
      const std::vector<int32_t>& ranked = order.rank(cluster_scores.data() + r * n_clusters);
      for (int64_t i = 0; i < n_first; ++i) {
        probes.emplace_back(ranked[i], static_cast<int32_t>(r));
        n_scored[r] += cluster_size(ranked[i]);
      }
    }
    std::sort(probes.begin(), probes.end());
    std::vector<TopK> heaps;
    for (int64_t r = 0; r < n; ++r)
      heaps.emplace_back(out.labels + (first + r) * out.k, out.scores + (first + r) * out.k, out.k);
    GatheredScorer scorer(net.output, dim, n, score_block);
    std::vector<int32_t> rows;
    for (size_t i = 0; i < probes.size();) {
      const int32_t cluster = probes[i].first;
      rows.clear();
      for (; i < probes.size() && probes[i].first == cluster; ++i) rows.push_back(probes[i].second);
      scorer.score(members(cluster), cluster_size(cluster), rows.data(),
                   static_cast<int64_t>(rows.size()), h.data(), heaps);
    }
    // Rare: rows whose probed clusters held fewer than k labels take further
    // clusters, best first, until they have k.
    for (int64_t r = 0; r < n; ++r) {
      if (n_scored[r] >= out.k) continue;
      const std::vector<int32_t>& ranked = order.rank(cluster_scores.data() + r * n_clusters);
      order.rank_rest();
      const int32_t row = static_cast<int32_t>(r);
      for (int64_t i = n_first; i < n_clusters && n_scored[r] < out.k; ++i) {
        scorer.score(members(ranked[i]), cluster_size(ranked[i]), &row, 1, h.data(), heaps);
        n_scored[r] += cluster_size(ranked[i]);
      }
    }
    for (TopK& heap : heaps) heap.finish();
  });
}

void predict_scores(const Network& net, const FeatureMatrix& X, float* out, bool softmax,
                    const OutputScoring& scoring, int n_threads, const StopCheck& should_stop) {
  const int64_t dim = net.last_hidden_size();
  const int64_t n_labels = net.n_labels();
  const Layer& output = net.output;
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  const OutputLayerScorer scorer(output, dim, scoring, n_threads);
  for_row_blocks(X.n_rows, row_block, n_threads, should_stop, [&](int64_t first, int64_t last) {
    HiddenActivations scratch(net);
    std::vector<float> h(row_block * dim);
    const int64_t n = last - first;
    hidden_block(net, X, first, last, scratch, h.data());
    float* block_out = out + first * n_labels;
    for (int64_t c = 0; c < n_labels; c += kLabelBlock) {
      const int64_t width = std::min(kLabelBlock, n_labels - c);
      scorer.score(h.data(), n, c, width, block_out + c, n_labels);
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

}  // namespace slide
