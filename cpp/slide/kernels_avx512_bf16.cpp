// score_block_bf16 with the AVX512_BF16 dot-product instruction (vdpbf16ps: per
// float32 lane, acc += a0*b0 + a1*b1 over a pair of bfloat16 values), twice the
// multiply-adds per instruction of the float32 kernel and half the panel bytes.
// Compiled with -mavx512bf16; only called when the CPU has it.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "slide/kernels.h"
#include "slide/kernels_avx512_panel_store.h"
#include "slide/kernels_bf16_pack.h"

namespace slide {
namespace {

constexpr int64_t kPanel = kBf16PanelWidth;  // 4 registers of 16 float32 lanes
static_assert(kPanel == 64, "score_rows_panel_bf16 holds a panel in 4 registers");

// R packed rows (row i at rows + i * stride) against one packed panel, over the
// first `pairs` pairs. Same structure as the float32 panel kernel: every (row,
// neuron) score is one chain over the pairs, so it does not depend on the block.
template <int R>
void score_rows_panel_bf16(const uint32_t* rows, int64_t stride, int64_t pairs,
                           const uint32_t* panel, const float* bias, int64_t width, float* out,
                           int64_t out_stride) {
  __m512 acc[R][4];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const uint32_t* w = panel + p * kPanel;
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(w);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(w + 16);
    const __m512bh w2 = (__m512bh)_mm512_loadu_si512(w + 32);
    const __m512bh w3 = (__m512bh)_mm512_loadu_si512(w + 48);
    for (int i = 0; i < R; ++i) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(static_cast<int>(rows[i * stride + p]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], x, w0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], x, w1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], x, w2);
      acc[i][3] = _mm512_dpbf16_ps(acc[i][3], x, w3);
    }
  }
  store_panel_scores<R>(acc, bias, width, out, out_stride);
}

}  // namespace

void pack_bf16_panels_avx512bf16(const float* weights, int64_t n_cols, int64_t dim,
                                 uint32_t* panels) {
  pack_panels(weights, n_cols, dim, panels);
}

void score_packed_bf16_avx512bf16(const float* rows, int64_t n_rows, const uint32_t* panels,
                                  const float* bias, int64_t n_cols, int64_t dim, float* out,
                                  int64_t out_stride) {
  const int64_t stride = bf16_panel_pairs(dim);  // row stride of the packed rows
  const int64_t pairs = (dim + 1) / 2;            // the padding pairs add nothing: skipped
  const uint32_t* packed_rows = pack_rows(rows, n_rows, n_rows, dim);
  const int64_t words = bf16_panel_words(dim);
  for (int64_t c = 0; c < n_cols; c += kPanel) {
    const int64_t width = std::min(kPanel, n_cols - c);
    const uint32_t* panel = panels + (c / kPanel) * words;
    const float* b = bias ? bias + c : nullptr;
    int64_t r = 0;
    for (; r + 4 <= n_rows; r += 4)
      score_rows_panel_bf16<4>(packed_rows + r * stride, stride, pairs, panel, b, width,
                               out + r * out_stride + c, out_stride);
    for (; r < n_rows; ++r)
      score_rows_panel_bf16<1>(packed_rows + r * stride, stride, pairs, panel, b, width,
                               out + r * out_stride + c, out_stride);
  }
}

void score_block_bf16_avx512bf16(const float* rows, int64_t n_rows, const float* weights,
                                 const float* bias, int64_t n_cols, int64_t dim, float* out,
                                 int64_t out_stride) {
  pack_and_score<score_packed_bf16_avx512bf16>(rows, n_rows, weights, bias, n_cols, dim, out,
                                               out_stride);
}

}  // namespace slide
