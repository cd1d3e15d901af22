#include "slide/hash_dwta.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>
#include <stdexcept>

#include "slide/kernels.h"
#include "slide/rng.h"

namespace slide {

namespace {
// codes() marks bins in the output array itself, so it needs no scratch: empty
// bins first hold kEmpty, borrowed codes carry kBorrowed until the last pass,
// which keeps borrowing limited to bins that were nonempty on their own.
constexpr uint32_t kBorrowed = 0x80000000u;
constexpr uint32_t kEmpty = 0xFFFFFFFFu;
}  // namespace

DWTAHash::DWTAHash(int dim, int codes_per_table, int n_tables, uint64_t seed)
    : HashFamily(dim, codes_per_table, n_tables) {
  if (dim < 1 || codes_per_table < 1 || n_tables < 1) {
    throw std::invalid_argument("DWTAHash: dim, codes_per_table and n_tables must be >= 1");
  }
  bin_size_ = std::min(8, dim);
  const size_t m = static_cast<size_t>(bin_size_);
  const size_t n_bins = static_cast<size_t>(n_codes());
  const size_t bins_per_perm = static_cast<size_t>(dim) / m;
  coords_.resize(n_bins * m);

  Rng rng(seed, 0xD37A);
  a_ = rng.next() | 1u;
  b_ = rng.next();
  std::vector<uint32_t> perm(dim);
  for (size_t bin = 0; bin < n_bins; bin += bins_per_perm) {
    std::iota(perm.begin(), perm.end(), 0u);
    for (size_t i = dim - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
    const size_t take = std::min(bins_per_perm, n_bins - bin) * m;
    std::copy(perm.begin(), perm.begin() + take, coords_.begin() + bin * m);
  }
}

uint32_t DWTAHash::probe(uint32_t bin, uint32_t attempt) const {
  const uint64_t key = (static_cast<uint64_t>(bin) << 8) | attempt;  // attempt < 256
  const uint64_t h = (a_ * key + b_) >> 32;
  return static_cast<uint32_t>((h * static_cast<uint64_t>(n_codes())) >> 32);
}

void DWTAHash::codes(const float* x, uint32_t* codes, float* /*scratch*/) const {
  const uint32_t n_bins = static_cast<uint32_t>(n_codes());
  // The per-bin argmax is the hot loop: a SIMD kernel where the CPU has one.
  if (kernels().argmax_bins(x, coords_.data(), n_bins, bin_size_, codes, kEmpty)) densify(codes, 1);
}

void DWTAHash::densify(uint32_t* codes, int64_t stride) const {
  const uint32_t n_bins = static_cast<uint32_t>(n_codes());
  for (uint32_t b = 0; b < n_bins; ++b) {
    if (codes[b * stride] != kEmpty) continue;
    uint32_t code = 0;  // all probes failed (e.g. the zero vector)
    for (uint32_t attempt = 1; attempt <= kMaxProbes; ++attempt) {
      const uint32_t donor = codes[probe(b, attempt) * stride];
      if (donor < kBorrowed) {
        code = donor;
        break;
      }
    }
    codes[b * stride] = code | kBorrowed;
  }
  for (uint32_t b = 0; b < n_bins; ++b) codes[b * stride] &= ~kBorrowed;
}

size_t DWTAHash::rows_scratch_floats() const {
  return static_cast<size_t>(argmax_block_scratch_floats(dim()));
}

void DWTAHash::buckets_of_rows(const float* rows, int64_t n_rows, int64_t row_stride,
                               int table_bits, int32_t* buckets, int64_t bucket_stride,
                               float* scratch) const {
  const int64_t n_bins = n_codes(), lanes = kArgmaxBlockRows;
  const int k = codes_per_table(), code_bits = bits_per_code(code_range());
  std::vector<uint32_t> block_codes(n_bins * lanes);  // bin-major: lane r is row first + r
  uint32_t* codes = block_codes.data();
  uint32_t block_buckets[kArgmaxBlockRows];
  for (int64_t first = 0; first < n_rows; first += lanes) {
    const int64_t n = std::min(lanes, n_rows - first);
    const uint32_t with_empty = kernels().argmax_bins_block(
        rows + first * row_stride, n, row_stride, dim(), coords_.data(), n_bins, bin_size_, codes,
        kEmpty, scratch);
    for (int64_t r = 0; r < n; ++r)
      if (with_empty >> r & 1u) densify(codes + r, lanes);
    for (int t = 0; t < n_tables(); ++t) {
      bucket_indices_strided(codes + t * k * lanes, lanes, n, k, code_bits, table_bits,
                             block_buckets);
      for (int64_t r = 0; r < n; ++r)
        buckets[t * bucket_stride + first + r] = static_cast<int32_t>(block_buckets[r]);
    }
  }
}

}  // namespace slide
