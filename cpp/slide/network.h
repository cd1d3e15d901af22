// The network's parameters as views of arrays the caller owns (numpy on the
// Python side): sparse input -> dense ReLU hidden layers -> wide output layer.
//
// Layout, chosen for the sparse access patterns:
// - input layer weights are input-major (n_features x h0): a sparse input row
//   touches whole contiguous rows (one per nonzero feature);
// - every other layer is neuron-major (n_out x n_in): one output neuron is one
//   contiguous row, which is what the hash tables index and the sampler scores.
#pragma once

#include <cstdint>
#include <vector>

namespace slide {

// A trainable tensor with its Adam moments, all row-major (rows x cols).
struct Param {
  float* value = nullptr;
  float* adam_m = nullptr;
  float* adam_v = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  float* row(int64_t r) const { return value + r * cols; }
  int64_t size() const { return rows * cols; }
};

// One layer: weights, biases (1 x n_out) and, for layers updated lazily row by
// row, the Adam step at which each weight row (and its bias) was last updated.
struct Layer {
  Param weight;
  Param bias;
  int64_t* row_step = nullptr;  // null: the layer is updated densely every step

  int64_t n_out() const { return bias.cols; }
};

struct Network {
  std::vector<Layer> hidden;  // hidden[0]: input layer (input-major weights)
  Layer output;               // neuron-major weights, lazily updated rows

  int64_t n_features() const { return hidden.front().weight.rows; }
  int64_t n_labels() const { return output.weight.rows; }
  int64_t last_hidden_size() const { return hidden.back().n_out(); }
  int64_t widest_hidden() const {
    int64_t w = 0;
    for (const Layer& l : hidden) w = l.n_out() > w ? l.n_out() : w;
    return w;
  }
};

}  // namespace slide
