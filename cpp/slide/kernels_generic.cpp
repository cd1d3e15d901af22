// Portable kernels: plain loops with a fixed summation order (the oracle).
#include <cmath>
#include <limits>
#include <vector>

#include "slide/bf16.h"
#include "slide/kernels.h"

namespace slide {
namespace {

float dot_generic(const float* a, const float* b, int64_t n) {
  // Four partial sums: lets the compiler use SSE2 without reassociating.
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void axpy_generic(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void score_block_generic(const float* rows, int64_t n_rows, const float* weights,
                         const float* bias, int64_t n_cols, int64_t dim, float* out,
                         int64_t out_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t j = 0; j < n_cols; ++j) {
      const float s = dot_generic(rows + r * dim, weights + j * dim, dim);
      out[r * out_stride + j] = bias ? s + bias[j] : s;
    }
  }
}

// The oracle of every score_block_bf16: round, then the float32 loop above.
void score_block_bf16_generic(const float* rows, int64_t n_rows, const float* weights,
                              const float* bias, int64_t n_cols, int64_t dim, float* out,
                              int64_t out_stride) {
  std::vector<float> rounded_rows(static_cast<size_t>(n_rows * dim));
  for (int64_t i = 0; i < n_rows * dim; ++i) rounded_rows[i] = round_to_bf16(rows[i]);
  std::vector<float> rounded_weights(static_cast<size_t>(n_cols * dim));
  for (int64_t i = 0; i < n_cols * dim; ++i) rounded_weights[i] = round_to_bf16(weights[i]);
  score_block_generic(rounded_rows.data(), n_rows, rounded_weights.data(), bias, n_cols, dim, out,
                      out_stride);
}

int64_t first_at_least_generic(const float* x, int64_t n, float threshold) {
  int64_t i = 0;
  while (i < n && !(x[i] >= threshold)) ++i;
  return i;
}

void adam_generic(float* w, float* m, float* v, float* g, int64_t n, const AdamCoefficients& c) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = c.decay1 * m[i] + c.one_minus_beta1 * gi;
    const float vi = c.decay2 * v[i] + c.one_minus_beta2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    w[i] -= c.lr * mi / (std::sqrt(vi) + c.epsilon);
    g[i] = 0.f;
  }
}

}  // namespace

bool argmax_bins_portable(const float* x, const uint32_t* coords, int64_t n_bins, int m,
                          uint32_t* codes, uint32_t empty) {
  bool any_empty = false;
  for (int64_t b = 0; b < n_bins; ++b) {
    const uint32_t* c = coords + b * m;
    // Absent values rank as -inf, below every present one, so a bin without any
    // keeps `empty`; strict '>' keeps the lowest position on ties. The selects
    // compile branch-free: on sparse inputs "is it zero" is a coin flip.
    uint32_t best = empty;
    float best_value = -std::numeric_limits<float>::infinity();
    for (int i = 0; i < m; ++i) {
      const float v = x[c[i]];
      const float key = v != 0.0f ? v : -std::numeric_limits<float>::infinity();
      const bool better = key > best_value;
      best = better ? static_cast<uint32_t>(i) : best;
      best_value = better ? key : best_value;
    }
    codes[b] = best;
    any_empty |= best == empty;
  }
  return any_empty;
}

uint32_t argmax_bins_block_portable(const float* rows, int64_t n_rows, int64_t row_stride,
                                    int64_t /*dim*/, const uint32_t* coords, int64_t n_bins, int m,
                                    uint32_t* codes, uint32_t empty, float* /*scratch*/) {
  std::vector<uint32_t> row_codes(n_bins);
  uint32_t rows_with_empty = 0;
  for (int64_t r = 0; r < n_rows; ++r) {
    if (argmax_bins_portable(rows + r * row_stride, coords, n_bins, m, row_codes.data(), empty))
      rows_with_empty |= 1u << r;
    for (int64_t b = 0; b < n_bins; ++b) codes[b * kArgmaxBlockRows + r] = row_codes[b];
  }
  return rows_with_empty;
}

const Kernels kGenericKernels = {"generic",           dot_generic,
                                 axpy_generic,        score_block_generic,
                                 score_block_bf16_generic, first_at_least_generic,
                                 nullptr,                  nullptr,
                                 adam_generic,
                                 argmax_bins_portable, argmax_bins_block_portable};

}  // namespace slide
