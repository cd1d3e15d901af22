#include "slide/predictor.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "slide/cluster_order.h"
#include "slide/row_blocks.h"

namespace slide {

void predict_topk_clustered(const Network& net, const LabelClusters& clusters, int64_t n_probes,
                            const FeatureMatrix& X, TopKOutput out, const OutputScoring& scoring,
                            int n_threads, const StopCheck& should_stop) {
  const auto members = [&clusters](int32_t c) { return clusters.ids + clusters.offsets[c]; };
  const auto cluster_size = [&clusters](int32_t c) -> int64_t {
    return clusters.offsets[c + 1] - clusters.offsets[c];
  };
  const int64_t dim = net.last_hidden_size();
  const int64_t n_clusters = clusters.n_clusters;
  const int64_t n_first = std::min(n_probes, n_clusters);
  // Smaller blocks than exact scoring: the block's cluster scores must stay in L2.
  const int64_t row_block = std::min<int64_t>(64, row_block_for(X.n_rows, n_threads));
  for_hidden_blocks(net, X, row_block, n_threads, should_stop,
                    [&](int64_t first, int64_t n, const float* h) {
    const ScoreBlockFn score_block = score_block_for(scoring);
    std::vector<float> cluster_scores(n * n_clusters);
    for (int64_t c = 0; c < n_clusters; c += kLabelBlock) {
      score_block(h, n, clusters.centroid_weights + c * dim, clusters.centroid_biases + c,
                  std::min(kLabelBlock, n_clusters - c), dim, cluster_scores.data() + c,
                  n_clusters);
    }
    // (cluster, row) for each row's n_first best clusters, grouped by cluster.
    ClusterOrder order(n_clusters, n_first);
    std::vector<std::pair<int32_t, int32_t>> probes;
    probes.reserve(n * n_first);
    std::vector<int64_t> n_scored(n, 0);
    for (int64_t r = 0; r < n; ++r) {
      const std::vector<int32_t>& ranked = order.rank(cluster_scores.data() + r * n_clusters);
      for (int64_t i = 0; i < n_first; ++i) {
        probes.emplace_back(ranked[i], static_cast<int32_t>(r));
        n_scored[r] += cluster_size(ranked[i]);
      }
    }
    std::sort(probes.begin(), probes.end());
    std::vector<TopK> heaps = row_heaps(out, first, n);
    GatheredScorer scorer(net.output, dim, n, score_block);
    std::vector<int32_t> rows;
    for (size_t i = 0; i < probes.size();) {
      const int32_t cluster = probes[i].first;
      rows.clear();
      for (; i < probes.size() && probes[i].first == cluster; ++i) rows.push_back(probes[i].second);
      scorer.score(members(cluster), cluster_size(cluster), rows.data(),
                   static_cast<int64_t>(rows.size()), h, heaps);
    }
    // Rare: rows whose probed clusters held fewer than k labels take further
    // clusters, best first, until they have k.
    for (int64_t r = 0; r < n; ++r) {
      if (n_scored[r] >= out.k) continue;
      const std::vector<int32_t>& ranked = order.rank(cluster_scores.data() + r * n_clusters);
      order.rank_rest();
      const int32_t row = static_cast<int32_t>(r);
      for (int64_t i = n_first; i < n_clusters && n_scored[r] < out.k; ++i) {
        scorer.score(members(ranked[i]), cluster_size(ranked[i]), &row, 1, h, heaps);
        n_scored[r] += cluster_size(ranked[i]);
      }
    }
    for (TopK& heap : heaps) heap.finish();
  });
}

}  // namespace slide
