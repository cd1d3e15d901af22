// TopK: best first, ties to the lower label, NaN last, unfilled slots -1.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "check.h"
#include "slide/rng.h"
#include "slide/topk.h"

TEST(topk_orders_best_first_with_ties_to_the_lower_label) {
  const float scores[] = {1.f, 5.f, 3.f, 5.f, 2.f};
  int32_t labels[3];
  float best[3];
  slide::TopK heap(labels, best, 3);
  for (int32_t i = 0; i < 5; ++i) heap.push(scores[i], i);
  heap.finish();
  CHECK_EQ(labels[0], 1);
  CHECK_EQ(labels[1], 3);
  CHECK_EQ(labels[2], 2);
  CHECK_EQ(best[2], 3.f);
}

TEST(topk_marks_missing_slots_and_ranks_nan_last) {
  int32_t labels[4];
  float best[4];
  slide::TopK heap(labels, best, 4);
  heap.push(NAN, 0);
  heap.push(-1.f, 7);
  heap.finish();
  CHECK_EQ(labels[0], 7);
  CHECK_EQ(labels[1], 0);
  CHECK_EQ(labels[2], -1);
  CHECK_EQ(labels[3], -1);
  CHECK(std::isinf(best[3]) && best[3] < 0);
}

TEST(topk_equals_a_full_sort_in_any_push_order) {
  slide::Rng rng(3);
  std::vector<float> scores(500);
  for (float& s : scores) s = static_cast<float>(rng.below(50));  // many ties
  std::vector<int32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<int32_t> expected = order;
  std::sort(expected.begin(), expected.end(), [&](int32_t a, int32_t b) {
    return slide::TopK::worse(scores[b], b, scores[a], a);
  });
  for (int round = 0; round < 3; ++round) {
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    std::vector<int32_t> labels(20);
    std::vector<float> best(20);
    slide::TopK heap(labels.data(), best.data(), 20);
    for (int32_t id : order) heap.push(scores[id], id);
    heap.finish();
    CHECK(std::equal(labels.begin(), labels.end(), expected.begin()));
  }
}
