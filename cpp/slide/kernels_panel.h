// The driver shared by the SIMD score_block kernels: transpose each panel of
// Panel neurons once (dim x Panel, zero-padded), then score the input rows
// against it four at a time, then one at a time. The per-ISA kernels supply
// RowsPanel<R>, the register-blocked inner loop. With RoundToBf16, rows and
// weights are rounded to bfloat16 on the way in (the emulated score_block_bf16).
//
// Internal linkage on purpose: each kernel translation unit is compiled with
// its own ISA flags, so each must keep its own copy of this code (a shared,
// linker-merged instantiation could run AVX-512 code on an AVX2-only CPU).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "slide/bf16.h"

namespace slide {
namespace {

using RowsPanelFn = void (*)(const float* rows, int64_t dim, const float* panel, const float* bias,
                             int64_t width, float* out, int64_t out_stride);

template <int64_t Panel, RowsPanelFn Rows4, RowsPanelFn Rows1, bool RoundToBf16 = false>
void score_block_by_panels(const float* rows, int64_t n_rows, const float* weights,
                           const float* bias, int64_t n_cols, int64_t dim, float* out,
                           int64_t out_stride) {
  thread_local std::vector<float> panel;
  panel.assign(static_cast<size_t>(dim * Panel), 0.f);
  if (RoundToBf16) {
    thread_local std::vector<float> rounded_rows;
    rounded_rows.resize(static_cast<size_t>(n_rows * dim));
    for (int64_t i = 0; i < n_rows * dim; ++i) rounded_rows[i] = round_to_bf16(rows[i]);
    rows = rounded_rows.data();
  }
  for (int64_t c = 0; c < n_cols; c += Panel) {
    const int64_t width = std::min(Panel, n_cols - c);
    for (int64_t j = 0; j < width; ++j) {
      const float* w = weights + (c + j) * dim;
      for (int64_t d = 0; d < dim; ++d)
        panel[d * Panel + j] = RoundToBf16 ? round_to_bf16(w[d]) : w[d];
    }
    for (int64_t j = width; j < Panel; ++j)
      for (int64_t d = 0; d < dim; ++d) panel[d * Panel + j] = 0.f;
    const float* b = bias ? bias + c : nullptr;
    int64_t r = 0;
    for (; r + 4 <= n_rows; r += 4)
      Rows4(rows + r * dim, dim, panel.data(), b, width, out + r * out_stride + c, out_stride);
    for (; r < n_rows; ++r)
      Rows1(rows + r * dim, dim, panel.data(), b, width, out + r * out_stride + c, out_stride);
  }
}

}  // namespace
}  // namespace slide
