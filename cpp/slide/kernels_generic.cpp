// Portable kernels: plain loops with a fixed summation order (the oracle).
#include <cmath>

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

const Kernels kGenericKernels = {"generic", dot_generic, axpy_generic, score_block_generic,
                                 adam_generic};

}  // namespace slide
