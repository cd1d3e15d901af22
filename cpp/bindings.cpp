// The one file that knows pybind11: converts and checks buffers, releases the
// GIL around the engine and turns engine errors into Python exceptions. No
// algorithm lives here. One concept (the seam) in one file of ~600 lines: the
// checks of every buffer the engine reads come first, then one definition per
// Python-visible function or class.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include "slide/bounds.h"
#include "slide/csr_view.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"
#include "slide/kernels.h"
#include "slide/linear_reranker.h"
#include "slide/network.h"
#include "slide/predictor.h"
#include "slide/train_config.h"
#include "slide/trainer.h"

namespace py = pybind11;

namespace {

template <typename T>
T* buffer(const py::array& a, const char* name, bool writable) {
  // Compare type numbers, not dtype objects: unpickled arrays carry equal but distinct dtypes.
  const py::dtype want = py::dtype::of<T>();
  if (a.dtype().num() != want.num() || a.dtype().byteorder() == '>')
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(want)) + ", got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": array must be C-contiguous");
  if (writable && !a.writeable())
    throw py::value_error(std::string(name) + ": array must be writable");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

void check_n_threads(int n_threads) {
  if (n_threads < 1 || n_threads > slide::kMaxThreads)
    throw py::value_error("n_threads must be in [1, " + std::to_string(slide::kMaxThreads) +
                          "], got " + std::to_string(n_threads));
}

// rows * cols of a parameter: sizes come from pickled state, so an overflow
// (which could make a tiny array pass the size check) is an error.
slide::Precision parse_precision(const std::string& name) {
  if (name == "float32") return slide::Precision::kFloat32;
  if (name == "bfloat16") return slide::Precision::kBfloat16;
  throw py::value_error("precision must be 'float32' or 'bfloat16', got '" + name + "'");
}

int64_t checked_size(int64_t rows, int64_t cols, const std::string& name) {
  if (rows < 0 || cols < 0 || (cols > 0 && rows > INT64_MAX / cols))
    throw py::value_error(name + ": shape " + std::to_string(rows) + " x " + std::to_string(cols) +
                          " is out of range");
  return rows * cols;
}

// Hash family arguments (the engine stores dim, K and L as int).
void check_hash_shape(int64_t dim, int64_t codes_per_table, int64_t n_tables) {
  if (dim < 1 || dim > INT_MAX) throw py::value_error("hash input dimension out of range");
  if (codes_per_table < 1 || codes_per_table > slide::kMaxHashBits)
    throw py::value_error("codes_per_table must be in [1, " +
                          std::to_string(slide::kMaxHashBits) + "], got " +
                          std::to_string(codes_per_table));
  if (n_tables < 1 || n_tables > slide::kMaxTables)
    throw py::value_error("n_tables must be in [1, " + std::to_string(slide::kMaxTables) +
                          "], got " + std::to_string(n_tables));
}

void expect_size(const py::array& a, int64_t size, const char* name) {
  if (a.size() != size)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(size) +
                          " values, got " + std::to_string(a.size()));
}

slide::Param param(const py::dict& d, const std::string& key, int64_t rows, int64_t cols,
                   bool with_moments, bool writable) {
  slide::Param p;
  p.rows = rows;
  p.cols = cols;
  const py::array value = d[key.c_str()];
  p.value = buffer<float>(value, key.c_str(), writable);
  const int64_t size = checked_size(rows, cols, key);
  expect_size(value, size, key.c_str());
  if (with_moments) {
    const std::string m = key + "_adam_m", v = key + "_adam_v";
    const py::array am = d[m.c_str()], av = d[v.c_str()];
    p.adam_m = buffer<float>(am, m.c_str(), true);
    p.adam_v = buffer<float>(av, v.c_str(), true);
    expect_size(am, size, m.c_str());
    expect_size(av, size, v.c_str());
  }
  return p;
}

// The network from the dict of arrays the Python side owns (see _network_state.py).
// The scoring options of a prediction call; `packed` (None or what
// pack_output_bf16 returned for this model) must fit the kernels in use.
slide::OutputScoring output_scoring_from(const std::string& precision_name,
                                         const py::object& packed, const slide::Network& net) {
  slide::OutputScoring scoring;
  scoring.precision = parse_precision(precision_name);
  if (packed.is_none() || scoring.precision != slide::Precision::kBfloat16) return scoring;
  const int64_t words = slide::packed_output_bf16_words(net);
  if (words == 0) return scoring;  // packed for other kernels: not used by these
  const py::array a = packed.cast<py::array>();
  expect_size(a, words, "packed_bf16");
  scoring.packed_bf16 = buffer<uint32_t>(a, "packed_bf16", false);
  return scoring;
}

