// Inference: exact (every output neuron scored, blocked kernel, top-k per row;
// predict_exact.cpp), clustered (only the neurons of the best-scoring label
// clusters scored; predict_clusters.cpp), and dense scores (predict_exact.cpp).
// All score through output_scorer.h and are deterministic per row: a row's
// result does not depend on the other rows.
#pragma once

#include <cstdint>

#include "slide/csr_view.h"
#include "slide/label_clusters.h"
#include "slide/network.h"
#include "slide/output_scorer.h"
#include "slide/stop_poll.h"

namespace slide {

struct TopKOutput {
  int32_t* labels;  // n_rows x k, best first, -1 where fewer than k labels exist
  float* scores;    // n_rows x k, output-layer logits
  int64_t k;
};

void predict_topk_exact(const Network& net, const FeatureMatrix& X, TopKOutput out,
                        const OutputScoring& scoring, int n_threads,
                        const StopCheck& should_stop);

// Scores the labels of the n_probes best clusters of each row (more clusters, in
// order, while fewer than k labels were scored).
void predict_topk_clustered(const Network& net, const LabelClusters& clusters, int64_t n_probes,
                            const FeatureMatrix& X, TopKOutput out, const OutputScoring& scoring,
                            int n_threads, const StopCheck& should_stop);

// out: n_rows x n_labels logits, or softmax probabilities when `softmax`.
void predict_scores(const Network& net, const FeatureMatrix& X, float* out, bool softmax,
                    const OutputScoring& scoring, int n_threads, const StopCheck& should_stop);

}  // namespace slide
