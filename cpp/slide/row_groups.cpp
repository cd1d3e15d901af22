#include "slide/row_groups.h"

#include <cstddef>

namespace slide {

void RowGroups::finish() {
  const int64_t n = n_groups();
  start_.assign(n + 1, 0);
  for (int64_t g = 0; g < n; ++g) {
    const int32_t row = rows_[g];
    start_[g + 1] = start_[g] + cursor_[row];
    cursor_[row] = static_cast<int32_t>(start_[g]);  // now the write position
  }
  sample_.resize(touch_row_.size());
  weight_.resize(touch_row_.size());
  for (std::size_t i = 0; i < touch_row_.size(); ++i) {
    const int32_t pos = cursor_[touch_row_[i]]++;
    sample_[pos] = touch_sample_[i];
    weight_[pos] = touch_weight_[i];
  }
}

void RowGroups::clear() {
  for (int32_t row : rows_) cursor_[row] = 0;
  rows_.clear();
  touch_row_.clear();
  touch_sample_.clear();
  touch_weight_.clear();
}

}  // namespace slide
