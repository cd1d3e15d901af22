// RowGroups: contributions grouped by row, rows in first-touch order, each
// group in sample order (what makes the gradient sums thread-count independent).
#include <vector>

#include "check.h"
#include "slide/row_groups.h"

TEST(row_groups_keep_sample_order_within_a_row) {
  slide::RowGroups groups(10);
  // (row, sample, weight) in sample order.
  groups.add(7, 0, 0.5f);
  groups.add(2, 0, 1.0f);
  groups.add(7, 1, 2.0f);
  groups.add(7, 3, 3.0f);
  groups.add(2, 4, 4.0f);
  groups.finish();
  CHECK_EQ(groups.n_groups(), 2);
  CHECK_EQ(groups.rows()[0], 7);
  CHECK_EQ(groups.rows()[1], 2);
  CHECK_EQ(groups.end(0) - groups.begin(0), 3);
  const int32_t samples_of_7[] = {0, 1, 3};
  const float weights_of_7[] = {0.5f, 2.0f, 3.0f};
  for (int64_t i = 0; i < 3; ++i) {
    CHECK_EQ(groups.sample(groups.begin(0) + i), samples_of_7[i]);
    CHECK_EQ(groups.weight(groups.begin(0) + i), weights_of_7[i]);
  }
  CHECK_EQ(groups.sample(groups.begin(1) + 1), 4);
}

TEST(row_groups_start_empty_after_clear) {
  slide::RowGroups groups(4);
  groups.add(1, 0, 1.f);
  groups.finish();
  groups.clear();
  groups.add(3, 5, 2.f);
  groups.finish();
  CHECK_EQ(groups.n_groups(), 1);
  CHECK_EQ(groups.rows()[0], 3);
  CHECK_EQ(groups.end(0) - groups.begin(0), 1);
  CHECK_EQ(groups.sample(groups.begin(0)), 5);
}
