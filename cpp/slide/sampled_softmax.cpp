#include "slide/sampled_softmax.h"

#include <algorithm>
#include <cmath>

#include "slide/kernels.h"
#include "slide/prefetch.h"

namespace slide {
namespace {

// Inverted dropout of the hidden vector h: each unit is zeroed with probability
// `rate`, the others scaled by `keep_scale`; returns nothing to undo (the zeros
// stay in the activation the backward pass reads, which masks their deltas).
void drop_units(float* h, int64_t n, double rate, float keep_scale, Rng& rng) {
  // A unit is dropped when the top 32 bits of a draw fall below rate * 2^32.
  const auto threshold = static_cast<uint64_t>(rate * 4294967296.0);
  for (int64_t o = 0; o < n; ++o) h[o] = (rng.next() >> 32) < threshold ? 0.f : h[o] * keep_scale;
}

// The members of the sample's n_probes best clusters (ties: lower cluster first).
const ActiveSetSampler::IdGroups& best_cluster_members(const ClusterNegatives& negatives,
                                                       const float* h, int64_t dim,
                                                       ThreadScratch& ts) {
  const LabelClusters& c = *negatives.clusters;
  const Kernels& k = kernels();
  ts.cluster_scores.resize(c.n_clusters);
  for (int64_t i = 0; i < c.n_clusters; ++i)
    ts.cluster_scores[i] = k.dot(c.centroid_weights + i * dim, h, dim) + c.centroid_biases[i];
  const int64_t n_probes = std::min(negatives.n_probes, c.n_clusters);
  if (!ts.cluster_order) ts.cluster_order = std::make_unique<ClusterOrder>(c.n_clusters, n_probes);
  const std::vector<int32_t>& ranked = ts.cluster_order->rank(ts.cluster_scores.data());
  ts.cluster_members.clear();
  for (int64_t i = 0; i < n_probes; ++i) {
    const int32_t cl = ranked[i];
    ts.cluster_members.emplace_back(c.ids + c.offsets[cl], c.offsets[cl + 1] - c.offsets[cl]);
  }
  return ts.cluster_members;
}

}  // namespace

void train_sample(const Network& net, const HashTables* tables, const HashFamily* family,
                  const ClusterNegatives& negatives, const TrainConfig& config,
                  const FeatureMatrix& X, const LabelMatrix& Y, int64_t row, int64_t s,
                  float inv_batch, Rng& rng, BatchSlots& slots, ThreadScratch& ts) {
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
  const int64_t dim = net.last_hidden_size();
  const float keep_scale = static_cast<float>(1.0 / (1.0 - config.dropout));
  if (config.dropout > 0.0)
    drop_units(ts.activations.layer(n_hidden - 1), dim, config.dropout, keep_scale, rng);
  for (size_t i = 0; i < n_hidden; ++i)
    std::copy(ts.activations.layer(i), ts.activations.layer(i) + net.hidden[i].n_out(),
              slots.activation(i, s));
  const float* h = ts.activations.last();

  if (tables)
    bucket_indices_of(*family, tables->table_bits, h, *ts.bucket_scratch, ts.buckets.data());
  const ActiveSetSampler::IdGroups* groups =
      negatives.clusters && !config.exact ? &best_cluster_members(negatives, h, dim, ts) : nullptr;
  ts.sampler.build_for_training(labels, n_labels, tables, ts.buckets.data(), groups,
                                config.limits, config.exact, rng);
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
    if (a + kPrefetchRowsAhead < n_active) {  // the active set is scattered over the layer
      const int32_t ahead = active[a + kPrefetchRowsAhead];
      prefetch_floats(out.weight.row(ahead), dim);
      __builtin_prefetch(out.bias.value + ahead);
    }
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
      // Dropped units have z = 0; the kept ones were scaled by keep_scale (1 without dropout).
      for (int64_t o = 0; o < n_out; ++o) d[o] = z[o] > 0.f ? dh[o] * keep_scale : 0.f;
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

}  // namespace slide
