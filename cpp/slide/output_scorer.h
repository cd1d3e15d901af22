// Scoring the output layer: every label of a block of rows (OutputLayerScorer,
// exact and dense scores), or a gathered set of labels (GatheredScorer: a
// cluster, an LSH candidate set), float32 or bfloat16, with the same kernel
// chain so that a label's score is the same bits whichever path scored it.
// Also the bfloat16 packing of the output layer kept beside a model.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/kernels.h"
#include "slide/network.h"
#include "slide/topk.h"

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

constexpr int64_t kLabelBlock = 256;  // output neurons per kernel call (stays in L2)

using ScoreBlockFn = decltype(Kernels::score_block);

// The blocked float32 or bfloat16 kernel of the kernel set in use.
ScoreBlockFn score_block_for(const OutputScoring& scoring);

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

// Scores of blocks of rows against the whole output layer, label block by label
// block. With native bfloat16 kernels the scores come from the packed layer: the
// caller's (packed once per model), else packed here once for the call (in
// parallel) instead of once per row block; everything else scores the float32
// weights directly.
class OutputLayerScorer {
 public:
  OutputLayerScorer(const Layer& output, int64_t dim, const OutputScoring& scoring,
                    int n_threads);

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
             const float* h, std::vector<TopK>& heaps);

 private:
  const Layer& output_;
  int64_t dim_;
  ScoreBlockFn score_block_;
  std::vector<float> panel_, panel_bias_, packed_h_, scores_;
};

}  // namespace slide