slide::Network network_from(const py::dict& params, bool training) {
  const auto sizes = params["layer_sizes"].cast<std::vector<int64_t>>();
  if (sizes.size() < 3) throw py::value_error("layer_sizes needs input, hidden and output sizes");
  for (int64_t s : sizes)
    if (s < 1 || s > INT_MAX) throw py::value_error("layer sizes must be in [1, 2**31 - 1]");
  slide::Network net;
  const size_t n_hidden = sizes.size() - 2;
  for (size_t i = 0; i < n_hidden; ++i) {
    const std::string w = "hidden_weights_" + std::to_string(i);
    const std::string b = "hidden_biases_" + std::to_string(i);
    slide::Layer layer;
    // Input layer is input-major (n_features x h0), the others neuron-major.
    layer.weight = i == 0 ? param(params, w, sizes[0], sizes[1], training, training)
                          : param(params, w, sizes[i + 1], sizes[i], training, training);
    layer.bias = param(params, b, 1, sizes[i + 1], training, training);
    if (i == 0 && training) {
      const py::array steps = params["input_row_step"];
      layer.row_step = buffer<int64_t>(steps, "input_row_step", true);
      expect_size(steps, sizes[0], "input_row_step");
    }
    net.hidden.push_back(layer);
  }
  const int64_t n_labels = sizes.back(), dim = sizes[sizes.size() - 2];
  net.output.weight = param(params, "output_weights", n_labels, dim, training, training);
  net.output.bias = param(params, "output_biases", 1, n_labels, training, training);
  const py::array steps = params["output_row_step"];
  net.output.row_step = buffer<int64_t>(steps, "output_row_step", training);
  expect_size(steps, n_labels, "output_row_step");
  return net;
}

// Ids grouped by offsets (a hash table's buckets, the label clusters): group g
// is ids[offsets[g]..offsets[g+1]). Offsets must start at 0, never decrease and
// end at most at n_ids (exactly there when `every_id`); grouped ids must be in
// [0, n_ids). Checked before any lookup so that damaged state cannot make one
// read out of bounds.
void check_grouped_ids(const int32_t* offsets, int64_t n_groups, const int32_t* ids,
                       int64_t n_ids, bool every_id, const std::string& what,
                       const std::string& id_name) {
  if (offsets[0] != 0 || offsets[n_groups] > n_ids || (every_id && offsets[n_groups] != n_ids))
    throw py::value_error(what + ": offsets out of range");
  for (int64_t g = 0; g < n_groups; ++g)
    if (offsets[g + 1] < offsets[g]) throw py::value_error(what + ": offsets decrease");
  for (int64_t j = 0; j < offsets[n_groups]; ++j)
    if (ids[j] < 0 || ids[j] >= n_ids)
      throw py::value_error(what + ": " + id_name + " id out of range");
}

// `check_contents`: the tables will be read before being rebuilt (prediction,
// and training, which samples from them until its first rehash), so every
// offset and id is checked: a corrupted model must not make lookups read out
// of bounds. rebuild_tables overwrites them and skips the scan.
slide::HashTables tables_from(const py::dict& t, int64_t n_neurons, bool writable,
                              bool check_contents) {
  slide::HashTables tables;
  tables.n_tables = t["n_tables"].cast<int>();
  tables.table_bits = t["table_bits"].cast<int>();
  tables.n_neurons = n_neurons;
  if (tables.n_tables < 1 || tables.n_tables > slide::kMaxTables || tables.table_bits < 1 ||
      tables.table_bits > 30)
    throw py::value_error("invalid hash table shape");
  const py::array offsets = t["offsets"], ids = t["ids"];
  tables.offsets = buffer<int32_t>(offsets, "offsets", writable);
  tables.ids = buffer<int32_t>(ids, "ids", writable);
  expect_size(offsets, tables.n_tables * (tables.n_buckets() + 1), "offsets");
  expect_size(ids, checked_size(tables.n_tables, n_neurons, "ids"), "ids");
  if (check_contents) {
    for (int tb = 0; tb < tables.n_tables; ++tb)
      check_grouped_ids(tables.offsets + tb * (tables.n_buckets() + 1), tables.n_buckets(),
                        tables.ids + tb * n_neurons, n_neurons, false, "corrupt hash tables",
                        "neuron");
  }
  return tables;
}

