// The label-cluster index of an output layer (built by sklearn_slide/_label_clusters.py):
// the output neurons grouped by the direction of their weights. Inference scores only
// the labels of a row's best clusters (predict_clusters.cpp); training takes them as
// a sample's hard negatives (sampled_softmax.cpp).
#pragma once

#include <cstdint>

namespace slide {

// Cluster c holds ids[offsets[c]..offsets[c+1]) and is scored like a neuron with
// weights centroid_weights[c] and bias centroid_biases[c].
struct LabelClusters {
  const float* centroid_weights;  // n_clusters x last_hidden_size
  const float* centroid_biases;   // n_clusters
  int64_t n_clusters;
  const int32_t* offsets;         // n_clusters + 1, from 0 to n_labels
  const int32_t* ids;             // n_labels
};

}  // namespace slide
