#include "slide/predictor.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "slide/active_set.h"
#include "slide/row_blocks.h"

namespace slide {

void predict_topk_lsh(const Network& net, const HashTables& tables, const LshQuery& query,
                      const FeatureMatrix& X, TopKOutput out, const OutputScoring& scoring,
                      int n_threads, const StopCheck& should_stop) {
  const int64_t dim = net.last_hidden_size();
  const auto family = make_hash_family(query.hash_family, static_cast<int>(dim), query.hash_bits,
                                       tables.n_tables, query.hash_seed);
  // Large blocks: each one allocates a sampler with a marker per label.
  const int64_t row_block = row_block_for(X.n_rows, n_threads);
  for_hidden_blocks(net, X, row_block, n_threads, should_stop,
                    [&](int64_t first, int64_t n, const float* h) {
    BucketScratch bucket_scratch(*family);
    std::vector<uint32_t> buckets(tables.n_tables);
    ActiveSetSampler sampler(net.n_labels());
    GatheredScorer scorer(net.output, dim, 1, score_block_for(scoring));
    std::vector<TopK> heaps = row_heaps(out, first, n);
    for (int64_t r = 0; r < n; ++r) {
      bucket_indices_of(*family, tables.table_bits, h + r * dim, bucket_scratch, buckets.data());
      sampler.build_for_inference(tables, buckets.data(), query.max_candidates, query.fallback,
                                  query.n_fallback, out.k);
      const int32_t row = static_cast<int32_t>(r);
      scorer.score(sampler.ids().data(), static_cast<int64_t>(sampler.ids().size()), &row, 1, h,
                   heaps);
    }
    for (TopK& heap : heaps) heap.finish();
  });
}

}  // namespace slide
