#include "slide/forward.h"

#include <algorithm>

#include "slide/debug_checks.h"
#include "slide/kernels.h"
#include "slide/prefetch.h"

namespace slide {

void forward_hidden(const Network& net, const FeatureMatrix& X, int64_t row,
                    HiddenActivations& out) {
  const Kernels& k = kernels();
  const Layer& first = net.hidden[0];
  const int64_t h0 = first.n_out();
  float* z = out.layer(0);
  std::copy(first.bias.value, first.bias.value + h0, z);
  const int64_t end = X.row_end(row);
  for (int64_t p = X.row_begin(row); p < end; ++p) {
    if (p + kPrefetchRowsAhead < end)  // the row's features are scattered over the layer
      prefetch_floats(first.weight.row(X.indices[p + kPrefetchRowsAhead]), h0);
    SLIDE_ASSERT_INDEX(X.indices[p], first.weight.rows);
    k.axpy(X.data[p], first.weight.row(X.indices[p]), z, h0);
  }
  for (int64_t o = 0; o < h0; ++o) z[o] = z[o] > 0.f ? z[o] : 0.f;

  for (size_t i = 1; i < net.hidden.size(); ++i) {
    const Layer& layer = net.hidden[i];
    const float* prev = out.layer(i - 1);
    float* zi = out.layer(i);
    for (int64_t o = 0; o < layer.n_out(); ++o) {
      const float a = layer.bias.value[o] + k.dot(layer.weight.row(o), prev, layer.weight.cols);
      zi[o] = a > 0.f ? a : 0.f;
    }
  }
}

}  // namespace slide
