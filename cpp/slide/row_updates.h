// The update of one training step: Adam on the rows the batch touched (lazy),
// on every other row when asked (dense), and on the dense parameters. Each row's
// gradient is summed in sample order and each row has one owning thread, so the
// result does not depend on the thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "slide/adam.h"
#include "slide/batch_slots.h"
#include "slide/csr_view.h"
#include "slide/network.h"
#include "slide/row_groups.h"

namespace slide {

// Per thread: the touched output and input rows it owns (row % n_threads).
struct RowShard {
  explicit RowShard(const Network& net) : output(net.n_labels()), input(net.n_features()) {}
  RowGroups output, input;
};

// Groups the batch's sparse contributions by row and applies lazy Adam, in one
// parallel region: each thread scans all contributions in sample order, keeps
// its own rows, then updates them. No row has two owners, and each row's sum
// keeps sample order, so the result does not depend on the thread count (and
// the grouping, serial before, is split between the threads).
void update_sparse_rows(const AdamStep& adam, Network& net, BatchSlots& slots,
                        const FeatureMatrix& X, const int64_t* batch_rows, int64_t n,
                        std::vector<std::unique_ptr<RowShard>>& shards, int n_threads);

// Dense Adam (TrainConfig::adam_updates), after update_sparse_rows: every row the
// batch did not touch (row_step still before this step) takes the step too, with
// a zero gradient, so its momentum keeps moving it. Each row is updated every
// step, so its gap is 0 and the lazy rule of adam.h is exactly Adam. Each row is
// one thread's: the result does not depend on the thread count.
void update_untouched_rows(const AdamStep& adam, Layer& layer, bool output_layer, int n_threads);

// Dense parameters (hidden biases, hidden layers after the first): gradients
// summed over the batch's samples in order, then one Adam step each.
void update_dense_params(const AdamStep& adam, Network& net, BatchSlots& slots, int64_t n,
                         std::vector<std::vector<float>>& weight_grads, int n_threads);

}  // namespace slide
