// The last step of the AVX-512 panel kernels (float32 and bfloat16): R rows x 64
// neuron scores held in 4 registers per row, stored with the bias added and the
// panel's unused neurons (beyond `width`) masked off.
//
// Internal linkage on purpose (see kernels_panel.h): only AVX-512 translation
// units include this.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace slide {
namespace {

template <int R>
void store_panel_scores(const __m512 (&acc)[R][4], const float* bias, int64_t width, float* out,
                        int64_t out_stride) {
  for (int j = 0; j < 4; ++j) {
    const int64_t left = width - 16 * j;
    if (left <= 0) break;
    const __mmask16 k = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(k, bias + 16 * j) : _mm512_setzero_ps();
    for (int i = 0; i < R; ++i)
      _mm512_mask_storeu_ps(out + i * out_stride + 16 * j, k, _mm512_add_ps(acc[i][j], b));
  }
}

}  // namespace
}  // namespace slide
