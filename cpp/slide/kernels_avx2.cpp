// AVX2 + FMA kernels. Compiled with -mavx2 -mfma; only called when the CPU has both.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "slide/kernels.h"
#include "slide/kernels_panel.h"

namespace slide {
namespace {

inline float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_avx2(float alpha, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

// Scores as a small GEMM, as in the AVX-512 kernel: a panel of 24 neurons is
// transposed once (dim x 24, zero-padded), then each input row's coordinates are
// broadcast against it. Every (row, neuron) score is the same chain
// acc = fma(x[d], w[d], acc) over d, so a row's result does not depend on its
// position in the block. 24 = 3 registers: 4 rows x 3 accumulators + 3 weights
// + 1 broadcast fit in the 16 ymm registers.
constexpr int64_t kPanel = 24;

template <int R>
void score_rows_panel(const float* rows, int64_t dim, const float* panel, const float* bias,
                      int64_t width, float* out, int64_t out_stride) {
  __m256 acc[R][3];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < 3; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t d = 0; d < dim; ++d) {
    const float* p = panel + d * kPanel;
    const __m256 w0 = _mm256_loadu_ps(p), w1 = _mm256_loadu_ps(p + 8);
    const __m256 w2 = _mm256_loadu_ps(p + 16);
    for (int i = 0; i < R; ++i) {
      const __m256 x = _mm256_broadcast_ss(rows + i * dim + d);
      acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
      acc[i][2] = _mm256_fmadd_ps(x, w2, acc[i][2]);
    }
  }
  for (int i = 0; i < R; ++i) {
    alignas(32) float scores[kPanel];
    for (int j = 0; j < 3; ++j) _mm256_store_ps(scores + 8 * j, acc[i][j]);
    for (int64_t j = 0; j < width; ++j)
      out[i * out_stride + j] = scores[j] + (bias ? bias[j] : 0.f);
  }
}

void score_block_avx2(const float* rows, int64_t n_rows, const float* weights, const float* bias,
                      int64_t n_cols, int64_t dim, float* out, int64_t out_stride) {
  score_block_by_panels<kPanel, score_rows_panel<4>, score_rows_panel<1>>(
      rows, n_rows, weights, bias, n_cols, dim, out, out_stride);
}

void score_block_bf16_avx2(const float* rows, int64_t n_rows, const float* weights,
                            const float* bias, int64_t n_cols, int64_t dim, float* out,
                            int64_t out_stride) {
  score_block_by_panels<kPanel, score_rows_panel<4>, score_rows_panel<1>, true>(
      rows, n_rows, weights, bias, n_cols, dim, out, out_stride);
}

int64_t first_at_least_avx2(const float* x, int64_t n, float threshold) {
  const __m256 t = _mm256_set1_ps(threshold);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_GE_OQ));
    if (hits) return i + __builtin_ctz(static_cast<unsigned>(hits));
  }
  while (i < n && !(x[i] >= threshold)) ++i;
  return i;
}

void adam_avx2(float* w, float* m, float* v, float* g, int64_t n, const AdamCoefficients& c) {
  const __m256 d1 = _mm256_set1_ps(c.decay1), d2 = _mm256_set1_ps(c.decay2);
  const __m256 c1 = _mm256_set1_ps(c.one_minus_beta1), c2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 lr = _mm256_set1_ps(c.lr), eps = _mm256_set1_ps(c.epsilon);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    // Same operation order as the generic kernel (mul then add, no FMA) so
    // results agree to the last bit except for sqrt/div rounding (exact in IEEE).
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(d1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, gi));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(d2, _mm256_loadu_ps(v + i)),
                                    _mm256_mul_ps(c2, _mm256_mul_ps(gi, gi)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 step = _mm256_div_ps(_mm256_mul_ps(lr, mi), _mm256_add_ps(_mm256_sqrt_ps(vi), eps));
    _mm256_storeu_ps(w + i, _mm256_sub_ps(_mm256_loadu_ps(w + i), step));
    _mm256_storeu_ps(g + i, _mm256_setzero_ps());
  }
  for (; i < n; ++i) {
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

// DWTA bins stay scalar here: an 8-lane gather per bin does not beat the loop.
const Kernels kAvx2Kernels = {"avx2",    dot_avx2,  axpy_avx2,           score_block_avx2,
                              score_block_bf16_avx2, first_at_least_avx2,
                              nullptr,               nullptr,
                              adam_avx2, argmax_bins_portable, argmax_bins_block_portable};

}  // namespace slide
