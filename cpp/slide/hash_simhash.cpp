#include "slide/hash_simhash.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "slide/rng.h"

namespace slide {

SimHash::SimHash(int dim, int codes_per_table, int n_tables, uint64_t seed)
    : HashFamily(dim, codes_per_table, n_tables) {
  if (dim < 1 || codes_per_table < 1 || n_tables < 1) {
    throw std::invalid_argument("SimHash: dim, codes_per_table and n_tables must be >= 1");
  }
  // A third of the coordinates is the original's density: sparse enough to be
  // cheap, dense enough that the sign is rarely decided by a single coordinate.
  coords_per_projection_ = std::max(1, dim / 3);
  const size_t n_proj = static_cast<size_t>(codes_per_table) * n_tables;
  const size_t n = static_cast<size_t>(coords_per_projection_);
  coords_.resize(n_proj * n);
  n_plus_.resize(n_proj);

  Rng rng(seed, 0x51A5);
  std::vector<uint32_t> pool(dim);
  std::iota(pool.begin(), pool.end(), 0u);
  std::vector<uint32_t> plus, minus;
  for (size_t p = 0; p < n_proj; ++p) {
    // Partial Fisher-Yates: the first n entries of `pool` become a uniform
    // sample without replacement; the pool stays a permutation for the next draw.
    plus.clear();
    minus.clear();
    for (size_t i = 0; i < n; ++i) {
      const size_t j = i + rng.below(dim - i);
      std::swap(pool[i], pool[j]);
      (rng.next() >> 63 ? plus : minus).push_back(pool[i]);
    }
    // Sorted coordinates make the gather in codes() walk memory forward.
    std::sort(plus.begin(), plus.end());
    std::sort(minus.begin(), minus.end());
    uint32_t* out = coords_.data() + p * n;
    std::copy(plus.begin(), plus.end(), out);
    std::copy(minus.begin(), minus.end(), out + plus.size());
    n_plus_[p] = static_cast<uint32_t>(plus.size());
  }
}

void SimHash::codes(const float* x, uint32_t* codes, float* /*scratch*/) const {
  const size_t n = static_cast<size_t>(coords_per_projection_);
  const int n_proj = n_codes();
  for (int p = 0; p < n_proj; ++p) {
    const uint32_t* c = coords_.data() + static_cast<size_t>(p) * n;
    const uint32_t split = n_plus_[p];
    // Four partial sums hide the latency of the floating-point adds; the order
    // of the additions is fixed, so the result is still deterministic.
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= split; i += 4)
      for (int a = 0; a < 4; ++a) acc[a] += x[c[i + a]];
    for (; i < split; ++i) acc[0] += x[c[i]];
    for (; i + 4 <= n; i += 4)
      for (int a = 0; a < 4; ++a) acc[a] -= x[c[i + a]];
    for (; i < n; ++i) acc[0] -= x[c[i]];
    const float dot = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    // Strict '>' so that the zero vector (and exact ties) hash to all-zero codes.
    codes[p] = dot > 0.0f ? 1u : 0u;
  }
}

}  // namespace slide