// CSR buffers, fully checked: a bad index must be an exception, never a crash.
template <typename Value>
slide::CsrView<Value> csr_from(const py::array& indptr, const py::array& indices,
                               const py::array& data, int64_t n_cols, const char* name) {
  slide::CsrView<Value> m;
  m.indptr = buffer<int64_t>(indptr, "indptr", false);
  m.indices = buffer<int32_t>(indices, "indices", false);
  m.data = buffer<Value>(data, "data", false);
  m.n_rows = static_cast<int64_t>(indptr.size()) - 1;
  m.n_cols = n_cols;
  const std::string what(name);
  if (m.n_rows < 0) throw py::value_error(what + ": indptr is empty");
  if (m.indptr[0] != 0) throw py::value_error(what + ": indptr[0] must be 0");
  for (int64_t r = 0; r < m.n_rows; ++r)
    if (m.indptr[r + 1] < m.indptr[r]) throw py::value_error(what + ": indptr decreases");
  const int64_t nnz = m.indptr[m.n_rows];
  if (nnz != static_cast<int64_t>(indices.size()) || nnz != static_cast<int64_t>(data.size()))
    throw py::value_error(what + ": indptr, indices and data disagree on the number of entries");
  for (int64_t p = 0; p < nnz; ++p)
    if (m.indices[p] < 0 || m.indices[p] >= n_cols)
      throw py::value_error(what + ": column index " + std::to_string(m.indices[p]) +
                            " out of range [0, " + std::to_string(n_cols) + ")");
  return m;
}

slide::TrainSchedule schedule_from(const py::dict& s) {
  slide::TrainSchedule schedule;
  schedule.step = s["step"].cast<int64_t>();
  schedule.samples_seen = s["samples_seen"].cast<int64_t>();
  schedule.next_rehash_step = s["next_rehash_step"].cast<int64_t>();
  schedule.rehash_interval = s["rehash_interval"].cast<double>();
  schedule.n_rehashes = s["n_rehashes"].cast<int64_t>();
  schedule.hash_seed = s["hash_seed"].cast<uint64_t>();
  if (schedule.step < 0 || schedule.samples_seen < 0 || schedule.n_rehashes < 0 ||
      !(schedule.rehash_interval >= 1.0))
    throw py::value_error("corrupt training schedule (negative counters or rehash_interval < 1)");
  return schedule;
}

// Lazy Adam computes the steps a row skipped as step - row_step - 1: a row step
// beyond the schedule's step (a corrupted model) would be a negative gap.
void check_row_steps(const slide::Layer& layer, int64_t n_rows, int64_t step, const char* name) {
  for (int64_t r = 0; r < n_rows; ++r)
    if (layer.row_step[r] < 0 || layer.row_step[r] > step)
      throw py::value_error(std::string("corrupt model: ") + name + " holds step " +
                            std::to_string(layer.row_step[r]) + " outside [0, " +
                            std::to_string(step) + "]");
}

void store_schedule(const slide::TrainSchedule& schedule, py::dict& s) {
  s["step"] = schedule.step;
  s["samples_seen"] = schedule.samples_seen;
  s["next_rehash_step"] = schedule.next_rehash_step;
  s["rehash_interval"] = schedule.rehash_interval;
  s["n_rehashes"] = schedule.n_rehashes;
  s["hash_seed"] = schedule.hash_seed;
}

// Polls Python's signal handlers (Ctrl-C) with the GIL briefly reacquired.
bool python_signal_pending() {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

// Runs fn without the GIL; a pending KeyboardInterrupt raised by the signal
// handler during fn surfaces as that Python exception.
template <typename Fn>
void run_without_gil(Fn&& fn) {
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    try {
      fn();
    } catch (const slide::Interrupted&) {
      interrupted = true;
    }
  }
  if (interrupted) throw py::error_already_set();
}

py::array_t<float> dense_matrix(const py::array& x, const char* name) {
  if (x.ndim() != 2) throw py::value_error(std::string(name) + " must be 2-D");
  buffer<float>(x, name, false);
  return py::reinterpret_borrow<py::array_t<float>>(x);
}

