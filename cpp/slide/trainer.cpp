// The epoch: batches in order, the rehash / rebuild schedule of the output
// tables, the per-sample phase in parallel (sampled_softmax.cpp), then one
// update (row_updates.cpp) per batch.
#include "slide/trainer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "slide/batch_slots.h"
#include "slide/parallel.h"
#include "slide/rng.h"
#include "slide/row_updates.h"
#include "slide/sampled_softmax.h"

namespace slide {
namespace {

std::unique_ptr<HashFamily> output_family(const Network& net, const HashTables& tables,
                                          const TrainConfig& config, uint64_t hash_seed) {
  return make_hash_family(config.hash_family, static_cast<int>(net.last_hidden_size()),
                          config.hash_bits, tables.n_tables, hash_seed);
}

}  // namespace

void rebuild_output_tables(const Network& net, HashTables& tables, const TrainConfig& config,
                           const TrainSchedule& schedule, const StopCheck& should_stop) {
  const auto family = output_family(net, tables, config, schedule.hash_seed);
  build_tables(*family, net.output.weight, net.output.row_step, config.bucket_size,
               config.bucket_policy, derive_seed(schedule.hash_seed, schedule.n_rehashes),
               config.n_threads, tables, should_stop);
}

EpochStats train_epoch(Network& net, HashTables* tables, const FeatureMatrix& X,
                       const LabelMatrix& Y, const int64_t* order, int64_t n_order,
                       const TrainConfig& config, TrainSchedule& schedule,
                       const StopCheck& should_stop, const ClusterNegatives& negatives) {
  if (config.exact) tables = nullptr;
  if (!config.exact && !tables && !negatives.clusters)
    throw std::invalid_argument("sampled training needs hash tables or label clusters");
  if (config.batch_size > INT32_MAX) throw std::invalid_argument("batch_size is too large");
  const int n_threads = config.n_threads < 1 ? 1 : config.n_threads;
  std::unique_ptr<HashFamily> family;
  if (tables) family = output_family(net, *tables, config, schedule.hash_seed);

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
  StopPoll stop(should_stop);
  ParallelErrors errors;
  for (int64_t begin = 0; begin < n_order; begin += batch) {
    const int64_t end = std::min(n_order, begin + batch);
    const int64_t n = end - begin;

    if (tables && schedule.step >= schedule.next_rehash_step) {
      const bool new_functions = config.rebuild_every > 0 && schedule.n_rehashes > 0 &&
                                 schedule.n_rehashes % config.rebuild_every == 0;
      // The new seed is kept only once its tables are built: an interrupted
      // rebuild is redone, the same, by the next call.
      TrainSchedule rebuilt = schedule;
      if (new_functions) rebuilt.hash_seed = mix64(schedule.hash_seed + 1);
      rebuild_output_tables(net, *tables, config, rebuilt, should_stop);
      if (new_functions) {
        schedule.hash_seed = rebuilt.hash_seed;
        family = output_family(net, *tables, config, schedule.hash_seed);
        stats.n_rebuilds += 1;
      }
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
        stop.poll_in_team();  // a stop here leaves the batch before any weight changes
        // A stream per sample: its negatives do not depend on the thread that runs it.
        Rng rng(config.seed, static_cast<uint64_t>(schedule.samples_seen + s));
        train_sample(net, tables, family.get(), negatives, config, X, Y, order[begin + s], s,
                     inv_batch, rng, slots, *scratch[omp_get_thread_num()]);
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

    stop.poll();
  }
  return stats;
}

}  // namespace slide
