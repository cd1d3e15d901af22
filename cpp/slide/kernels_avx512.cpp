// AVX-512F kernels. Compiled with -mavx512f (and friends); only called when the CPU has them.
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "slide/kernels.h"
#include "slide/kernels_avx512_panel_store.h"
#include "slide/kernels_panel.h"

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

// Scores as a small GEMM: a panel of 64 neurons is transposed once (dim x 64,
// zero-padded), then each input row's coordinates are broadcast against it, so
// a (row, neuron) score is a plain chain acc = fma(x[d], w[d], acc) over d,
// with no horizontal reductions. Every score is computed by the same chain, so
// a row's result does not depend on its position in the block (per-row
// determinism), only on the kernel set.
constexpr int64_t kPanel = 64;

template <int R>
void score_rows_panel(const float* rows, int64_t dim, const float* panel, const float* bias,
                      int64_t width, float* out, int64_t out_stride) {
  __m512 acc[R][4];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t d = 0; d < dim; ++d) {
    const float* p = panel + d * kPanel;
    const __m512 w0 = _mm512_loadu_ps(p), w1 = _mm512_loadu_ps(p + 16);
    const __m512 w2 = _mm512_loadu_ps(p + 32), w3 = _mm512_loadu_ps(p + 48);
    for (int i = 0; i < R; ++i) {
      const __m512 x = _mm512_set1_ps(rows[i * dim + d]);
      acc[i][0] = _mm512_fmadd_ps(x, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(x, w1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(x, w2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(x, w3, acc[i][3]);
    }
  }
  store_panel_scores<R>(acc, bias, width, out, out_stride);
}

void score_block_avx512(const float* rows, int64_t n_rows, const float* weights, const float* bias,
                        int64_t n_cols, int64_t dim, float* out, int64_t out_stride) {
  score_block_by_panels<kPanel, score_rows_panel<4>, score_rows_panel<1>>(
      rows, n_rows, weights, bias, n_cols, dim, out, out_stride);
}

void score_block_bf16_avx512(const float* rows, int64_t n_rows, const float* weights,
                            const float* bias, int64_t n_cols, int64_t dim, float* out,
                            int64_t out_stride) {
  score_block_by_panels<kPanel, score_rows_panel<4>, score_rows_panel<1>, true>(
      rows, n_rows, weights, bias, n_cols, dim, out, out_stride);
}

int64_t first_at_least_avx512(const float* x, int64_t n, float threshold) {
  const __m512 t = _mm512_set1_ps(threshold);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __mmask16 hits = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, x + i), t, _CMP_GE_OQ);
    if (hits) return i + __builtin_ctz(static_cast<unsigned>(hits));
  }
  return n;
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

// Two bins of 8 per 16-lane gather; the max within each group of 8 lanes comes
// from three permute+max steps, and the first lane equal to it is the code.
bool argmax_bins_avx512(const float* x, const uint32_t* coords, int64_t n_bins, int m,
                        uint32_t* codes, uint32_t empty) {
  if (m != 8) return argmax_bins_portable(x, coords, n_bins, m, codes, empty);
  const __m512 zero = _mm512_setzero_ps();
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  bool any_empty = false;
  int64_t b = 0;
  for (; b + 2 <= n_bins; b += 2) {
    const __m512i idx = _mm512_loadu_si512(coords + b * 8);
    const __m512 v = _mm512_i32gather_ps(idx, x, 4);
    // Present: nonzero, not NaN (ordered compares fail on NaN), above -inf.
    const __mmask16 present =
        _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_OQ) & _mm512_cmp_ps_mask(v, neg_inf, _CMP_GT_OQ);
    const __m512 key = _mm512_mask_blend_ps(present, neg_inf, v);
    __m512 mx = _mm512_max_ps(key, _mm512_permute_ps(key, 0xB1));  // swap neighbours
    mx = _mm512_max_ps(mx, _mm512_permute_ps(mx, 0x4E));            // swap pairs
    mx = _mm512_max_ps(mx, _mm512_shuffle_f32x4(mx, mx, 0xB1));     // swap 128-bit lanes
    const uint32_t winners = _mm512_cmp_ps_mask(key, mx, _CMP_EQ_OQ) & present;
    const uint32_t lo = winners & 0xFFu, hi = winners >> 8;
    codes[b] = lo ? static_cast<uint32_t>(__builtin_ctz(lo)) : empty;
    codes[b + 1] = hi ? static_cast<uint32_t>(__builtin_ctz(hi)) : empty;
    any_empty |= !lo || !hi;
  }
  if (b < n_bins) any_empty |= argmax_bins_portable(x, coords + b * 8, n_bins - b, 8, codes + b, empty);
  return any_empty;
}

// A block of up to 16 rows, one row per lane: the block is transposed once
// (coordinate-major), then each bin's 8 coordinates are 8 plain loads shared by
// all rows, with a running strict-'>' argmax per lane (so ties keep the lowest
// position and NaN, zero and -inf never win, as in the portable loop).
uint32_t argmax_bins_block_avx512(const float* rows, int64_t n_rows, int64_t row_stride,
                                  int64_t dim, const uint32_t* coords, int64_t n_bins, int m,
                                  uint32_t* codes, uint32_t empty, float* scratch) {
  if (m != 8 || n_rows > kArgmaxBlockRows)
    return argmax_bins_block_portable(rows, n_rows, row_stride, dim, coords, n_bins, m, codes,
                                      empty, scratch);
  constexpr int64_t kLanes = kArgmaxBlockRows;
  float* block = scratch;  // block[d * 16 + r] = rows[r][d]; absent rows are zeros (empty)
  if (n_rows < kLanes) std::fill(block, block + dim * kLanes, 0.f);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = rows + r * row_stride;
    for (int64_t d = 0; d < dim; ++d) block[d * kLanes + r] = row[d];
  }
  const __m512 zero = _mm512_setzero_ps();
  const __m512i empty_code = _mm512_set1_epi32(static_cast<int>(empty));
  __mmask16 has_empty = 0;
  for (int64_t b = 0; b < n_bins; ++b) {
    const uint32_t* c = coords + b * 8;
    __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __m512i code = empty_code;
    for (int i = 0; i < 8; ++i) {
      const __m512 v = _mm512_loadu_ps(block + static_cast<int64_t>(c[i]) * kLanes);
      const __mmask16 better =
          _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, zero, _CMP_NEQ_OQ), v, best, _CMP_GT_OQ);
      best = _mm512_mask_mov_ps(best, better, v);
      code = _mm512_mask_mov_epi32(code, better, _mm512_set1_epi32(i));
    }
    has_empty |= _mm512_cmpeq_epi32_mask(code, empty_code);
    _mm512_storeu_si512(codes + b * kLanes, code);
  }
  return static_cast<uint32_t>(has_empty) & ((1u << n_rows) - 1u);
}

}  // namespace

const Kernels kAvx512Kernels = {"avx512",    dot_avx512,  axpy_avx512,           score_block_avx512,
                                score_block_bf16_avx512, first_at_least_avx512,
                                nullptr,                 nullptr,
                                adam_avx512, argmax_bins_avx512, argmax_bins_block_avx512};

}  // namespace slide
