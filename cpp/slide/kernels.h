// Dense float kernels of the hot paths, one implementation per instruction set.
// The portable build compiles each wider ISA in its own translation unit and picks
// one at run time from the CPU's features (override: SKLEARN_SLIDE_KERNELS =
// generic | avx2 | avx512 | avx512_bf16 | amx_bf16). The generic set is the
// correctness oracle of the others. avx512_bf16 and amx_bf16 are the avx512 set
// with native bfloat16 scoring (dot-product instructions, AMX tiles).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slide {

// Coefficients of one Adam update (see adam.h): m = decay1*m + one_minus_beta1*g,
// v = decay2*v + one_minus_beta2*g^2, w -= lr * m / (sqrt(v) + epsilon).
struct AdamCoefficients {
  float decay1, decay2, one_minus_beta1, one_minus_beta2, lr, epsilon;
};

struct Kernels {
  const char* name;
  // sum_i a[i] * b[i]
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[i] += alpha * x[i]
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  // out[r * out_stride + j] = dot(rows + r * dim, weights + j * dim, dim) (+ bias[j] if bias)
  // for r < n_rows, j < n_cols: scores of a block of inputs against a block of neurons.
  void (*score_block)(const float* rows, int64_t n_rows, const float* weights, const float* bias,
                      int64_t n_cols, int64_t dim, float* out, int64_t out_stride);
  // score_block with rows and weights rounded to bfloat16 first (bf16.h), products
  // summed in float32; the bias stays float32. Sets without native bfloat16
  // instructions round and then run their float32 kernel: same numbers, no gain.
  void (*score_block_bf16)(const float* rows, int64_t n_rows, const float* weights,
                           const float* bias, int64_t n_cols, int64_t dim, float* out,
                           int64_t out_stride);
  // Index of the first x[i] >= threshold (ordered compare: NaN never is), or n.
  // The top-k scan of exact scoring: most scores fall below the k-th best so far.
  int64_t (*first_at_least)(const float* x, int64_t n, float threshold);
  // Native bfloat16 sets only (null in the others): the output layer packed once
  // per prediction call into panels of kBf16PanelWidth neurons (see
  // bf16_panel_words), then scored panel by panel without repacking.
  void (*pack_bf16_panels)(const float* weights, int64_t n_cols, int64_t dim, uint32_t* panels);
  // score_block_bf16 against packed panels; `panels` starts at the panel of the
  // block's first neuron.
  void (*score_packed_bf16)(const float* rows, int64_t n_rows, const uint32_t* panels,
                            const float* bias, int64_t n_cols, int64_t dim, float* out,
                            int64_t out_stride);
  // Adam on n values with gradient g, which is then zeroed (ready for the next batch).
  void (*adam)(float* w, float* m, float* v, float* g, int64_t n, const AdamCoefficients& c);
  // DWTA's inner loop: for each of n_bins bins of m coordinates (coords[b * m ..]),
  // codes[b] = position of the largest present value x[coord] (present: nonzero,
  // not NaN, not -inf; ties: lowest position), or `empty` if none is present.
  // Returns whether some bin was empty.
  bool (*argmax_bins)(const float* x, const uint32_t* coords, int64_t n_bins, int m,
                      uint32_t* codes, uint32_t empty);
  // argmax_bins of n_rows <= kArgmaxBlockRows rows of dim floats (row r at
  // rows + r * row_stride), written bin-major: codes[b * kArgmaxBlockRows + r].
  // Table builds hash every neuron: a block shares each coordinate load between
  // its rows instead of one gather per bin and row. Returns the rows that had an
  // empty bin (bit r). `scratch` holds argmax_block_scratch_floats(dim) floats.
  uint32_t (*argmax_bins_block)(const float* rows, int64_t n_rows, int64_t row_stride,
                                int64_t dim, const uint32_t* coords, int64_t n_bins, int m,
                                uint32_t* codes, uint32_t empty, float* scratch);
};

constexpr int64_t kArgmaxBlockRows = 16;
// The block transposed: dim x 16 floats.
inline int64_t argmax_block_scratch_floats(int64_t dim) { return dim * kArgmaxBlockRows; }

// Packed bfloat16 panels: kBf16PanelWidth neurons x bf16_panel_pairs(dim) words,
// word p * kBf16PanelWidth + j holding coordinates 2p (low half) and 2p + 1 of
// neuron j; pairs zero-padded to whole AMX tiles (16 pairs), neurons to the width.
constexpr int64_t kBf16PanelWidth = 64;
inline int64_t bf16_panel_pairs(int64_t dim) { return ((dim + 1) / 2 + 15) / 16 * 16; }
inline int64_t bf16_panel_words(int64_t dim) { return bf16_panel_pairs(dim) * kBf16PanelWidth; }
// Words of the panels of n_cols neurons (the last panel zero-padded).
inline int64_t bf16_packed_words(int64_t n_cols, int64_t dim) {
  return (n_cols + kBf16PanelWidth - 1) / kBf16PanelWidth * bf16_panel_words(dim);
}

// The generic argmax_bins, also the fallback of the SIMD sets for bins they do not vectorise.
bool argmax_bins_portable(const float* x, const uint32_t* coords, int64_t n_bins, int m,
                          uint32_t* codes, uint32_t empty);
// The generic argmax_bins_block: argmax_bins_portable row by row.
uint32_t argmax_bins_block_portable(const float* rows, int64_t n_rows, int64_t row_stride,
                                    int64_t dim, const uint32_t* coords, int64_t n_bins, int m,
                                    uint32_t* codes, uint32_t empty, float* scratch);

extern const Kernels kGenericKernels;
extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels;
// The native bfloat16 functions: kernels_avx512_bf16.cpp (AVX512_BF16 dot
// products) and kernels_amx_bf16.cpp (AMX tiles; amx_available() asks the OS for
// the tile state once and says whether it may be used).
void pack_bf16_panels_avx512bf16(const float* weights, int64_t n_cols, int64_t dim,
                                 uint32_t* panels);
void score_block_bf16_avx512bf16(const float* rows, int64_t n_rows, const float* weights,
                                 const float* bias, int64_t n_cols, int64_t dim, float* out,
                                 int64_t out_stride);
void score_packed_bf16_avx512bf16(const float* rows, int64_t n_rows, const uint32_t* panels,
                                  const float* bias, int64_t n_cols, int64_t dim, float* out,
                                  int64_t out_stride);
bool amx_available();
void score_block_bf16_amx(const float* rows, int64_t n_rows, const float* weights,
                          const float* bias, int64_t n_cols, int64_t dim, float* out,
                          int64_t out_stride);
void score_packed_bf16_amx(const float* rows, int64_t n_rows, const uint32_t* panels,
                           const float* bias, int64_t n_cols, int64_t dim, float* out,
                           int64_t out_stride);

// The kernels in use (chosen on first call).
const Kernels& kernels();
// Switches the kernels in use: "auto" or one of available_kernels(). Throws
// std::invalid_argument for an unknown name or one this CPU cannot run.
void select_kernels(const std::string& name);
// Names of the kernel sets this CPU can run, narrowest first.
std::vector<std::string> available_kernels();

}  // namespace slide
