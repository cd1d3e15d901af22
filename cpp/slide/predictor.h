// Inference: exact (every output neuron scored, blocked kernel, top-k per row),
// LSH (only the neurons retrieved from the tables scored), clustered (only the
// neurons of the best-scoring label clusters scored), and dense scores.
// All deterministic per row: a row's result does not depend on the other rows.
#pragma once

#include <cstdint>

#include "slide/csr_view.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"
#include "slide/network.h"
#include "slide/trainer.h"

namespace slide {

// Arithmetic of the output layer's scores: float32, or rows and weights rounded
// to bfloat16 with float32 sums (Kernels::score_block_bf16). Hidden layers are
// always float32.
enum class Precision { kFloat32, kBfloat16 };

struct OutputScoring {
  Precision precision = Precision::kFloat32;
  // Optional, bfloat16 only: the output layer as packed by pack_output_bf16, so
  // that exact scoring does not pack it again for every call. Ignored by kernel
  // sets without native bfloat16 (and by clustered / LSH scoring, which gather).
  const uint32_t* packed_bf16 = nullptr;
};

// Words of the packed output layer for the kernels in use; 0 when they have no
// native bfloat16 (nothing to pack).
int64_t packed_output_bf16_words(const Network& net);
// packed: packed_output_bf16_words(net) words. Returns false (and writes
// nothing) when the kernels in use have no native bfloat16.
bool pack_output_bf16(const Network& net, uint32_t* packed, int n_threads);

struct TopKOutput {
  int32_t* labels;  // n_rows x k, best first, -1 where fewer than k labels exist
  float* scores;    // n_rows x k, output-layer logits
  int64_t k;
};

void predict_topk_exact(const Network& net, const FeatureMatrix& X, TopKOutput out,
                        const OutputScoring& scoring, int n_threads,
                        const StopCheck& should_stop);

struct LshQuery {
  HashKind hash_kind;
  int codes_per_table;
  uint64_t hash_seed;
  int64_t max_candidates;
  const int32_t* fallback;  // labels scored when too few are retrieved (most frequent first)
  int64_t n_fallback;
};

void predict_topk_lsh(const Network& net, const HashTables& tables, const LshQuery& query,
                      const FeatureMatrix& X, TopKOutput out, const OutputScoring& scoring,
                      int n_threads, const StopCheck& should_stop);

// Output neurons grouped by the direction of their weights (built by
// sklearn_slide/_label_clusters.py): cluster c holds ids[offsets[c]..offsets[c+1])
// and is scored like a neuron with weights centroid_weights[c] and bias centroid_biases[c].
struct LabelClusters {
  const float* centroid_weights;  // n_clusters x last_hidden_size
  const float* centroid_biases;   // n_clusters
  int64_t n_clusters;
  const int32_t* offsets;         // n_clusters + 1, from 0 to n_labels
  const int32_t* ids;             // n_labels
};

// Scores the labels of the n_probes best clusters of each row (more clusters, in
// order, while fewer than k labels were scored).
void predict_topk_clustered(const Network& net, const LabelClusters& clusters, int64_t n_probes,
                            const FeatureMatrix& X, TopKOutput out, const OutputScoring& scoring,
                            int n_threads, const StopCheck& should_stop);

// out: n_rows x n_labels logits, or softmax probabilities when `softmax`.
void predict_scores(const Network& net, const FeatureMatrix& X, float* out, bool softmax,
                    const OutputScoring& scoring, int n_threads, const StopCheck& should_stop);

}  // namespace slide
