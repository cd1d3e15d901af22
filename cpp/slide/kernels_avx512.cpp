// AVX-512F kernels. Compiled with -mavx512f (and friends); only called when the CPU has them.
#include <immintrin.h>

#include "slide/kernels.h"

namespace slide {
namespace {

float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i + 16 <= n; i += 16)
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  if (i < n) {  // masked tail instead of a scalar loop
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void axpy_avx512(float alpha, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
                                          _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// One input against one neuron with exactly the block path's summation order, so
// a row's scores do not depend on where it falls in a block.
inline float block_order_dot(const float* x, const float* w, int64_t full, __mmask16 tail) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < full; i += 16)
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc);
  if (tail)
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w + full), _mm512_maskz_loadu_ps(tail, x + full),
                          acc);
  return _mm512_reduce_add_ps(acc);
}

// Four inputs against one neuron at a time (see the AVX2 version).
void score_block_avx512(const float* rows, int64_t n_rows, const float* weights,
                        const float* bias, int64_t n_cols, int64_t dim, float* out,
                        int64_t out_stride) {
  const int64_t full = dim & ~int64_t{15};
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim - full)) - 1u);
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4) {
    const float* x0 = rows + r * dim;
    const float* x1 = x0 + dim;
    const float* x2 = x1 + dim;
    const float* x3 = x2 + dim;
    for (int64_t j = 0; j < n_cols; ++j) {
      const float* w = weights + j * dim;
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
      __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
      for (int64_t i = 0; i < full; i += 16) {
        const __m512 wv = _mm512_loadu_ps(w + i);
        a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x0 + i), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x1 + i), a1);
        a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x2 + i), a2);
        a3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x3 + i), a3);
      }
      if (tail) {
        const __m512 wv = _mm512_maskz_loadu_ps(tail, w + full);
        a0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x0 + full), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x1 + full), a1);
        a2 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x2 + full), a2);
        a3 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x3 + full), a3);
      }
      const float b = bias ? bias[j] : 0.f;
      out[r * out_stride + j] = _mm512_reduce_add_ps(a0) + b;
      out[(r + 1) * out_stride + j] = _mm512_reduce_add_ps(a1) + b;
      out[(r + 2) * out_stride + j] = _mm512_reduce_add_ps(a2) + b;
      out[(r + 3) * out_stride + j] = _mm512_reduce_add_ps(a3) + b;
    }
  }
  for (; r < n_rows; ++r) {
    for (int64_t j = 0; j < n_cols; ++j) {
      const float s = block_order_dot(rows + r * dim, weights + j * dim, full, tail);
      out[r * out_stride + j] = s + (bias ? bias[j] : 0.f);
    }
  }
}

void adam_avx512(float* w, float* m, float* v, float* g, int64_t n, const AdamCoefficients& c) {
  const __m512 d1 = _mm512_set1_ps(c.decay1), d2 = _mm512_set1_ps(c.decay2);
  const __m512 c1 = _mm512_set1_ps(c.one_minus_beta1), c2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 lr = _mm512_set1_ps(c.lr), eps = _mm512_set1_ps(c.epsilon);
  for (int64_t i = 0; i < n; i += 16) {
    // Masked tail: one code path for every length.
    const __mmask16 k = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 gi = _mm512_maskz_loadu_ps(k, g + i);
    // mul then add (no FMA), as in the generic kernel.
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(d1, _mm512_maskz_loadu_ps(k, m + i)),
                                    _mm512_mul_ps(c1, gi));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(d2, _mm512_maskz_loadu_ps(k, v + i)),
                                    _mm512_mul_ps(c2, _mm512_mul_ps(gi, gi)));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    const __m512 step = _mm512_div_ps(_mm512_mul_ps(lr, mi), _mm512_add_ps(_mm512_sqrt_ps(vi), eps));
    _mm512_mask_storeu_ps(w + i, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, w + i), step));
    _mm512_mask_storeu_ps(g + i, k, _mm512_setzero_ps());
  }
}

}  // namespace

const Kernels kAvx512Kernels = {"avx512", dot_avx512, axpy_avx512, score_block_avx512,
                                adam_avx512};

}  // namespace slide