// The label-cluster index (sklearn_slide/_label_clusters.py), checked so that a
// damaged or mismatched index cannot make the engine read out of bounds.
slide::LabelClusters label_clusters_from(const py::dict& c, const slide::Network& net) {
  const py::array weights = c["centroid_weights"], biases = c["centroid_biases"];
  const py::array offsets = c["offsets"], ids = c["ids"];
  slide::LabelClusters index;
  index.n_clusters = biases.size();
  if (index.n_clusters < 1 || index.n_clusters > net.n_labels())
    throw py::value_error("label clusters: need between 1 and n_labels clusters");
  index.centroid_weights = buffer<float>(weights, "centroid_weights", false);
  index.centroid_biases = buffer<float>(biases, "centroid_biases", false);
  index.offsets = buffer<int32_t>(offsets, "offsets", false);
  index.ids = buffer<int32_t>(ids, "ids", false);
  expect_size(weights, checked_size(index.n_clusters, net.last_hidden_size(), "centroid_weights"),
              "centroid_weights");
  expect_size(offsets, index.n_clusters + 1, "offsets");
  expect_size(ids, net.n_labels(), "ids");
  check_grouped_ids(index.offsets, index.n_clusters, index.ids, net.n_labels(), true,
                    "label clusters", "label");
  return index;
}


// X and Y of one fit: checked once, then every epoch reads them (the arrays
// are held so that the views stay valid).
struct TrainingData {
  py::array arrays[6];
  slide::FeatureMatrix X;
  slide::LabelMatrix Y;
};

TrainingData training_data_from(const py::array& x_indptr, const py::array& x_indices,
                                const py::array& x_data, int64_t n_features,
                                const py::array& y_indptr, const py::array& y_indices,
                                const py::array& y_data, int64_t n_labels) {
  TrainingData data{{x_indptr, x_indices, x_data, y_indptr, y_indices, y_data}, {}, {}};
  data.X = csr_from<float>(x_indptr, x_indices, x_data, n_features, "X");
  data.Y = csr_from<float>(y_indptr, y_indices, y_data, n_labels, "Y");
  if (data.X.n_rows != data.Y.n_rows)
    throw py::value_error("X and Y have different numbers of rows");
  return data;
}

// Names of an option's values as the estimator spells them.
template <typename Enum>
struct OptionName {
  Enum value;
  const char* name;
};
constexpr OptionName<slide::BucketPolicy> kBucketPolicies[] = {
    {slide::BucketPolicy::Fifo, "fifo"}, {slide::BucketPolicy::Reservoir, "reservoir"}};
constexpr OptionName<slide::AdamUpdates> kAdamUpdates[] = {{slide::AdamUpdates::Lazy, "lazy"},
                                                           {slide::AdamUpdates::Dense, "dense"}};

template <typename Enum, size_t N>
std::string option_name(const OptionName<Enum> (&names)[N], Enum value) {
  for (const auto& n : names)
    if (n.value == value) return n.name;
  throw std::logic_error("option without a name");
}

template <typename Enum, size_t N>
Enum parse_option(const OptionName<Enum> (&names)[N], const std::string& text,
                  const char* parameter) {
  std::string expected;
  for (const auto& n : names) {
    if (text == n.name) return n.value;
    expected += std::string(expected.empty() ? "'" : ", '") + n.name + "'";
  }
  throw py::value_error(std::string(parameter) + " must be one of " + expected + ", got '" +
                        text + "'");
}

// An option attribute of TrainConfig, read and written as its name.
template <typename Enum, size_t N>
void def_option(py::class_<slide::TrainConfig>& cls, const char* name,
                const OptionName<Enum> (&names)[N], Enum slide::TrainConfig::*member) {
  cls.def_property(
      name, [&names, member](const slide::TrainConfig& c) { return option_name(names, c.*member); },
      [&names, member, name](slide::TrainConfig& c, const std::string& value) {
        c.*member = parse_option(names, value, name);
      });
}

