// Dense float kernels of the hot paths, one implementation per instruction set.
// The portable build compiles each wider ISA in its own translation unit and picks
// one at run time from the CPU's features (override: SKLEARN_SLIDE_KERNELS =
// generic | avx2 | avx512). The generic set is the correctness oracle of the others.
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
  // Adam on n values with gradient g, which is then zeroed (ready for the next batch).
  void (*adam)(float* w, float* m, float* v, float* g, int64_t n, const AdamCoefficients& c);
  // DWTA's inner loop: for each of n_bins bins of m coordinates (coords[b * m ..]),
  // codes[b] = position of the largest present value x[coord] (present: nonzero,
  // not NaN, not -inf; ties: lowest position), or `empty` if none is present.
  // Returns whether some bin was empty.
  bool (*argmax_bins)(const float* x, const uint32_t* coords, int64_t n_bins, int m,
                      uint32_t* codes, uint32_t empty);
};

// The generic argmax_bins, also the fallback of the SIMD sets for bins they do not vectorise.
bool argmax_bins_portable(const float* x, const uint32_t* coords, int64_t n_bins, int m,
                          uint32_t* codes, uint32_t empty);

extern const Kernels kGenericKernels;
extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels;

// The kernels in use (chosen on first call).
const Kernels& kernels();
// Switches the kernels in use: "auto", "generic", "avx2" or "avx512". Throws
// std::invalid_argument for an unknown name or one this CPU cannot run.
void select_kernels(const std::string& name);
// Names of the kernel sets this CPU can run, narrowest first.
std::vector<std::string> available_kernels();

}  // namespace slide
