// The per-label linear re-ranker: after the network is trained, each label gets
// an L2-regularised squared-hinge linear model on the input features, trained
// only on the rows whose shortlist (the network's top labels) or true labels
// hold it. At prediction the models score the network's shortlist of each row.
// Linear models see every feature directly, where the network sees them through
// a 128-wide bottleneck: on bag-of-words data they recover the rare, specific
// words the bottleneck loses (the strength of the tree libraries' leaves).
// Rows are L2-normalised inside the engine; every model has a bias.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/csr_view.h"
#include "slide/stop_poll.h"

namespace slide {

struct RerankerOptions {
  double C = 1.0;           // inverse regularisation strength (LIBLINEAR's C)
  int max_iter = 20;        // dual coordinate descent passes per label, at most
  double tol = 0.1;         // stop when the projected gradients' spread is below this
  float prune = 0.1f;       // weights with |w| <= prune are dropped (not the bias)
  uint64_t seed = 0;        // order of the coordinate passes (per label, thread-free)
};

// Label-major CSR of weights (row l: label l's kept features) and one bias per label.
struct LinearWeights {
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<float> values;
  std::vector<float> bias;
};

struct LinearWeightsView {
  const int64_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* values = nullptr;
  const float* bias = nullptr;
  int64_t n_labels = 0;
  int64_t n_features = 0;
};

// shortlist: n_rows x shortlist_k label ids (ids outside [0, n_labels), e.g. -1,
// are skipped); Y: the true labels of each row (positives). Deterministic for
// a given seed whatever n_threads.
LinearWeights train_linear_reranker(const FeatureMatrix& X, const LabelMatrix& Y,
                                    const int32_t* shortlist, int64_t shortlist_k,
                                    int64_t n_labels, const RerankerOptions& options,
                                    int n_threads, const StopCheck& should_stop);

// scores[r * k + j] = w_l . x_r / |x_r| + b_l for l = labels[r * k + j] (labels
// outside [0, n_labels) score -inf).
void linear_scores(const LinearWeightsView& weights, const FeatureMatrix& X,
                   const int32_t* labels, int64_t k, float* scores, int n_threads,
                   const StopCheck& should_stop);

}  // namespace slide
