// Scoring with the per-label linear re-ranker: each row is scattered once into
// a dense buffer, then each of its candidate labels' sparse weights is read
// against it.
#include <cmath>
#include <limits>
#include <vector>

#include "slide/linear_reranker.h"
#include "slide/row_blocks.h"

namespace slide {

void linear_scores(const LinearWeightsView& weights, const FeatureMatrix& X,
                   const int32_t* labels, int64_t k, float* scores, int n_threads,
                   const StopCheck& should_stop) {
  const int64_t block = row_block_for(X.n_rows, n_threads);
  for_row_blocks(X.n_rows, block, n_threads, should_stop, [&](int64_t first, int64_t last) {
    std::vector<float> dense(X.n_cols, 0.0f);
    for (int64_t r = first; r < last; ++r) {
      double sq = 0.0;
      for (int64_t p = X.row_begin(r); p < X.row_end(r); ++p) {
        dense[X.indices[p]] = X.data[p];
        sq += static_cast<double>(X.data[p]) * X.data[p];
      }
      const double inv_norm = sq > 0.0 ? 1.0 / std::sqrt(sq) : 0.0;
      for (int64_t j = 0; j < k; ++j) {
        const int32_t label = labels[r * k + j];
        if (label < 0 || label >= weights.n_labels) {
          scores[r * k + j] = -std::numeric_limits<float>::infinity();
          continue;
        }
        double s = 0.0;
        for (int64_t p = weights.indptr[label]; p < weights.indptr[label + 1]; ++p)
          s += static_cast<double>(weights.values[p]) * dense[weights.indices[p]];
        scores[r * k + j] = static_cast<float>(s * inv_norm + weights.bias[label]);
      }
      for (int64_t p = X.row_begin(r); p < X.row_end(r); ++p) dense[X.indices[p]] = 0.0f;
    }
  });
}

}  // namespace slide