// slide::TrainConfig as a Python class whose attributes are the estimator's
// parameter names (options as their strings); checked by check_train_config
// when an epoch starts.
void bind_train_config(py::module_& m) {
  using slide::TrainConfig;
  py::class_<TrainConfig> config(m, "TrainConfig",
                                 "Training options; attributes named like SlideClassifier's "
                                 "parameters, with the same defaults.");
  config.def(py::init<>())
      .def_readwrite("exact", &TrainConfig::exact)
      .def_property(
          "hash_family", [](const TrainConfig& c) { return slide::hash_kind_name(c.hash_family); },
          [](TrainConfig& c, const std::string& v) { c.hash_family = slide::parse_hash_kind(v); })
      .def_readwrite("hash_bits", &TrainConfig::hash_bits)
      .def_readwrite("bucket_size", &TrainConfig::bucket_size)
      .def_property(
          "min_active", [](const TrainConfig& c) { return c.limits.min_active; },
          [](TrainConfig& c, int64_t v) { c.limits.min_active = v; })
      .def_property(
          "max_active", [](const TrainConfig& c) { return c.limits.max_active; },
          [](TrainConfig& c, int64_t v) { c.limits.max_active = v; })
      .def_property(
          "learning_rate", [](const TrainConfig& c) { return c.adam.learning_rate; },
          [](TrainConfig& c, float v) { c.adam.learning_rate = v; })
      .def_readwrite("batch_size", &TrainConfig::batch_size)
      .def_readwrite("n_threads", &TrainConfig::n_threads)
      .def_readwrite("seed", &TrainConfig::seed)
      .def_readwrite("rehash_growth", &TrainConfig::rehash_growth)
      .def_readwrite("rebuild_every", &TrainConfig::rebuild_every)
      .def_readwrite("logq_correction", &TrainConfig::logq_correction)
      .def_readwrite("dropout", &TrainConfig::dropout);
  def_option(config, "bucket_policy", kBucketPolicies, &TrainConfig::bucket_policy);
  def_option(config, "adam_updates", kAdamUpdates, &TrainConfig::adam_updates);
}

// The per-label linear re-ranker's weights (sklearn_slide/_reranker.py), checked
// so that a damaged model cannot make scoring read out of bounds.
slide::LinearWeightsView linear_weights_from(const py::dict& d, int64_t n_labels,
                                             int64_t n_features) {
  // Label-major CSR (one row per label), checked as every CSR input is.
  const py::array indptr = d["indptr"], bias = d["bias"];
  expect_size(indptr, n_labels + 1, "reranker indptr");
  expect_size(bias, n_labels, "reranker bias");
  const auto rows = csr_from<float>(indptr, d["indices"], d["values"], n_features, "reranker");
  slide::LinearWeightsView w;
  w.indptr = rows.indptr;
  w.indices = rows.indices;
  w.values = rows.data;
  w.bias = buffer<float>(bias, "reranker bias", false);
  w.n_labels = n_labels;
  w.n_features = n_features;
  return w;
}

// A (rows x k) int32 array of label ids, matching `n_rows`.
const int32_t* label_grid(const py::array& a, int64_t n_rows, const char* name) {
  if (a.ndim() != 2 || a.shape(0) != n_rows)
    throw py::value_error(std::string(name) + " must be 2-D with one row per row of X");
  return buffer<int32_t>(a, name, false);
}

template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* owned = new std::vector<T>(std::move(v));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owned->size()), owned->data(), free_when_done);
}

