// Exact forward pass through the hidden layers for one sparse input row.
#pragma once

#include <cstdint>
#include <vector>

#include "slide/csr_view.h"
#include "slide/network.h"

namespace slide {

// Post-ReLU activations of every hidden layer, reused across samples.
class HiddenActivations {
 public:
  explicit HiddenActivations(const Network& net) {
    for (const Layer& layer : net.hidden) values_.emplace_back(layer.n_out());
  }
  float* layer(int64_t i) { return values_[i].data(); }
  const float* layer(int64_t i) const { return values_[i].data(); }
  const float* last() const { return values_.back().data(); }

 private:
  std::vector<std::vector<float>> values_;
};

// relu(b0 + sum_j x_j W0[j]) then relu(b_i + W_i z_{i-1}) for the other layers.
void forward_hidden(const Network& net, const FeatureMatrix& X, int64_t row,
                    HiddenActivations& out);

}  // namespace slide
