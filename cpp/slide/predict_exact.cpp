#include "slide/predictor.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "slide/row_blocks.h"

namespace slide {

void predict_topk_exact(const Network& net, const FeatureMatrix& X, TopKOutput out,
                        const OutputScoring& scoring, int n_threads,
                        const StopCheck& should_stop) {
  const int64_t n_labels = net.n_labels();
  const OutputLayerScorer scorer(net.output, net.last_hidden_size(), scoring, n_threads);
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  for_hidden_blocks(net, X, row_block, n_threads, should_stop,
                    [&](int64_t first, int64_t n, const float* h) {
    const Kernels& k = kernels();
    std::vector<float> scores(n * kLabelBlock);
    std::vector<TopK> heaps = row_heaps(out, first, n);
    for (int64_t c = 0; c < n_labels; c += kLabelBlock) {
      const int64_t width = std::min(kLabelBlock, n_labels - c);
      scorer.score(h, n, c, width, scores.data(), kLabelBlock);
      for (int64_t r = 0; r < n; ++r) {
        push_candidates(k, scores.data() + r * kLabelBlock, width,
                        [c](int64_t j) { return static_cast<int32_t>(c + j); }, heaps[r]);
      }
    }
    for (TopK& heap : heaps) heap.finish();
  });
}

void predict_scores(const Network& net, const FeatureMatrix& X, float* out, bool softmax,
                    const OutputScoring& scoring, int n_threads, const StopCheck& should_stop) {
  const int64_t n_labels = net.n_labels();
  const OutputLayerScorer scorer(net.output, net.last_hidden_size(), scoring, n_threads);
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  for_hidden_blocks(net, X, row_block, n_threads, should_stop,
                    [&](int64_t first, int64_t n, const float* h) {
    float* block_out = out + first * n_labels;
    for (int64_t c = 0; c < n_labels; c += kLabelBlock) {
      const int64_t width = std::min(kLabelBlock, n_labels - c);
      scorer.score(h, n, c, width, block_out + c, n_labels);
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