void bind_linear_reranker(py::module_& m) {
  m.def(
      "train_linear_reranker",
      [](const py::array& x_indptr, const py::array& x_indices, const py::array& x_data,
         int64_t n_features, const py::array& y_indptr, const py::array& y_indices,
         const py::array& y_data, int64_t n_labels, const py::array& shortlist, double C,
         int max_iter, double tol, float prune, uint64_t seed, int n_threads) {
        const auto X = csr_from<float>(x_indptr, x_indices, x_data, n_features, "X");
        const auto Y = csr_from<float>(y_indptr, y_indices, y_data, n_labels, "Y");
        if (X.n_rows != Y.n_rows) throw py::value_error("X and Y have different numbers of rows");
        const int32_t* ids = label_grid(shortlist, X.n_rows, "shortlist");
        if (!(C > 0.0) || max_iter < 1 || !(tol > 0.0) || !(prune >= 0.0f))
          throw py::value_error("re-ranker options out of range (C > 0, max_iter >= 1, tol > 0, "
                                "prune >= 0)");
        check_n_threads(n_threads);
        slide::RerankerOptions options;
        options.C = C;
        options.max_iter = max_iter;
        options.tol = tol;
        options.prune = prune;
        options.seed = seed;
        slide::LinearWeights w;
        run_without_gil([&] {
          w = slide::train_linear_reranker(X, Y, ids, shortlist.shape(1), n_labels, options,
                                           n_threads, python_signal_pending);
        });
        py::dict out;
        out["indptr"] = to_numpy(std::move(w.indptr));
        out["indices"] = to_numpy(std::move(w.indices));
        out["values"] = to_numpy(std::move(w.values));
        out["bias"] = to_numpy(std::move(w.bias));
        return out;
      },
      py::arg("x_indptr"), py::arg("x_indices"), py::arg("x_data"), py::arg("n_features"),
      py::arg("y_indptr"), py::arg("y_indices"), py::arg("y_data"), py::arg("n_labels"),
      py::arg("shortlist"), py::arg("C"), py::arg("max_iter"), py::arg("tol"), py::arg("prune"),
      py::arg("seed"), py::arg("n_threads"));

  m.def(
      "linear_scores",
      [](const py::dict& weights, int64_t n_labels, const py::array& x_indptr,
         const py::array& x_indices, const py::array& x_data, int64_t n_features,
         const py::array& labels, int n_threads) {
        const slide::LinearWeightsView w = linear_weights_from(weights, n_labels, n_features);
        const auto X = csr_from<float>(x_indptr, x_indices, x_data, n_features, "X");
        const int32_t* ids = label_grid(labels, X.n_rows, "labels");
        check_n_threads(n_threads);
        const int64_t k = labels.shape(1);
        py::array_t<float> scores({X.n_rows, k});
        float* out = scores.mutable_data();
        run_without_gil(
            [&] { slide::linear_scores(w, X, ids, k, out, n_threads, python_signal_pending); });
        return scores;
      },
      py::arg("weights"), py::arg("n_labels"), py::arg("x_indptr"), py::arg("x_indices"),
      py::arg("x_data"), py::arg("n_features"), py::arg("labels"), py::arg("n_threads"));
}

}  // namespace

