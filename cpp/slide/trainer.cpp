#include "slide/trainer.h"

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
#include "slide/zeroed_array.h"

namespace slide {
namespace {

// Gradients of the rows that sparse inputs and sampled outputs touch: shared by
// all threads and accumulated without locks (HOGWILD). Weights themselves only
// change between batches, so forward passes never read a half-written row.
struct SparseGradients {
  SparseGradients(const Network& net)
      : input_rows(net.hidden[0].weight.size()),
        input_touched(net.n_features()),
        output_rows(net.output.weight.size()),
        output_bias(net.n_labels()),
        output_touched(net.n_labels()) {}
  ZeroedArray<float> input_rows;
  ZeroedArray<uint8_t> input_touched;
  ZeroedArray<float> output_rows;
  ZeroedArray<float> output_bias;
  ZeroedArray<uint8_t> output_touched;
};

// Everything a thread needs for one sample, allocated once per epoch.
struct ThreadState {
  ThreadState(const Network& net, const HashFamily* family)
      : activations(net), sampler(net.n_labels()) {
    for (size_t i = 0; i < net.hidden.size(); ++i) {
      delta.emplace_back(net.hidden[i].n_out());
      bias_grad.emplace_back(net.hidden[i].n_out(), 0.f);
      weight_grad.emplace_back(i == 0 ? 0 : net.hidden[i].weight.size(), 0.f);
    }
    output_input_grad.resize(net.last_hidden_size());
    if (family) {
      buckets.resize(family->n_tables());
      bucket_scratch = std::make_unique<BucketScratch>(*family);
    }
  }
  HiddenActivations activations;
  std::vector<std::vector<float>> delta;        // dLoss/d(pre-activation), per hidden layer
  std::vector<std::vector<float>> bias_grad;    // per hidden layer (dense, reduced per batch)
  std::vector<std::vector<float>> weight_grad;  // hidden layers >= 1 (dense, reduced per batch)
  std::vector<float> output_input_grad;         // dLoss/d(last hidden activation)
  std::vector<uint32_t> buckets;
  std::unique_ptr<BucketScratch> bucket_scratch;
  ActiveSetSampler sampler;
  std::vector<float> logits;
  double loss = 0.0;
  int64_t labelled = 0;
  double active = 0.0;
};

// Forward and backward pass of one sample over its active output neurons.
void train_sample(const Network& net, const HashTables* tables, const HashFamily* family,
                  const TrainConfig& config, const FeatureMatrix& X, const LabelMatrix& Y,
                  int64_t row, float inv_batch, Rng& rng, SparseGradients& grads,
                  ThreadState& ts) {
  const Kernels& k = kernels();
  const int32_t* labels = Y.indices + Y.row_begin(row);
  const int64_t n_labels = Y.row_nnz(row);
  if (n_labels == 0) return;  // no target distribution: contributes no gradient

  forward_hidden(net, X, row, ts.activations);
  const float* h = ts.activations.last();
  const int64_t dim = net.last_hidden_size();

  if (!config.exact) bucket_indices_of(*family, tables->table_bits, h, *ts.bucket_scratch,
                                       ts.buckets.data());
  ts.sampler.build_for_training(labels, n_labels, tables, ts.buckets.data(), config.limits,
                                config.exact, rng);
  const std::vector<int32_t>& active = ts.sampler.ids();
  const int64_t n_active = static_cast<int64_t>(active.size());
  const int64_t n_true = ts.sampler.n_true();

  // Softmax over the active set.
  ts.logits.resize(n_active);
  float max_logit = -INFINITY;
  const Layer& out = net.output;
  for (int64_t a = 0; a < n_active; ++a) {
    const int32_t id = active[a];
    const float z = k.dot(out.weight.row(id), h, dim) + out.bias.value[id];
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
  ts.loss += loss * target;
  ts.labelled += 1;
  ts.active += static_cast<double>(n_active);

  // Output layer backward: the true labels come first in the active set.
  float* dh = ts.output_input_grad.data();
  std::fill(dh, dh + dim, 0.f);
  for (int64_t a = 0; a < n_active; ++a) {
    const int32_t id = active[a];
    const float p = ts.logits[a] * inv_norm;
    const float delta = (a < n_true ? p - target : p) * inv_batch;
    k.axpy(delta, out.weight.row(id), dh, dim);
    k.axpy(delta, h, grads.output_rows.data() + id * dim, dim);
    grads.output_bias[id] += delta;
    grads.output_touched[id] = 1;
  }

  // Hidden layers backward (exact), last to first.
  for (int64_t i = static_cast<int64_t>(net.hidden.size()) - 1; i >= 0; --i) {
    const Layer& layer = net.hidden[i];
    const int64_t n_out = layer.n_out();
    const float* z = ts.activations.layer(i);
    const float* upstream = i + 1 == static_cast<int64_t>(net.hidden.size())
                                ? dh
                                : nullptr;
    float* d = ts.delta[i].data();
    if (upstream) {
      for (int64_t o = 0; o < n_out; ++o) d[o] = z[o] > 0.f ? upstream[o] : 0.f;
    } else {
      // d_i = (W_{i+1}^T d_{i+1}) masked by ReLU'
      const Layer& next = net.hidden[i + 1];
      const float* d_next = ts.delta[i + 1].data();
      std::fill(d, d + n_out, 0.f);
      for (int64_t o = 0; o < next.n_out(); ++o)
        if (d_next[o] != 0.f) k.axpy(d_next[o], next.weight.row(o), d, n_out);
      for (int64_t o = 0; o < n_out; ++o) d[o] = z[o] > 0.f ? d[o] : 0.f;
    }
    float* gb = ts.bias_grad[i].data();
    for (int64_t o = 0; o < n_out; ++o) gb[o] += d[o];
    if (i > 0) {
      const float* z_prev = ts.activations.layer(i - 1);
      const int64_t n_in = layer.weight.cols;
      float* gw = ts.weight_grad[i].data();
      for (int64_t o = 0; o < n_out; ++o)
        if (d[o] != 0.f) k.axpy(d[o], z_prev, gw + o * n_in, n_in);
    } else {
      for (int64_t p = X.row_begin(row); p < X.row_end(row); ++p) {
        const int32_t j = X.indices[p];
        SLIDE_ASSERT_INDEX(j, net.n_features());
        k.axpy(X.data[p], d, grads.input_rows.data() + int64_t{j} * n_out, n_out);
        grads.input_touched[j] = 1;
      }
    }
  }
}

// Lazy Adam on every row flagged in `touched`, then clears its gradient and flag.
void update_touched_rows(const AdamStep& adam, Layer& layer, float* grad_rows, float* grad_bias,
                         uint8_t* touched, int n_threads) {
  const int64_t n_rows = layer.weight.rows;
  const int64_t cols = layer.weight.cols;
  const bool row_bias = grad_bias != nullptr;
#pragma omp parallel for num_threads(n_threads) schedule(static, 1024)
  for (int64_t r = 0; r < n_rows; ++r) {
    if (!touched[r]) continue;
    const int64_t last = layer.row_step[r];
    float* g = grad_rows + r * cols;
    adam.update(layer.weight.value + r * cols, layer.weight.adam_m + r * cols,
                layer.weight.adam_v + r * cols, g, cols, last);
    if (row_bias)
      adam.update(layer.bias.value + r, layer.bias.adam_m + r, layer.bias.adam_v + r,
                  grad_bias + r, 1, last);
    layer.row_step[r] = adam.step();
    touched[r] = 0;
  }
}

// Sums the per-thread dense gradients (in thread order: deterministic for a
// given thread count) and applies Adam to them, then clears them.
void update_dense_params(const AdamStep& adam, Network& net,
                         std::vector<std::unique_ptr<ThreadState>>& threads) {
  for (size_t i = 0; i < net.hidden.size(); ++i) {
    Layer& layer = net.hidden[i];
    std::vector<float>& gb = threads[0]->bias_grad[i];
    std::vector<float>& gw = threads[0]->weight_grad[i];
    for (size_t t = 1; t < threads.size(); ++t) {
      std::vector<float>& other_b = threads[t]->bias_grad[i];
      std::vector<float>& other_w = threads[t]->weight_grad[i];
      for (size_t j = 0; j < gb.size(); ++j) gb[j] += other_b[j];
      for (size_t j = 0; j < gw.size(); ++j) gw[j] += other_w[j];
      std::fill(other_b.begin(), other_b.end(), 0.f);
      std::fill(other_w.begin(), other_w.end(), 0.f);
    }
    adam.update(layer.bias.value, layer.bias.adam_m, layer.bias.adam_v, gb.data(),
                layer.bias.size(), 0);
    if (i > 0)
      adam.update(layer.weight.value, layer.weight.adam_m, layer.weight.adam_v, gw.data(),
                  layer.weight.size(), 0);
  }
}

std::unique_ptr<HashFamily> output_family(const Network& net, const HashTables& tables,
                                          const TrainConfig& config, uint64_t hash_seed) {
  return make_hash_family(config.hash_kind, static_cast<int>(net.last_hidden_size()),
                          config.codes_per_table, tables.n_tables, hash_seed);
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
  const int n_threads = config.n_threads < 1 ? 1 : config.n_threads;
  std::unique_ptr<HashFamily> family;
  if (!config.exact) family = output_family(net, *tables, config, schedule.hash_seed);

  SparseGradients grads(net);
  std::vector<std::unique_ptr<ThreadState>> threads;
  for (int t = 0; t < n_threads; ++t)
    threads.push_back(std::make_unique<ThreadState>(net, family.get()));

  const AdamDecayTable adam_decay(config.adam);
  EpochStats stats;
  using Clock = std::chrono::steady_clock;
  auto last_check = Clock::now();
  ParallelErrors errors;
  for (int64_t begin = 0; begin < n_order; begin += config.batch_size) {
    const int64_t end = std::min(n_order, begin + config.batch_size);

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
          schedule.step + std::max<int64_t>(1, std::llround(schedule.rehash_interval));
      schedule.rehash_interval *= config.rehash_growth;
    }

    const float inv_batch = 1.0f / static_cast<float>(end - begin);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 2)
    for (int64_t i = begin; i < end; ++i) {
      errors.run([&] {
        // A stream per sample: its negatives do not depend on the thread that runs it.
        Rng rng(config.seed, static_cast<uint64_t>(schedule.samples_seen + (i - begin)));
        ThreadState& ts = *threads[omp_thread_index()];
        train_sample(net, tables, family.get(), config, X, Y, order[i], inv_batch, rng, grads, ts);
      });
    }
    errors.rethrow();

    double batch_loss = 0.0;
    for (auto& ts : threads) {
      batch_loss += ts->loss;
      stats.loss_sum += ts->loss;
      stats.n_labelled += ts->labelled;
      stats.active_sum += ts->active;
      ts->loss = 0.0;
      ts->labelled = 0;
      ts->active = 0.0;
    }
    if (!std::isfinite(batch_loss))
      throw std::runtime_error(
          "training diverged: the loss is not finite; lower learning_rate");

    schedule.step += 1;
    const AdamStep adam(config.adam, adam_decay, schedule.step);
    update_dense_params(adam, net, threads);
    update_touched_rows(adam, net.hidden[0], grads.input_rows.data(), nullptr,
                        grads.input_touched.data(), n_threads);
    update_touched_rows(adam, net.output, grads.output_rows.data(), grads.output_bias.data(),
                        grads.output_touched.data(), n_threads);
    schedule.samples_seen += end - begin;
    stats.n_samples += end - begin;

    const auto now = Clock::now();
    if (should_stop && now - last_check > std::chrono::milliseconds(50)) {
      last_check = now;
      if (should_stop()) throw Interrupted{};
    }
  }
  return stats;
}

}  // namespace slide
