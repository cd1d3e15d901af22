#include "slide/row_updates.h"

#include <omp.h>

#include <algorithm>

#include "slide/debug_checks.h"
#include "slide/kernels.h"
#include "slide/parallel.h"
#include "slide/prefetch.h"

namespace slide {
namespace {

// One Adam step of weight row r (and, in the output layer, its bias) with
// gradient grad (zeroed by the step); records the step in row_step.
void update_row(const AdamStep& adam, Layer& layer, int64_t r, float* grad, float& bias_grad,
                bool output_layer) {
  const int64_t cols = layer.weight.cols;
  const int64_t last = layer.row_step[r];
  adam.update(layer.weight.row(r), layer.weight.adam_m + r * cols, layer.weight.adam_v + r * cols,
              grad, cols, last);
  if (output_layer)
    adam.update(layer.bias.value + r, layer.bias.adam_m + r, layer.bias.adam_v + r, &bias_grad, 1,
                last);
  layer.row_step[r] = adam.step();
}

// Lazy Adam on the grouped rows of one shard. A row's gradient is the sum, in
// sample order, of weight * (the sample's last hidden activation) for output
// neurons (weight = dLoss/dlogit, also summed into the neuron's bias), or
// weight * (the sample's first-layer delta) for input features (weight = feature value).
void update_rows(const AdamStep& adam, Layer& layer, const RowGroups& groups, BatchSlots& slots,
                 bool output_layer, std::vector<float>& grad) {
  const int64_t cols = layer.weight.cols;
  for (int64_t g = 0; g < groups.n_groups(); ++g) {
    // Rows are scattered over memory: fetch a later row's weights, moments,
    // step and bias while this one is summed and updated (Adam is bound by
    // these misses).
    if (g + kPrefetchRowsAhead < groups.n_groups()) {
      const int64_t ahead = groups.rows()[g + kPrefetchRowsAhead];
      prefetch_floats<true>(layer.weight.row(ahead), cols);
      prefetch_floats<true>(layer.weight.adam_m + ahead * cols, cols);
      prefetch_floats<true>(layer.weight.adam_v + ahead * cols, cols);
      __builtin_prefetch(layer.row_step + ahead, 1);
      if (output_layer) {
        __builtin_prefetch(layer.bias.value + ahead, 1);
        __builtin_prefetch(layer.bias.adam_m + ahead, 1);
        __builtin_prefetch(layer.bias.adam_v + ahead, 1);
      }
    }
    const int64_t r = groups.rows()[g];
    SLIDE_ASSERT_INDEX(r, layer.weight.rows);
    float bias_grad = 0.f;
    for (int64_t e = groups.begin(g); e < groups.end(g); ++e) {
      const int32_t s = groups.sample(e);
      const float w = groups.weight(e);
      // Output rows: delta * h; input rows: x * (first layer's delta).
      const float* v = output_layer ? slots.activation(slots.activations.size() - 1, s)
                                    : slots.delta(0, s);
      kernels().axpy(w, v, grad.data(), cols);
      if (output_layer) bias_grad += w;
    }
    update_row(adam, layer, r, grad.data(), bias_grad, output_layer);
  }
}

}  // namespace

// Groups the batch's sparse contributions by row and applies lazy Adam, in one
// parallel region: each thread scans all contributions in sample order, keeps
// its own rows, then updates them. No row has two owners, and each row's sum
// keeps sample order, so the result does not depend on the thread count (and
// the grouping, serial before, is split between the threads).
void update_sparse_rows(const AdamStep& adam, Network& net, BatchSlots& slots,
                        const FeatureMatrix& X, const int64_t* batch_rows, int64_t n,
                        std::vector<std::unique_ptr<RowShard>>& shards, int n_threads) {
  ParallelErrors errors;
#pragma omp parallel num_threads(n_threads)
  {
    errors.run([&] {
      const int n_owners = omp_get_num_threads(), owner = omp_get_thread_num();
      const auto mine = [&](int32_t row) { return row % n_owners == owner; };
      RowShard& shard = *shards[owner];
      shard.output.clear();
      shard.input.clear();
      for (int64_t s = 0; s < n; ++s) {
        const auto sample = static_cast<int32_t>(s);
        const auto& ids = slots.out_ids[s];
        for (size_t a = 0; a < ids.size(); ++a)
          if (mine(ids[a])) shard.output.add(ids[a], sample, slots.out_deltas[s][a]);
        if (!slots.labelled[s]) continue;
        const int64_t row = batch_rows[s];
        for (int64_t p = X.row_begin(row); p < X.row_end(row); ++p)
          if (mine(X.indices[p])) shard.input.add(X.indices[p], sample, X.data[p]);
      }
      shard.output.finish();
      shard.input.finish();
      std::vector<float> grad(std::max(net.output.weight.cols, net.hidden[0].weight.cols), 0.f);
      update_rows(adam, net.output, shard.output, slots, true, grad);
      update_rows(adam, net.hidden[0], shard.input, slots, false, grad);
    });
  }
  errors.rethrow();
}

// Dense Adam (TrainConfig::adam_updates), after update_sparse_rows: every row the
// batch did not touch (row_step still before this step) takes the step too, with
// a zero gradient, so its momentum keeps moving it. Each row is updated every
// step, so its gap is 0 and the lazy rule of adam.h is exactly Adam. Each row is
// one thread's: the result does not depend on the thread count.
void update_untouched_rows(const AdamStep& adam, Layer& layer, bool output_layer, int n_threads) {
#pragma omp parallel num_threads(n_threads)
  {
    std::vector<float> zero(layer.weight.cols, 0.f);  // the step zeroes it again
    float zero_bias = 0.f;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < layer.weight.rows; ++r)
      if (layer.row_step[r] != adam.step())
        update_row(adam, layer, r, zero.data(), zero_bias, output_layer);
  }
}

// Dense parameters (hidden biases, hidden layers after the first): gradients
// summed over the batch's samples in order, then one Adam step each.
void update_dense_params(const AdamStep& adam, Network& net, BatchSlots& slots, int64_t n,
                         std::vector<std::vector<float>>& weight_grads, int n_threads) {
  const Kernels& k = kernels();
  for (size_t i = 0; i < net.hidden.size(); ++i) {
    Layer& layer = net.hidden[i];
    const int64_t n_out = layer.n_out();
    std::vector<float> bias_grad(n_out, 0.f);
    for (int64_t s = 0; s < n; ++s)
      if (slots.labelled[s]) k.axpy(1.0f, slots.delta(i, s), bias_grad.data(), n_out);
    adam.update(layer.bias.value, layer.bias.adam_m, layer.bias.adam_v, bias_grad.data(), n_out,
                0);
    if (i == 0) continue;
    const int64_t n_in = layer.weight.cols;
    std::vector<float>& grad = weight_grads[i];
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t o = 0; o < n_out; ++o) {
      float* g = grad.data() + o * n_in;
      for (int64_t s = 0; s < n; ++s) {
        const float d = slots.labelled[s] ? slots.delta(i, s)[o] : 0.f;
        if (d != 0.f) k.axpy(d, slots.activation(i - 1, s), g, n_in);
      }
    }
    adam.update(layer.weight.value, layer.weight.adam_m, layer.weight.adam_v, grad.data(),
                layer.weight.size(), 0);
  }
}

}  // namespace slide
