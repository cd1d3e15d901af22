#include "slide/hash_wta.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "slide/rng.h"

namespace slide {

WTAHash::WTAHash(int dim, int codes_per_table, int n_tables, uint64_t seed)
    : HashFamily(dim, codes_per_table, n_tables) {
  if (dim < 1 || codes_per_table < 1 || n_tables < 1) {
    throw std::invalid_argument("WTAHash: dim, codes_per_table and n_tables must be >= 1");
  }
  window_ = std::min(8, dim);
  const size_t m = static_cast<size_t>(window_);
  const size_t n_windows = static_cast<size_t>(n_codes());
  coords_.resize(n_windows * m);

  Rng rng(seed, 0x37A);
  std::vector<uint32_t> pool(dim);
  std::iota(pool.begin(), pool.end(), 0u);
  for (size_t w = 0; w < n_windows; ++w) {
    // Only the first m entries of each permutation are used, so a partial
    // Fisher-Yates shuffle draws them; their order is part of the hash.
    for (size_t i = 0; i < m; ++i) {
      std::swap(pool[i], pool[i + rng.below(dim - i)]);
      coords_[w * m + i] = pool[i];
    }
  }
}

void WTAHash::codes(const float* x, uint32_t* codes, float* /*scratch*/) const {
  const int m = window_;
  const int n_windows = n_codes();
  for (int w = 0; w < n_windows; ++w) {
    const uint32_t* c = coords_.data() + static_cast<size_t>(w) * m;
    // Strict '>' keeps the lowest position on ties (the zero vector gives 0).
    uint32_t best = 0;
    float best_value = x[c[0]];
    for (int i = 1; i < m; ++i) {
      if (x[c[i]] > best_value) {
        best_value = x[c[i]];
        best = static_cast<uint32_t>(i);
      }
    }
    codes[w] = best;
  }
}

}  // namespace slide
