// AVX2 + FMA kernels. Compiled with -mavx2 -mfma; only called when the CPU has both.
#include <immintrin.h>

#include <cmath>

#include "slide/kernels.h"

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

// One input against one neuron with exactly the block path's summation order, so
// a row's scores do not depend on where it falls in a block.
inline float block_order_dot(const float* x, const float* w, int64_t dim) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc);
  float s = hsum256(acc);
  for (; i < dim; ++i) s += w[i] * x[i];
  return s;
}

// Four inputs against one neuron at a time: each weight vector is loaded once per
// four dot products, which is what bounds the exact output layer.
void score_block_avx2(const float* rows, int64_t n_rows, const float* weights, const float* bias,
                      int64_t n_cols, int64_t dim, float* out, int64_t out_stride) {
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4) {
    const float* x0 = rows + r * dim;
    const float* x1 = x0 + dim;
    const float* x2 = x1 + dim;
    const float* x3 = x2 + dim;
    for (int64_t j = 0; j < n_cols; ++j) {
      const float* w = weights + j * dim;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      int64_t i = 0;
      for (; i + 8 <= dim; i += 8) {
        const __m256 wv = _mm256_loadu_ps(w + i);
        a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), a0);
        a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), a1);
        a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + i), a2);
        a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + i), a3);
      }
      float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
      for (; i < dim; ++i) {
        s0 += w[i] * x0[i];
        s1 += w[i] * x1[i];
        s2 += w[i] * x2[i];
        s3 += w[i] * x3[i];
      }
      const float b = bias ? bias[j] : 0.f;
      out[r * out_stride + j] = s0 + b;
      out[(r + 1) * out_stride + j] = s1 + b;
      out[(r + 2) * out_stride + j] = s2 + b;
      out[(r + 3) * out_stride + j] = s3 + b;
    }
  }
  for (; r < n_rows; ++r) {
    for (int64_t j = 0; j < n_cols; ++j) {
      const float s = block_order_dot(rows + r * dim, weights + j * dim, dim);
      out[r * out_stride + j] = s + (bias ? bias[j] : 0.f);
    }
  }
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
const Kernels kAvx2Kernels = {"avx2",    dot_avx2,  axpy_avx2, score_block_avx2,
                              adam_avx2, argmax_bins_portable};

}  // namespace slide
