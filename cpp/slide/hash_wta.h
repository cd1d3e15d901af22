// Winner-take-all hashing (Yagnik et al. 2011): code = position of the largest
// value among m randomly chosen coordinates. It depends only on the ordering of
// the values, so it is invariant to scaling and to monotone transforms.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/hash_family.h"

namespace slide {

class WTAHash final : public HashFamily {
 public:
  // K * L windows; each is the first m = min(8, dim) entries of its own random
  // permutation of [0, dim).
  WTAHash(int dim, int codes_per_table, int n_tables, uint64_t seed);

  uint32_t code_range() const override { return static_cast<uint32_t>(window_); }
  void codes(const float* x, uint32_t* codes, float* scratch) const override;

 private:
  int window_;
  std::vector<uint32_t> coords_;  // window w owns coords_[w * m, (w + 1) * m)
};

}  // namespace slide
