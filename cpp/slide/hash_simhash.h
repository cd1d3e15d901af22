// SimHash (signed random projections): code = sign of <r, x> for a sparse
// random +-1 vector r. Two vectors at angle theta agree on a code with
// probability ~ 1 - theta / pi, whatever their norms.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/hash_family.h"

namespace slide {

class SimHash final : public HashFamily {
 public:
  // Each of the K * L projections touches max(1, dim / 3) distinct coordinates.
  SimHash(int dim, int codes_per_table, int n_tables, uint64_t seed);

  uint32_t code_range() const override { return 2; }
  void codes(const float* x, uint32_t* codes, float* scratch) const override;

 private:
  int coords_per_projection_;
  // Projection p owns coords_[p * n, (p + 1) * n): first n_plus_[p] coordinates
  // with sign +1, then the ones with sign -1, so codes() needs no multiplies.
  std::vector<uint32_t> coords_;
  std::vector<uint32_t> n_plus_;
};

}  // namespace slide
