// Packing of float32 values into bfloat16 pairs, the operand layout of the
// native bfloat16 kernels (AVX512_BF16 and AMX): word p of a packed vector holds
// coordinates 2p (low half) and 2p + 1 (high half), rounded to nearest even.
//
// Internal linkage on purpose (see kernels_panel.h): only translation units
// compiled with -mavx512bf16 include this.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "slide/kernels.h"

namespace slide {
namespace {

// Packs values[0..dim) into pairs (the odd tail paired with a zero), pair p at
// pairs[p * stride]: 32 values per conversion instruction, then a store or, for
// the strided panel layout, a scatter.
void pack_pairs(const float* values, int64_t dim, uint32_t* pairs, int64_t stride) {
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int>(stride)));
  for (int64_t d = 0; d < dim; d += 32) {
    const int64_t left = std::min<int64_t>(32, dim - d);
    const __mmask16 lo_mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
    const __mmask16 hi_mask =
        left >= 32 ? __mmask16(0xFFFF)
                   : left > 16 ? static_cast<__mmask16>((1u << (left - 16)) - 1u) : __mmask16(0);
    const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, values + d);
    const __m512 hi = _mm512_maskz_loadu_ps(hi_mask, values + d + 16);
    // Word q holds the bfloat16 values of coordinates d + 2q (low half) and d + 2q + 1.
    const __m512i words = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const int64_t n_pairs = (left + 1) / 2;
    const __mmask16 pair_mask =
        n_pairs >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << n_pairs) - 1u);
    uint32_t* first = pairs + (d / 2) * stride;
    if (stride == 1)
      _mm512_mask_storeu_epi32(first, pair_mask, words);
    else
      _mm512_mask_i32scatter_epi32(first, pair_mask, offsets, words, 4);
  }
}

// Panels of the weights of neurons [0, n_cols) (layout: kernels.h).
void pack_panels(const float* weights, int64_t n_cols, int64_t dim, uint32_t* panels) {
  const int64_t words = bf16_panel_words(dim);
  for (int64_t c = 0; c < n_cols; c += kBf16PanelWidth) {
    uint32_t* panel = panels + (c / kBf16PanelWidth) * words;
    std::fill(panel, panel + words, 0u);
    const int64_t width = std::min(kBf16PanelWidth, n_cols - c);
    for (int64_t j = 0; j < width; ++j)
      pack_pairs(weights + (c + j) * dim, dim, panel + j, kBf16PanelWidth);
  }
}

// Rows packed contiguously, row r at r * bf16_panel_pairs(dim), zero-padded to
// padded_rows rows; a thread-local buffer reused by the next call.
const uint32_t* pack_rows(const float* rows, int64_t n_rows, int64_t padded_rows, int64_t dim) {
  thread_local std::vector<uint32_t> packed;
  const int64_t pairs = bf16_panel_pairs(dim);
  packed.assign(static_cast<size_t>(padded_rows * pairs), 0u);
  for (int64_t r = 0; r < n_rows; ++r) pack_pairs(rows + r * dim, dim, &packed[r * pairs], 1);
  return packed.data();
}

// score_block_bf16 of a native set: pack the block's panels, then score them.
template <void (*ScorePacked)(const float*, int64_t, const uint32_t*, const float*, int64_t,
                              int64_t, float*, int64_t)>
void pack_and_score(const float* rows, int64_t n_rows, const float* weights, const float* bias,
                    int64_t n_cols, int64_t dim, float* out, int64_t out_stride) {
  thread_local std::vector<uint32_t> panels;
  panels.resize(static_cast<size_t>(bf16_packed_words(n_cols, dim)));
  pack_panels(weights, n_cols, dim, panels.data());
  ScorePacked(rows, n_rows, panels.data(), bias, n_cols, dim, out, out_stride);
}

}  // namespace
}  // namespace slide
