// Read-only view of a CSR matrix owned by the caller (numpy/scipy arrays).
#pragma once

#include <cstdint>

namespace slide {

template <typename Value>
struct CsrView {
  const int64_t* indptr = nullptr;   // n_rows + 1 offsets
  const int32_t* indices = nullptr;  // column ids, sorted within a row
  const Value* data = nullptr;       // may be null for 0/1 indicator matrices
  int64_t n_rows = 0;
  int64_t n_cols = 0;

  int64_t row_begin(int64_t row) const { return indptr[row]; }
  int64_t row_end(int64_t row) const { return indptr[row + 1]; }
  int64_t row_nnz(int64_t row) const { return indptr[row + 1] - indptr[row]; }
};

using FeatureMatrix = CsrView<float>;
using LabelMatrix = CsrView<float>;  // only the pattern is used

}  // namespace slide
