#include "slide/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "slide/debug_checks.h"
#include "slide/forward.h"
#include "slide/kernels.h"
#include "slide/parallel.h"
#include "slide/rng.h"
#include "slide/row_groups.h"

namespace slide {
namespace {

// What each sample of a batch leaves for the batch's update: its activations
// and deltas per hidden layer, and the (output neuron, delta) pairs of its
// active set. Samples write only their own slot, so the per-sample phase runs on
// any number of threads without locks; weights change only between batches.
struct BatchSlots {
  BatchSlots(const Network& net, int64_t batch_size)
      : out_ids(batch_size), out_deltas(batch_size), loss(batch_size),
        active(batch_size), labelled(batch_size) {
    for (const Layer& layer : net.hidden) {
      activations.emplace_back(batch_size * layer.n_out());
      deltas.emplace_back(batch_size * layer.n_out());
    }
  }
  float* activation(size_t layer, int64_t s) {
    return activations[layer].data() + s * (activations[layer].size() / loss.size());
  }
  float* delta(size_t layer, int64_t s) {
    return deltas[layer].data() + s * (deltas[layer].size() / loss.size());
  }
  std::vector<std::vector<float>> activations;  // per hidden layer: batch x n_out
  std::vector<std::vector<float>> deltas;       // dLoss/d(pre-activation), same shape
  std::vector<std::vector<int32_t>> out_ids;    // per sample: its active output neurons
  std::vector<std::vector<float>> out_deltas;   // and dLoss/dlogit of each
  std::vector<double> loss;
  std::vector<int64_t> active;
  std::vector<char> labelled;
};

// Per-thread scratch for the per-sample phase, allocated once per epoch.
struct ThreadScratch {
  ThreadScratch(const Network& net, const HashFamily* family)
      : activations(net), sampler(net.n_labels()), output_input_grad(net.last_hidden_size()) {
    if (family) {
      buckets.resize(family->n_tables());
      bucket_scratch = std::make_unique<BucketScratch>(*family);
    }
  }
  HiddenActivations activations;
  ActiveSetSampler sampler;
  std::vector<float> output_input_grad;  // dLoss/d(last hidden activation)
  std::vector<uint32_t> buckets;
  std::unique_ptr<BucketScratch> bucket_scratch;
  std::vector<float> logits;
};

// Forward and backward pass of sample `row` (slot s) over its active output neurons.
void train_sample(const Network& net, const HashTables* tables, const HashFamily* family,
                  const TrainConfig& config, const FeatureMatrix& X, const LabelMatrix& Y,
                  int64_t row, int64_t s, float inv_batch, Rng& rng, BatchSlots& slots,
                  ThreadScratch& ts) {
  const Kernels& k = kernels();
  const int32_t* labels = Y.indices + Y.row_begin(row);
  const int64_t n_labels = Y.row_nnz(row);
  slots.out_ids[s].clear();
  slots.out_deltas[s].clear();
  slots.loss[s] = 0.0;
  slots.active[s] = 0;
  slots.labelled[s] = n_labels > 0;
  if (n_labels == 0) return;  // no target distribution: contributes no gradient

  forward_hidden(net, X, row, ts.activations);
  const size_t n_hidden = net.hidden.size();
  for (size_t i = 0; i < n_hidden; ++i)
    std::copy(ts.activations.layer(i), ts.activations.layer(i) + net.hidden[i].n_out(),
              slots.activation(i, s));
  const float* h = ts.activations.last();
  const int64_t dim = net.last_hidden_size();

  if (!config.exact)
    bucket_indices_of(*family, tables->table_bits, h, *ts.bucket_scratch, ts.buckets.data());
  ts.sampler.build_for_training(labels, n_labels, tables, ts.buckets.data(), config.limits,
                                config.exact, rng);
  const std::vector<int32_t>& active = ts.sampler.ids();
  const int64_t n_active = static_cast<int64_t>(active.size());
  const int64_t n_true = ts.sampler.n_true();

  // Softmax over the active set.
  ts.logits.resize(n_active);
  float max_logit = -INFINITY;
  const Layer& out = net.output;
  const int64_t first_random = ts.sampler.first_random();
  const int64_t n_random = n_active - first_random;
  // Each random negative stands for pool / drawn neurons of the softmax's sum.
  const float random_offset =
      config.logq_correction && n_random > 0 && ts.sampler.random_pool() > 0
          ? static_cast<float>(std::log(double(ts.sampler.random_pool()) / double(n_random)))
          : 0.f;
  for (int64_t a = 0; a < n_active; ++a) {
    const int32_t id = active[a];
    float z = k.dot(out.weight.row(id), h, dim) + out.bias.value[id];
    if (a >= first_random) z += random_offset;
    ts.logits[a] = z;
    max_logit = z > max_logit ? z : max_logit;
  }
  double norm = 0.0;
  for (int64_t a = 0; a < n_active; ++a) {
    ts.logits[a] = std::exp(ts.logits[a] - max_logit);
    norm += ts.logits[a];
  }
  const float inv_norm = static_cast<float>(1.0 / norm);
  const float target = 1.0f / static_cast<float>(n_true);
  double loss = 0.0;
  for (int64_t a = 0; a < n_true; ++a)
    loss -= std::log(std::max(double(ts.logits[a]) * inv_norm, 1e-30));
  slots.loss[s] = loss * target;
  slots.active[s] = n_active;

  // Output layer: deltas (true labels come first in the active set) and the
  // gradient flowing into the last hidden layer.
  float* dh = ts.output_input_grad.data();
  std::fill(dh, dh + dim, 0.f);
  std::vector<int32_t>& ids = slots.out_ids[s];
  std::vector<float>& deltas = slots.out_deltas[s];
  ids.assign(active.begin(), active.end());
  deltas.resize(n_active);
  for (int64_t a = 0; a < n_active; ++a) {
    const float p = ts.logits[a] * inv_norm;
    const float delta = (a < n_true ? p - target : p) * inv_batch;
    deltas[a] = delta;
    k.axpy(delta, out.weight.row(active[a]), dh, dim);
  }

  // Hidden layers, last to first: delta = upstream gradient masked by ReLU'.
  for (int64_t i = static_cast<int64_t>(n_hidden) - 1; i >= 0; --i) {
    const int64_t n_out = net.hidden[i].n_out();
    const float* z = slots.activation(i, s);
    float* d = slots.delta(i, s);
    if (i + 1 == static_cast<int64_t>(n_hidden)) {
      for (int64_t o = 0; o < n_out; ++o) d[o] = z[o] > 0.f ? dh[o] : 0.f;
    } else {
      const Layer& next = net.hidden[i + 1];
      const float* d_next = slots.delta(i + 1, s);
      std::fill(d, d + n_out, 0.f);
      for (int64_t o = 0; o < next.n_out(); ++o)
        if (d_next[o] != 0.f) k.axpy(d_next[o], next.weight.row(o), d, n_out);
      for (int64_t o = 0; o < n_out; ++o) d[o] = z[o] > 0.f ? d[o] : 0.f;
    }
  }
}

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
constexpr int64_t kPrefetchRows = 4;

void update_rows(const AdamStep& adam, Layer& layer, const RowGroups& groups, BatchSlots& slots,
                 bool output_layer, std::vector<float>& grad) {
  const int64_t cols = layer.weight.cols;
  for (int64_t g = 0; g < groups.n_groups(); ++g) {
    // Rows are scattered over memory: fetch a later row's weights and moments
    // while this one is summed and updated (Adam is bound by these misses).
    if (g + kPrefetchRows < groups.n_groups()) {
      const int64_t ahead = groups.rows()[g + kPrefetchRows] * cols;
      for (int64_t c = 0; c < cols; c += 16) {
        __builtin_prefetch(layer.weight.value + ahead + c, 1);
        __builtin_prefetch(layer.weight.adam_m + ahead + c, 1);
        __builtin_prefetch(layer.weight.adam_v + ahead + c, 1);
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

// Dense Adam (TrainConfig::dense_adam), after update_sparse_rows: every row the
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

std::unique_ptr<HashFamily> output_family(const Network& net, const HashTables& tables,
                                          const TrainConfig& config, uint64_t hash_seed) {
  return make_hash_family(config.hash_family, static_cast<int>(net.last_hidden_size()),
                          config.hash_bits, tables.n_tables, hash_seed);
}

}  // namespace

void rebuild_output_tables(const Network& net, HashTables& tables, const TrainConfig& config,
                           const TrainSchedule& schedule) {
  const auto family = output_family(net, tables, config, schedule.hash_seed);
  build_tables(*family, net.output.weight, net.output.row_step, config.bucket_size,
               config.bucket_policy, derive_seed(schedule.hash_seed, schedule.n_rehashes),
               config.n_threads, tables);
}

EpochStats train_epoch(Network& net, HashTables* tables, const FeatureMatrix& X,
                       const LabelMatrix& Y, const int64_t* order, int64_t n_order,
                       const TrainConfig& config, TrainSchedule& schedule,
                       const StopCheck& should_stop) {
  if (!config.exact && !tables) throw std::invalid_argument("sampled training needs hash tables");
  if (config.batch_size > INT32_MAX) throw std::invalid_argument("batch_size is too large");
  const int n_threads = config.n_threads < 1 ? 1 : config.n_threads;
  std::unique_ptr<HashFamily> family;
  if (!config.exact) family = output_family(net, *tables, config, schedule.hash_seed);

  const int64_t batch = std::min(config.batch_size, std::max<int64_t>(n_order, 1));
  BatchSlots slots(net, batch);
  std::vector<std::unique_ptr<RowShard>> shards;
  for (int t = 0; t < n_threads; ++t) shards.push_back(std::make_unique<RowShard>(net));
  std::vector<std::vector<float>> weight_grads;
  for (const Layer& layer : net.hidden) weight_grads.emplace_back(
      &layer == &net.hidden[0] ? 0 : layer.weight.size(), 0.f);
  std::vector<std::unique_ptr<ThreadScratch>> scratch;
  for (int t = 0; t < n_threads; ++t)
    scratch.push_back(std::make_unique<ThreadScratch>(net, family.get()));
  const AdamDecayTable adam_decay(config.adam);

  EpochStats stats;
  using Clock = std::chrono::steady_clock;
  auto last_check = Clock::now();
  ParallelErrors errors;
  for (int64_t begin = 0; begin < n_order; begin += batch) {
    const int64_t end = std::min(n_order, begin + batch);
    const int64_t n = end - begin;

    if (!config.exact && schedule.step >= schedule.next_rehash_step) {
      const bool new_functions = config.rebuild_every > 0 && schedule.n_rehashes > 0 &&
                                 schedule.n_rehashes % config.rebuild_every == 0;
      if (new_functions) {
        schedule.hash_seed = mix64(schedule.hash_seed + 1);
        family = output_family(net, *tables, config, schedule.hash_seed);
        stats.n_rebuilds += 1;
      }
      rebuild_output_tables(net, *tables, config, schedule);
      schedule.n_rehashes += 1;
      stats.n_rehashes += 1;
      schedule.next_rehash_step =
          schedule.step +
          std::max<int64_t>(1, std::llround(std::min(schedule.rehash_interval, 1e18)));
      schedule.rehash_interval *= config.rehash_growth;
    }

    // 1. Per sample, in parallel: forward, sampled softmax, backward into its slot.
    const float inv_batch = 1.0f / static_cast<float>(n);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 2)
    for (int64_t s = 0; s < n; ++s) {
      errors.run([&] {
        // A stream per sample: its negatives do not depend on the thread that runs it.
        Rng rng(config.seed, static_cast<uint64_t>(schedule.samples_seen + s));
        train_sample(net, tables, family.get(), config, X, Y, order[begin + s], s, inv_batch,
                     rng, slots, *scratch[omp_get_thread_num()]);
      });
    }
    errors.rethrow();

    // 2. Batch statistics and the divergence check, before any weight changes.
    double batch_loss = 0.0;
    for (int64_t s = 0; s < n; ++s) {
      batch_loss += slots.loss[s];
      stats.n_labelled += slots.labelled[s];
      stats.active_sum += static_cast<double>(slots.active[s]);
    }
    stats.loss_sum += batch_loss;
    if (!std::isfinite(batch_loss))
      throw std::runtime_error("training diverged: the loss is not finite; lower learning_rate");

    // 3. One Adam step: touched output and input rows lazily, the rest densely.
    schedule.step += 1;
    const AdamStep adam(config.adam, adam_decay, schedule.step);
    update_sparse_rows(adam, net, slots, X, order + begin, n, shards, n_threads);
    if (config.adam_updates == AdamUpdates::Dense) {  // every other row too, zero gradient
      update_untouched_rows(adam, net.output, true, n_threads);
      update_untouched_rows(adam, net.hidden[0], false, n_threads);
    }
    update_dense_params(adam, net, slots, n, weight_grads, n_threads);
    schedule.samples_seen += n;
    stats.n_samples += n;

    const auto now = Clock::now();
    if (should_stop && now - last_check > std::chrono::milliseconds(50)) {
      last_check = now;
      if (should_stop()) throw Interrupted{};
    }
  }
  return stats;
}

}  // namespace slide
