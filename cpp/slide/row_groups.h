// Groups the (row, sample, weight) contributions of one batch by row, keeping
// sample order within each row (a stable counting sort over touched rows only).
//
// The trainer sums each row's gradient from its group in that order, so the sum
// is the same whatever thread computed which sample: training is reproducible
// for any thread count, and no two threads ever write the same gradient row.
#pragma once

#include <cstdint>
#include <vector>

namespace slide {

class RowGroups {
 public:
  explicit RowGroups(int64_t n_rows) : cursor_(n_rows, 0) {}

  // Call for every contribution of the batch, in sample order.
  void add(int32_t row, int32_t sample, float weight) {
    if (cursor_[row]++ == 0) rows_.push_back(row);
    touch_row_.push_back(row);
    touch_sample_.push_back(sample);
    touch_weight_.push_back(weight);
  }

  // Builds the groups; afterwards group g is rows()[g] with entries [begin(g), end(g)).
  void finish();
  // Forgets the batch (O(touched rows)).
  void clear();

  int64_t n_groups() const { return static_cast<int64_t>(rows_.size()); }
  const std::vector<int32_t>& rows() const { return rows_; }
  int64_t begin(int64_t g) const { return start_[g]; }
  int64_t end(int64_t g) const { return start_[g + 1]; }
  int32_t sample(int64_t i) const { return sample_[i]; }
  float weight(int64_t i) const { return weight_[i]; }

 private:
  std::vector<int32_t> cursor_;  // per row: count while adding, then write position
  std::vector<int32_t> rows_;    // touched rows, in first-touch order
  std::vector<int32_t> touch_row_, touch_sample_;
  std::vector<float> touch_weight_;
  std::vector<int64_t> start_;
  std::vector<int32_t> sample_;
  std::vector<float> weight_;
};

}  // namespace slide
