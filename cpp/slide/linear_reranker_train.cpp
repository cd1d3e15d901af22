// Training of the per-label linear re-ranker: LIBLINEAR's dual coordinate
// descent for the L2-regularised squared hinge loss (Hsieh et al., ICML 2008),
// one label per task, each on its own rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "slide/linear_reranker.h"
#include "slide/parallel.h"
#include "slide/rng.h"

namespace slide {
namespace {

// A row of a label's problem: the row id, negated-minus-one for a negative.
inline int64_t positive(int64_t row) { return row; }
inline int64_t negative(int64_t row) { return ~row; }

bool contains(const LabelMatrix& Y, int64_t row, int32_t label) {
  return std::binary_search(Y.indices + Y.row_begin(row), Y.indices + Y.row_end(row), label);
}

// Rows of each label's problem, grouped by label (offsets: n_labels + 1).
void label_problems(const LabelMatrix& Y, const int32_t* shortlist, int64_t k, int64_t n_labels,
                    std::vector<int64_t>& offsets, std::vector<int64_t>& entries) {
  offsets.assign(n_labels + 1, 0);
  auto for_each_entry = [&](auto&& visit) {
    for (int64_t r = 0; r < Y.n_rows; ++r) {
      for (int64_t p = Y.row_begin(r); p < Y.row_end(r); ++p) visit(Y.indices[p], positive(r));
      for (int64_t j = 0; j < k; ++j) {
        const int32_t label = shortlist[r * k + j];
        if (label >= 0 && label < n_labels && !contains(Y, r, label)) visit(label, negative(r));
      }
    }
  };
  for_each_entry([&](int32_t label, int64_t) { ++offsets[label + 1]; });
  std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
  entries.resize(offsets[n_labels]);
  std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
  for_each_entry([&](int32_t label, int64_t entry) { entries[fill[label]++] = entry; });
}

// One label's model; w and is_touched (n_features, zero on entry and on exit)
// are the thread's scratch.
struct LabelSolver {
  const FeatureMatrix& X;
  const std::vector<float>& inv_norm;
  const RerankerOptions& options;
  std::vector<float> w;
  std::vector<double> alpha;
  std::vector<int64_t> order;
  std::vector<char> is_touched;   // n_features flags, cleared with `touched`
  std::vector<int32_t> touched;   // the features of the label's rows

  LabelSolver(const FeatureMatrix& x, const std::vector<float>& norms, const RerankerOptions& o)
      : X(x), inv_norm(norms), options(o), w(x.n_cols, 0.0f), is_touched(x.n_cols, 0) {}

  double margin(int64_t row, double bias) const {
    double s = 0.0;
    for (int64_t p = X.row_begin(row); p < X.row_end(row); ++p)
      s += static_cast<double>(w[X.indices[p]]) * X.data[p];
    return s * inv_norm[row] + bias;
  }

