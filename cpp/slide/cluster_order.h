// A row's label clusters in decreasing score, shared by clustered inference
// (predict_clusters.cpp) and the hard negatives of training (sampled_softmax.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "slide/topk.h"

namespace slide {

// Clusters in decreasing score (ties: lower index first): the first n_first by
// one pass with a running top-n_first (most scores fail its threshold at once),
// the rest by a full sort only when a row needs more (its clusters held < k labels).
class ClusterOrder {
 public:
  explicit ClusterOrder(int64_t n_clusters, int64_t n_first)
      : n_first_(n_first), order_(n_clusters), best_scores_(n_first) {}

  const std::vector<int32_t>& rank(const float* scores) {
    const int64_t n_clusters = static_cast<int64_t>(order_.size());
    TopK best(order_.data(), best_scores_.data(), n_first_);
    float threshold = best.threshold();
    for (int64_t c = 0; c < n_clusters; ++c) {
      if (!(scores[c] < threshold)) {  // NaN passes: push ranks it last
        best.push(scores[c], static_cast<int32_t>(c));
        threshold = best.threshold();
      }
    }
    best.finish();
    scores_ = scores;
    return order_;
  }

  void rank_rest() {
    std::vector<char> taken(order_.size(), 0);
    for (int64_t i = 0; i < n_first_; ++i) taken[order_[i]] = 1;
    int64_t next = n_first_;
    for (int64_t c = 0; c < static_cast<int64_t>(order_.size()); ++c)
      if (!taken[c]) order_[next++] = static_cast<int32_t>(c);
    // TopK's ranking (ties: lower index first); NaN (a damaged model) ranks
    // last, as TopK::push ranks it, keeping the order a strict weak ordering.
    const float* scores = scores_;
    const auto key = [scores](int32_t c) {
      return std::isnan(scores[c]) ? -std::numeric_limits<float>::infinity() : scores[c];
    };
    std::sort(order_.begin() + n_first_, order_.end(), [&key](int32_t a, int32_t b) {
      return TopK::worse(key(b), b, key(a), a);
    });
  }

 private:
  int64_t n_first_;
  std::vector<int32_t> order_;
  std::vector<float> best_scores_;
  const float* scores_ = nullptr;
};

}  // namespace slide
