// What the samples of a batch leave for the batch's update (trainer.cpp): the
// per-sample phase (sampled_softmax.cpp) writes, the row updates (row_updates.cpp) read.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/network.h"

namespace slide {

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

}  // namespace slide
