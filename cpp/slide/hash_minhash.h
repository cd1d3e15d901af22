// Densified one-permutation MinHash (Shrivastava 2017) over the support of a
// vector. The set is the nonzero coordinates, capped at the t = max(1, dim / 4)
// largest values, so dense vectors (weight rows) hash by their strongest
// coordinates and similar vectors share most of their set. Each table permutes
// [0, dim) once and cuts it into K bins of w = ceil(dim / K) positions; a code is
// the offset of the first set member in its bin, and empty bins borrow the code
// of another bin of the same table.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/hash_family.h"

namespace slide {

class MinHash final : public HashFamily {
 public:
  MinHash(int dim, int codes_per_table, int n_tables, uint64_t seed);

  uint32_t code_range() const override { return static_cast<uint32_t>(bin_width_); }
  // The top-t selection copies the nonzero values.
  size_t scratch_floats() const override { return static_cast<size_t>(dim()); }
  void codes(const float* x, uint32_t* codes, float* scratch) const override;

  int set_size() const { return max_set_size_; }
  static constexpr int kMaxProbes = 100;  // as in DWTAHash

 private:
  uint32_t probe(uint32_t table, uint32_t bin, uint32_t attempt) const;

  int max_set_size_;
  int bin_width_;
  uint64_t a_, b_;
  // For coordinate c and table t, at index c * L + t: the code slot its permuted
  // position falls in (t * K + bin) and its offset in that bin. Precomputed so
  // codes() does no division; one coordinate's entries are contiguous because
  // codes() walks the set members.
  std::vector<uint32_t> slot_;
  std::vector<uint32_t> offset_;
};

}  // namespace slide