  void solve(int32_t label, const int64_t* entries, int64_t m, std::vector<int32_t>& kept_ids,
             std::vector<float>& kept_values, float& bias_out) {
    const double diag = 0.5 / options.C;  // squared hinge: D_ii = 1 / (2C), no upper bound
    alpha.assign(m, 0.0);
    order.resize(m);
    std::iota(order.begin(), order.end(), 0);
    Rng rng(options.seed, static_cast<uint64_t>(label));
    double bias = 0.0;
    for (int64_t i = 0; i < m; ++i) {
      const int64_t row = entries[i] >= 0 ? entries[i] : ~entries[i];
      for (int64_t p = X.row_begin(row); p < X.row_end(row); ++p) {
        const int32_t f = X.indices[p];
        if (!is_touched[f]) {
          is_touched[f] = 1;
          touched.push_back(f);
        }
      }
    }
    for (int iter = 0; iter < options.max_iter; ++iter) {
      for (int64_t i = m - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
      double pg_max = -std::numeric_limits<double>::infinity();
      double pg_min = std::numeric_limits<double>::infinity();
      for (int64_t i : order) {
        const int64_t entry = entries[i];
        const int64_t row = entry >= 0 ? entry : ~entry;
        const double y = entry >= 0 ? 1.0 : -1.0;
        const double gradient = y * margin(row, bias) - 1.0 + diag * alpha[i];
        const double projected = alpha[i] == 0.0 ? std::min(gradient, 0.0) : gradient;
        pg_max = std::max(pg_max, projected);
        pg_min = std::min(pg_min, projected);
        if (projected == 0.0) continue;
        const double row_sq = X.row_nnz(row) > 0 ? 1.0 : 0.0;  // |x / |x||^2
        const double q = row_sq + 1.0 + diag;                  // + 1: the bias feature
        const double next = std::max(alpha[i] - gradient / q, 0.0);
        const double step = (next - alpha[i]) * y;
        alpha[i] = next;
        const float scale = static_cast<float>(step * inv_norm[row]);
        for (int64_t p = X.row_begin(row); p < X.row_end(row); ++p)
          w[X.indices[p]] += scale * X.data[p];
        bias += step;
      }
      if (pg_max - pg_min <= options.tol) break;
    }
    std::sort(touched.begin(), touched.end());
    for (int32_t f : touched) {
      if (std::fabs(w[f]) > options.prune) {
        kept_ids.push_back(f);
        kept_values.push_back(w[f]);
      }
      w[f] = 0.0f;
      is_touched[f] = 0;
    }
    touched.clear();
    bias_out = static_cast<float>(bias);
  }
};

}  // namespace

LinearWeights train_linear_reranker(const FeatureMatrix& X, const LabelMatrix& Y,
                                    const int32_t* shortlist, int64_t shortlist_k,
                                    int64_t n_labels, const RerankerOptions& options,
                                    int n_threads, const StopCheck& should_stop) {
  std::vector<float> inv_norm(X.n_rows, 0.0f);
  for (int64_t r = 0; r < X.n_rows; ++r) {
    double sq = 0.0;
    for (int64_t p = X.row_begin(r); p < X.row_end(r); ++p)
      sq += static_cast<double>(X.data[p]) * X.data[p];
    inv_norm[r] = sq > 0.0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
  }
  std::vector<int64_t> offsets, entries;
  label_problems(Y, shortlist, shortlist_k, n_labels, offsets, entries);

  std::vector<std::vector<int32_t>> ids(n_labels);
  std::vector<std::vector<float>> values(n_labels);
  LinearWeights out;
  out.bias.assign(n_labels, 0.0f);
  // Blocks of labels between stop polls; labels within a block go to threads
  // one at a time (problem sizes follow the label frequencies: very uneven).
  const int64_t block = 256 * std::max(1, n_threads);
  ParallelErrors errors;
  StopPoll stop(should_stop);
  for (int64_t first = 0; first < n_labels; first += block) {
    const int64_t last = std::min(n_labels, first + block);
#pragma omp parallel num_threads(n_threads)
    {
      LabelSolver solver(X, inv_norm, options);
#pragma omp for schedule(dynamic, 1)
      for (int64_t l = first; l < last; ++l) {
        errors.run([&] {
          solver.solve(static_cast<int32_t>(l), entries.data() + offsets[l],
                       offsets[l + 1] - offsets[l], ids[l], values[l], out.bias[l]);
        });
      }
    }
    errors.rethrow();
    stop.poll();
  }
  out.indptr.assign(n_labels + 1, 0);
  for (int64_t l = 0; l < n_labels; ++l)
    out.indptr[l + 1] = out.indptr[l] + static_cast<int64_t>(ids[l].size());
  out.indices.reserve(out.indptr[n_labels]);
  out.values.reserve(out.indptr[n_labels]);
  for (int64_t l = 0; l < n_labels; ++l) {
    out.indices.insert(out.indices.end(), ids[l].begin(), ids[l].end());
    out.values.insert(out.values.end(), values[l].begin(), values[l].end());
    std::vector<int32_t>().swap(ids[l]);
    std::vector<float>().swap(values[l]);
  }
  return out;
}

}  // namespace slide
