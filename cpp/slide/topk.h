// Running top-k of (score, label) pairs: a min-heap of size k over caller storage.
// Ties go to the lower label, so results do not depend on scoring order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace slide {

class TopK {
 public:
  TopK(int32_t* labels, float* scores, int64_t k) : labels_(labels), scores_(scores), k_(k) {}

  // "a ranks below b"
  static bool worse(float sa, int32_t la, float sb, int32_t lb) {
    return sa < sb || (sa == sb && la > lb);
  }

  float threshold() const {
    return size_ < k_ ? -std::numeric_limits<float>::infinity() : scores_[0];
  }

  void push(float score, int32_t label) {
    if (score != score) score = -std::numeric_limits<float>::infinity();  // NaN ranks last
    if (size_ < k_) {
      int64_t i = size_++;
      scores_[i] = score;
      labels_[i] = label;
      sift_up(i);
    } else if (worse(scores_[0], labels_[0], score, label)) {
      scores_[0] = score;
      labels_[0] = label;
      sift_down(0);
    }
  }

  // Sorts best first; unfilled slots (fewer than k pushes) get label -1, score -inf.
  void finish() {
    for (int64_t i = size_; i < k_; ++i) {
      labels_[i] = -1;
      scores_[i] = -std::numeric_limits<float>::infinity();
    }
    // Heap-sort in place: repeatedly move the worst to the end of the live range.
    for (int64_t n = size_; n > 1; --n) {
      swap(0, n - 1);
      size_ = n - 1;
      sift_down(0);
    }
    size_ = 0;
  }

 private:
  void swap(int64_t a, int64_t b) {
    std::swap(scores_[a], scores_[b]);
    std::swap(labels_[a], labels_[b]);
  }
  void sift_up(int64_t i) {
    while (i > 0) {
      const int64_t parent = (i - 1) / 2;
      if (!worse(scores_[i], labels_[i], scores_[parent], labels_[parent])) break;
      swap(i, parent);
      i = parent;
    }
  }
  void sift_down(int64_t i) {
    for (;;) {
      const int64_t l = 2 * i + 1, r = l + 1;
      int64_t m = i;
      if (l < size_ && worse(scores_[l], labels_[l], scores_[m], labels_[m])) m = l;
      if (r < size_ && worse(scores_[r], labels_[r], scores_[m], labels_[m])) m = r;
      if (m == i) return;
      swap(i, m);
      i = m;
    }
  }

  int32_t* labels_;
  float* scores_;
  int64_t k_;
  int64_t size_ = 0;
};

}  // namespace slide
