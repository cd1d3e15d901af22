#include "slide/hash_minhash.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <stdexcept>

#include "slide/rng.h"

namespace slide {

namespace {
// Same in-place marking as DWTAHash: no scratch needed for densification.
constexpr uint32_t kBorrowed = 0x80000000u;
constexpr uint32_t kEmpty = 0xFFFFFFFFu;

// NaN counts as absent: it would break the ordering the top-t selection relies on.
inline bool present(float v) { return v != 0.0f && v == v; }
}  // namespace

MinHash::MinHash(int dim, int codes_per_table, int n_tables, uint64_t seed)
    : HashFamily(dim, codes_per_table, n_tables) {
  if (dim < 1 || codes_per_table < 1 || n_tables < 1) {
    throw std::invalid_argument("MinHash: dim, codes_per_table and n_tables must be >= 1");
  }
  max_set_size_ = std::max(1, dim / 4);
  bin_width_ = (dim + codes_per_table - 1) / codes_per_table;
  const size_t L = static_cast<size_t>(n_tables);
  slot_.resize(static_cast<size_t>(dim) * L);
  offset_.resize(slot_.size());

  Rng rng(seed, 0x313);
  a_ = rng.next() | 1u;
  b_ = rng.next();
  std::vector<uint32_t> perm(dim);
  for (size_t t = 0; t < L; ++t) {
    std::iota(perm.begin(), perm.end(), 0u);
    for (size_t i = dim - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
    for (size_t p = 0; p < perm.size(); ++p) {
      const size_t bin = p / bin_width_;
      slot_[perm[p] * L + t] = static_cast<uint32_t>(t * codes_per_table + bin);
      offset_[perm[p] * L + t] = static_cast<uint32_t>(p - bin * bin_width_);
    }
  }
}

uint32_t MinHash::probe(uint32_t table, uint32_t bin, uint32_t attempt) const {
  const uint64_t slot = static_cast<uint64_t>(table) * codes_per_table() + bin;
  const uint64_t h = (a_ * ((slot << 8) | attempt) + b_) >> 32;  // attempt < 256
  return static_cast<uint32_t>((h * static_cast<uint64_t>(codes_per_table())) >> 32);
}

void MinHash::codes(const float* x, uint32_t* codes, float* scratch) const {
  const int d = dim();
  const uint32_t K = static_cast<uint32_t>(codes_per_table());
  const uint32_t L = static_cast<uint32_t>(n_tables());

  // Choose the set. When more than t coordinates are present, keep values above
  // the t-th largest, then values equal to it in index order until t are kept.
  int n_present = 0;
  for (int c = 0; c < d; ++c) n_present += present(x[c]);
  float threshold = 0.0f;
  int ties_left = 0;
  const bool capped = n_present > max_set_size_;
  if (capped) {
    int n = 0;
    for (int c = 0; c < d; ++c)
      if (present(x[c])) scratch[n++] = x[c];
    const int t = max_set_size_;
    std::nth_element(scratch, scratch + (t - 1), scratch + n, std::greater<float>());
    threshold = scratch[t - 1];
    // After the partition everything strictly above the threshold is in front of it.
    int n_above = 0;
    for (int i = 0; i < t - 1; ++i) n_above += scratch[i] > threshold;
    ties_left = t - n_above;
  }

  std::fill(codes, codes + K * L, kEmpty);
  for (int c = 0; c < d; ++c) {
    const float v = x[c];
    if (!present(v)) continue;
    if (capped && !(v > threshold || (v == threshold && ties_left-- > 0))) continue;
    const uint32_t* slot = slot_.data() + static_cast<size_t>(c) * L;
    const uint32_t* offset = offset_.data() + static_cast<size_t>(c) * L;
    for (uint32_t t = 0; t < L; ++t) codes[slot[t]] = std::min(codes[slot[t]], offset[t]);
  }

  // Densify each table from its own nonempty bins; borrowed codes are flagged
  // so that they are never lent again.
  for (uint32_t t = 0; t < L; ++t) {
    uint32_t* table = codes + t * K;
    for (uint32_t b = 0; b < K; ++b) {
      if (table[b] != kEmpty) continue;
      uint32_t code = 0;  // no member in this table (e.g. the zero vector)
      for (uint32_t attempt = 1; attempt <= kMaxProbes && K > 1; ++attempt) {
        const uint32_t donor = table[probe(t, b, attempt)];
        if (donor < kBorrowed) {
          code = donor;
          break;
        }
      }
      table[b] = code | kBorrowed;
    }
    for (uint32_t b = 0; b < K; ++b) table[b] &= ~kBorrowed;
  }
}

}  // namespace slide
