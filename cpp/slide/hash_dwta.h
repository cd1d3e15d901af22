// Densified winner-take-all hashing (Chen & Shrivastava 2018), SLIDE's default
// for sparse inputs. Zeros count as absent: code = position of the largest
// nonzero value in a bin of m permuted coordinates. A bin with no nonzero value
// borrows the code of another, nonempty bin, so sparse vectors still get K * L
// informative codes instead of a pile of identical "empty" codes.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/hash_family.h"

namespace slide {

class DWTAHash final : public HashFamily {
 public:
  // Random permutations of [0, dim) are cut into bins of m = min(8, dim)
  // consecutive entries (a tail shorter than m is dropped), as many permutations
  // as K * L bins need.
  DWTAHash(int dim, int codes_per_table, int n_tables, uint64_t seed);

  uint32_t code_range() const override { return static_cast<uint32_t>(bin_size_); }
  void codes(const float* x, uint32_t* codes, float* scratch) const override;
  // Blocks of kArgmaxBlockRows rows through the kernels' argmax_bins_block.
  void buckets_of_rows(const float* rows, int64_t n_rows, int64_t row_stride, int table_bits,
                       int32_t* buckets, int64_t bucket_stride, float* scratch) const override;
  size_t rows_scratch_floats() const override;

  // Probes tried before an empty bin gives up and takes code 0; with a fraction
  // f of empty bins that happens with probability f^kMaxProbes.
  static constexpr int kMaxProbes = 100;

 private:
  // Bin probed at `attempt` (1, 2, ...) for an empty `bin`: multiply-add-shift,
  // a universal family, with (a_, b_) drawn from the seed.
  uint32_t probe(uint32_t bin, uint32_t attempt) const;
  // Gives the empty bins (kEmpty) of one vector's codes the code of a nonempty
  // bin; codes[b * stride] is bin b.
  void densify(uint32_t* codes, int64_t stride) const;

  int bin_size_;
  uint64_t a_, b_;
  std::vector<uint32_t> coords_;  // bin b owns coords_[b * m, (b + 1) * m)
};

}  // namespace slide
