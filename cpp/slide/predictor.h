// Inference: exact (every output neuron scored, blocked kernel, top-k per row),
// LSH (only the neurons retrieved from the tables scored), and dense scores.
// All deterministic per row: a row's result does not depend on the other rows.
#pragma once

#include <cstdint>

#include "slide/csr_view.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"
#include "slide/network.h"
#include "slide/trainer.h"

namespace slide {

struct TopKOutput {
  int32_t* labels;  // n_rows x k, best first, -1 where fewer than k labels exist
  float* scores;    // n_rows x k, output-layer logits
  int64_t k;
};

void predict_topk_exact(const Network& net, const FeatureMatrix& X, TopKOutput out,
                        int n_threads, const StopCheck& should_stop);

struct LshQuery {
  HashKind hash_kind;
  int codes_per_table;
  uint64_t hash_seed;
  int64_t max_candidates;
  const int32_t* fallback;  // labels scored when too few are retrieved (most frequent first)
  int64_t n_fallback;
};

void predict_topk_lsh(const Network& net, const HashTables& tables, const LshQuery& query,
                      const FeatureMatrix& X, TopKOutput out, int n_threads,
                      const StopCheck& should_stop);

// out: n_rows x n_labels logits, or softmax probabilities when `softmax`.
void predict_scores(const Network& net, const FeatureMatrix& X, float* out, bool softmax,
                    int n_threads, const StopCheck& should_stop);

// out: n_rows x last_hidden_size, the last hidden layer's activations.
void transform_hidden(const Network& net, const FeatureMatrix& X, float* out, int n_threads);

}  // namespace slide