PYBIND11_MODULE(_slide_core, m) {
  m.doc() = "Compiled SLIDE engine of sklearn_slide (private: use sklearn_slide.SlideClassifier).";

  m.def("omp_max_threads", [] { return omp_get_max_threads(); },
        "OpenMP's thread count for a new parallel region (honours OMP_NUM_THREADS and "
        "threadpoolctl).");
  m.def("available_kernels", &slide::available_kernels);
  m.def("active_kernels", [] { return std::string(slide::kernels().name); });
  m.def("select_kernels", &slide::select_kernels, py::arg("name"));
  // Bounds and option names the estimator's parameter table is built from.
  py::dict bounds;
  bounds["n_threads"] = slide::kMaxThreads;
  bounds["hash_bits"] = slide::kMaxHashBits;
  bounds["n_tables"] = slide::kMaxTables;
  m.attr("BOUNDS") = bounds;
  m.attr("HASH_FAMILIES") = py::tuple(py::cast(slide::hash_kind_names()));

  m.def(
      "code_bits",
      [](const std::string& family, int dim, int codes_per_table) {
        check_hash_shape(dim, codes_per_table, 1);
        const auto f = slide::make_hash_family(slide::parse_hash_kind(family), dim,
                                               codes_per_table, 1, 0);
        return slide::bits_per_code(f->code_range());
      },
      py::arg("family"), py::arg("dim"), py::arg("codes_per_table"));

  m.def(
      "hash_codes",
      [](const std::string& family, const py::array& X, int codes_per_table, int n_tables,
         uint64_t seed) {
        const auto x = dense_matrix(X, "X");
        const int64_t n = x.shape(0), dim = x.shape(1);
        check_hash_shape(dim, codes_per_table, n_tables);
        const auto f = slide::make_hash_family(slide::parse_hash_kind(family),
                                               static_cast<int>(dim), codes_per_table, n_tables,
                                               seed);
        py::array_t<uint32_t> out({n, static_cast<int64_t>(f->n_codes())});
        const float* xp = x.data();
        uint32_t* op = out.mutable_data();
        {
          py::gil_scoped_release release;
          slide::BucketScratch scratch(*f);
          for (int64_t i = 0; i < n; ++i)
            f->codes(xp + i * dim, op + i * f->n_codes(), scratch.hash_scratch.data());
        }
        return out;
      },
      py::arg("family"), py::arg("X"), py::arg("codes_per_table"), py::arg("n_tables"),
      py::arg("seed"));

  m.def(
      "bucket_indices",
      [](const std::string& family, const py::array& X, int codes_per_table, int n_tables,
         uint64_t seed, int table_bits) {
        const auto x = dense_matrix(X, "X");
        if (table_bits < 1 || table_bits > 30) throw py::value_error("table_bits must be in [1, 30]");
        const int64_t n = x.shape(0), dim = x.shape(1);
        check_hash_shape(dim, codes_per_table, n_tables);
        const auto f = slide::make_hash_family(slide::parse_hash_kind(family),
                                               static_cast<int>(dim), codes_per_table, n_tables,
                                               seed);
        py::array_t<uint32_t> out({n, static_cast<int64_t>(n_tables)});
        const float* xp = x.data();
        uint32_t* op = out.mutable_data();
        {
          py::gil_scoped_release release;
          slide::BucketScratch scratch(*f);
          for (int64_t i = 0; i < n; ++i)
            slide::bucket_indices_of(*f, table_bits, xp + i * dim, scratch, op + i * n_tables);
        }
        return out;
      },
      py::arg("family"), py::arg("X"), py::arg("codes_per_table"), py::arg("n_tables"),
      py::arg("seed"), py::arg("table_bits"));

  py::class_<TrainingData>(m, "TrainingData",
                           "The CSR buffers of X and Y of one fit, checked once when made "
                           "(epochs reuse them); keeps the arrays alive.")
      .def(py::init(&training_data_from), py::arg("x_indptr"), py::arg("x_indices"),
           py::arg("x_data"), py::arg("n_features"), py::arg("y_indptr"), py::arg("y_indices"),
           py::arg("y_data"), py::arg("n_labels"))
      .def_property_readonly("n_rows", [](const TrainingData& d) { return d.X.n_rows; });

  bind_train_config(m);
  bind_linear_reranker(m);

  m.def(
      "train_epoch",
      [](py::dict params, py::object tables_obj, const TrainingData& data, const py::array& order,
         const slide::TrainConfig& config, py::dict schedule_dict, bool check_state,
         py::object clusters, int64_t n_probes) {
        slide::Network net = network_from(params, true);
        if (data.X.n_cols != net.n_features() || data.Y.n_cols != net.n_labels())
          throw py::value_error("training data: X or Y does not match the network's shape");
        const int64_t* rows = buffer<int64_t>(order, "order", false);
        for (int64_t i = 0; i < order.size(); ++i)
          if (rows[i] < 0 || rows[i] >= data.X.n_rows)
            throw py::value_error("order: row out of range");
        slide::check_train_config(config);  // std::invalid_argument -> ValueError
        const bool use_tables = !config.exact && !tables_obj.is_none();
        slide::HashTables tables;
        if (use_tables)
          tables = tables_from(tables_obj.cast<py::dict>(), net.n_labels(), true, check_state);
        slide::LabelClusters cluster_index{};
        slide::ClusterNegatives negatives;
        if (!clusters.is_none()) {
          if (n_probes < 1) throw py::value_error("n_probes must be >= 1 with label clusters");
          cluster_index = label_clusters_from(clusters.cast<py::dict>(), net);
          negatives = {&cluster_index, n_probes};
        }
        if (!config.exact && !use_tables && !negatives.clusters)
          throw py::value_error("sampled training needs hash tables or label clusters");
        slide::TrainSchedule schedule = schedule_from(schedule_dict);
        if (check_state) {
          check_row_steps(net.hidden[0], net.n_features(), schedule.step, "input_row_step");
          check_row_steps(net.output, net.n_labels(), schedule.step, "output_row_step");
        }
        slide::EpochStats stats;
        try {
          run_without_gil([&] {
            stats = slide::train_epoch(net, use_tables ? &tables : nullptr, data.X, data.Y,
                                       rows, order.size(), config, schedule,
                                       python_signal_pending, negatives);
          });
        } catch (...) {
          store_schedule(schedule, schedule_dict);  // steps completed before the error
          throw;
        }
        store_schedule(schedule, schedule_dict);
        py::dict out;
        out["loss_sum"] = stats.loss_sum;
        out["n_labelled"] = stats.n_labelled;
        out["n_samples"] = stats.n_samples;
        out["active_sum"] = stats.active_sum;
        out["n_rehashes"] = stats.n_rehashes;
        out["n_rebuilds"] = stats.n_rebuilds;
        return out;
      },
      py::arg("params"), py::arg("tables"), py::arg("data"), py::arg("order"), py::arg("config"),
      py::arg("schedule"), py::arg("check_state"), py::arg("clusters") = py::none(),
      py::arg("n_probes") = 0,
      "One epoch over the rows `order` of `data`. `check_state`: scan the hash tables and the "
      "row steps first (the first epoch of a call; later epochs read what the engine wrote). "
      "`clusters` (a label-cluster index) and `n_probes`: hard negatives from each sample's "
      "best clusters; `tables` may then be None.");

  m.def(
      "rebuild_tables",
      [](py::dict params, py::dict tables_dict, const slide::TrainConfig& config,
         py::dict schedule_dict) {
        const slide::Network net = network_from(params, false);
        slide::HashTables tables = tables_from(tables_dict, net.n_labels(), true, false);
        slide::check_train_config(config);  // std::invalid_argument -> ValueError
        const slide::TrainSchedule schedule = schedule_from(schedule_dict);
        run_without_gil([&] {
          slide::rebuild_output_tables(net, tables, config, schedule, python_signal_pending);
        });
      },
      py::arg("params"), py::arg("tables"), py::arg("config"), py::arg("schedule"));

  m.def(
      "predict_topk",
      [](py::dict params, const py::array& x_indptr, const py::array& x_indices,
         const py::array& x_data, int64_t k, int n_threads, py::object clusters,
         const std::string& precision, py::object packed_bf16) {
        const slide::Network net = network_from(params, false);
        const slide::OutputScoring scoring = output_scoring_from(precision, packed_bf16, net);
        const auto X = csr_from<float>(x_indptr, x_indices, x_data, net.n_features(), "X");
        if (k < 1) throw py::value_error("k must be >= 1");
        check_n_threads(n_threads);
        py::array_t<int32_t> labels({X.n_rows, k});
        py::array_t<float> scores({X.n_rows, k});
        slide::TopKOutput out{labels.mutable_data(), scores.mutable_data(), k};
        if (!clusters.is_none()) {
          const py::dict c = clusters.cast<py::dict>();
          const slide::LabelClusters index = label_clusters_from(c, net);
          const int64_t n_probes = c["n_probes"].cast<int64_t>();
          if (n_probes < 1) throw py::value_error("n_probes must be >= 1");
          run_without_gil([&] {
            slide::predict_topk_clustered(net, index, n_probes, X, out, scoring, n_threads,
                                          python_signal_pending);
          });
        } else {
          run_without_gil([&] {
            slide::predict_topk_exact(net, X, out, scoring, n_threads, python_signal_pending);
          });
        }
        return py::make_tuple(labels, scores);
      },
      py::arg("params"), py::arg("x_indptr"), py::arg("x_indices"), py::arg("x_data"),
      py::arg("k"), py::arg("n_threads"),
      py::arg("clusters") = py::none(), py::arg("precision") = "float32",
      py::arg("packed_bf16") = py::none());

  m.def(
      "predict_scores",
      [](py::dict params, const py::array& x_indptr, const py::array& x_indices,
         const py::array& x_data, bool softmax, int n_threads, const std::string& precision,
         py::object packed_bf16) {
        const slide::Network net = network_from(params, false);
        const slide::OutputScoring scoring = output_scoring_from(precision, packed_bf16, net);
        const auto X = csr_from<float>(x_indptr, x_indices, x_data, net.n_features(), "X");
        check_n_threads(n_threads);
        py::array_t<float> out({X.n_rows, net.n_labels()});
        float* op = out.mutable_data();
        run_without_gil(
            [&] {
              slide::predict_scores(net, X, op, softmax, scoring, n_threads, python_signal_pending);
            });
        return out;
      },
      py::arg("params"), py::arg("x_indptr"), py::arg("x_indices"), py::arg("x_data"),
      py::arg("softmax"), py::arg("n_threads"), py::arg("precision") = "float32",
      py::arg("packed_bf16") = py::none());

  m.def(
      "pack_output_bf16",
      [](py::dict params, int n_threads) -> py::object {
        const slide::Network net = network_from(params, false);
        check_n_threads(n_threads);
        const int64_t words = slide::packed_output_bf16_words(net);
        if (words == 0) return py::none();
        py::array_t<uint32_t> packed(words);
        uint32_t* p = packed.mutable_data();
        bool packed_ok = false;
        run_without_gil([&] { packed_ok = slide::pack_output_bf16(net, p, n_threads); });
        if (!packed_ok) return py::none();  // the kernels were switched meanwhile
        return std::move(packed);
      },
      py::arg("params"), py::arg("n_threads"));
}
