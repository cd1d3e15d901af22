#include "slide/output_scorer.h"

#include <algorithm>

namespace slide {
namespace {

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

}  // namespace

ScoreBlockFn score_block_for(const OutputScoring& scoring) {
  const Kernels& k = kernels();
  return scoring.precision == Precision::kBfloat16 ? k.score_block_bf16 : k.score_block;
}

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

OutputLayerScorer::OutputLayerScorer(const Layer& output, int64_t dim,
                                     const OutputScoring& scoring, int n_threads)
    : output_(output), dim_(dim), kernels_(kernels()), precision_(scoring.precision) {
  if (precision_ != Precision::kBfloat16 || !kernels_.pack_bf16_panels) return;
  packed_ = scoring.packed_bf16;
  if (packed_) return;
  own_packed_.resize(static_cast<size_t>(bf16_packed_words(output.n_out(), dim)));
  pack_output_with(kernels_, output, dim, own_packed_.data(), n_threads);
  packed_ = own_packed_.data();
}

void GatheredScorer::score(const int32_t* ids, int64_t size, const int32_t* rows,
                           int64_t n_rows, const float* h, std::vector<TopK>& heaps) {
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

}  // namespace slide
