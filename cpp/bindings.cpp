// The one file that knows pybind11: converts and checks buffers, releases the
// GIL around the engine and turns engine errors into Python exceptions. No
// algorithm lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include "slide/csr_view.h"
#include "slide/hash_family.h"
#include "slide/hash_tables.h"
#include "slide/kernels.h"
#include "slide/network.h"
#include "slide/predictor.h"
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

// Threads one native call may start: libgomp exits the process when it cannot
// create a thread, so absurd counts are refused (the estimator allows 1024).
constexpr int kMaxThreads = 1024;

void check_n_threads(int n_threads) {
  if (n_threads < 1 || n_threads > kMaxThreads)
    throw py::value_error("n_threads must be in [1, " + std::to_string(kMaxThreads) + "], got " +
                          std::to_string(n_threads));
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

// Hash family arguments: the engine stores dim, K and L as int and K * L codes per vector.
void check_hash_shape(int64_t dim, int64_t codes_per_table, int64_t n_tables) {
  if (dim < 1 || dim > INT_MAX) throw py::value_error("hash input dimension out of range");
  if (codes_per_table < 1 || codes_per_table > 1024)
    throw py::value_error("codes_per_table must be in [1, 1024], got " +
                          std::to_string(codes_per_table));
  if (n_tables < 1 || n_tables > 65535)
    throw py::value_error("n_tables must be in [1, 65535], got " + std::to_string(n_tables));
  if (codes_per_table * n_tables > (int64_t{1} << 24))
    throw py::value_error("codes_per_table * n_tables must be at most 2**24");
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
  if (tables.n_tables < 1 || tables.n_tables > 65535 || tables.table_bits < 1 ||
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

slide::TrainConfig train_config_from(const py::dict& c) {
  slide::TrainConfig config;
  config.exact = c["exact"].cast<bool>();
  config.hash_kind = slide::parse_hash_kind(c["hash_family"].cast<std::string>());
  config.codes_per_table = c["hash_bits"].cast<int>();
  config.bucket_size = c["bucket_size"].cast<int>();
  const auto policy = c["bucket_policy"].cast<std::string>();
  if (policy != "fifo" && policy != "reservoir")
    throw py::value_error("bucket_policy must be 'fifo' or 'reservoir'");
  config.bucket_policy = policy == "fifo" ? slide::BucketPolicy::Fifo
                                          : slide::BucketPolicy::Reservoir;
  config.limits.min_active = c["min_active"].cast<int64_t>();
  config.limits.max_active = c["max_active"].cast<int64_t>();
  config.adam.learning_rate = c["learning_rate"].cast<float>();
  config.adam.beta1 = c["beta_1"].cast<float>();
  config.adam.beta2 = c["beta_2"].cast<float>();
  config.adam.epsilon = c["epsilon"].cast<float>();
  config.batch_size = c["batch_size"].cast<int64_t>();
  config.n_threads = c["n_threads"].cast<int>();
  config.seed = c["seed"].cast<uint64_t>();
  config.rehash_growth = c["rehash_growth"].cast<double>();
  config.rebuild_every = c["rebuild_every"].cast<int64_t>();
  config.dense_adam = c["dense_adam"].cast<bool>();
  config.logq_correction = c["logq_correction"].cast<bool>();
  if (config.batch_size < 1 || config.bucket_size < 1)
    throw py::value_error("batch_size and bucket_size must be >= 1");
  check_n_threads(config.n_threads);
  if (config.codes_per_table < 1 || config.codes_per_table > 1024)
    throw py::value_error("hash_bits must be in [1, 1024]");
  if (config.limits.min_active < 0 || config.limits.max_active < 1)
    throw py::value_error("min_active must be >= 0 and max_active >= 1");
  if (!(config.adam.learning_rate > 0.f) || !std::isfinite(config.adam.learning_rate) ||
      !(config.adam.beta1 >= 0.f && config.adam.beta1 < 1.f) ||
      !(config.adam.beta2 >= 0.f && config.adam.beta2 < 1.f) || !(config.adam.epsilon > 0.f))
    throw py::value_error("learning_rate must be finite and > 0, betas in [0, 1), epsilon > 0");
  if (!(config.rehash_growth >= 1.0) || !std::isfinite(config.rehash_growth) ||
      config.rebuild_every < 0)
    throw py::value_error("rehash_growth must be finite and >= 1, rebuild_every >= 0");
  return config;
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

}  // namespace

PYBIND11_MODULE(_slide_core, m) {
  m.doc() = "Compiled SLIDE engine of sklearn_slide (private: use sklearn_slide.SlideClassifier).";

  m.def("omp_max_threads", [] { return omp_get_max_threads(); },
        "OpenMP's thread count for a new parallel region (honours OMP_NUM_THREADS and "
        "threadpoolctl).");
  m.def("available_kernels", &slide::available_kernels);
  m.def("active_kernels", [] { return std::string(slide::kernels().name); });
  m.def("select_kernels", &slide::select_kernels, py::arg("name"));

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

  m.def(
      "train_epoch",
      [](py::dict params, py::object tables_obj, const py::array& x_indptr,
         const py::array& x_indices, const py::array& x_data, const py::array& y_indptr,
         const py::array& y_indices, const py::array& y_data, const py::array& order,
         py::dict config_dict, py::dict schedule_dict) {
        slide::Network net = network_from(params, true);
        const auto X = csr_from<float>(x_indptr, x_indices, x_data, net.n_features(), "X");
        const auto Y = csr_from<float>(y_indptr, y_indices, y_data, net.n_labels(), "Y");
        if (X.n_rows != Y.n_rows) throw py::value_error("X and Y have different numbers of rows");
        const int64_t* rows = buffer<int64_t>(order, "order", false);
        for (int64_t i = 0; i < order.size(); ++i)
          if (rows[i] < 0 || rows[i] >= X.n_rows) throw py::value_error("order: row out of range");
        const slide::TrainConfig config = train_config_from(config_dict);
        slide::HashTables tables;
        if (!config.exact)
          tables = tables_from(tables_obj.cast<py::dict>(), net.n_labels(), true, true);
        slide::TrainSchedule schedule = schedule_from(schedule_dict);
        check_row_steps(net.hidden[0], net.n_features(), schedule.step, "input_row_step");
        check_row_steps(net.output, net.n_labels(), schedule.step, "output_row_step");
        slide::EpochStats stats;
        try {
          run_without_gil([&] {
            stats = slide::train_epoch(net, config.exact ? nullptr : &tables, X, Y, rows,
                                       order.size(), config, schedule, python_signal_pending);
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
      py::arg("params"), py::arg("tables"), py::arg("x_indptr"), py::arg("x_indices"),
      py::arg("x_data"), py::arg("y_indptr"), py::arg("y_indices"), py::arg("y_data"),
      py::arg("order"), py::arg("config"), py::arg("schedule"));

  m.def(
      "rebuild_tables",
      [](py::dict params, py::dict tables_dict, py::dict config_dict, py::dict schedule_dict) {
        const slide::Network net = network_from(params, false);
        slide::HashTables tables = tables_from(tables_dict, net.n_labels(), true, false);
        const slide::TrainConfig config = train_config_from(config_dict);
        const slide::TrainSchedule schedule = schedule_from(schedule_dict);
        py::gil_scoped_release release;
        slide::rebuild_output_tables(net, tables, config, schedule);
      },
      py::arg("params"), py::arg("tables"), py::arg("config"), py::arg("schedule"));

  m.def(
      "predict_topk",
      [](py::dict params, const py::array& x_indptr, const py::array& x_indices,
         const py::array& x_data, int64_t k, int n_threads, py::object lsh, py::object clusters,
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
        } else if (lsh.is_none()) {
          run_without_gil([&] {
            slide::predict_topk_exact(net, X, out, scoring, n_threads, python_signal_pending);
          });
        } else {
          const py::dict q = lsh.cast<py::dict>();
          const slide::HashTables tables = tables_from(q["tables"], net.n_labels(), false, true);
          const py::array fallback = q["fallback"];
          slide::LshQuery query;
          query.hash_kind = slide::parse_hash_kind(q["hash_family"].cast<std::string>());
          query.codes_per_table = q["hash_bits"].cast<int>();
          check_hash_shape(net.last_hidden_size(), query.codes_per_table, tables.n_tables);
          query.hash_seed = q["hash_seed"].cast<uint64_t>();
          query.max_candidates = std::max<int64_t>(q["max_candidates"].cast<int64_t>(), k);
          query.fallback = buffer<int32_t>(fallback, "fallback", false);
          query.n_fallback = fallback.size();
          for (int64_t i = 0; i < query.n_fallback; ++i)
            if (query.fallback[i] < 0 || query.fallback[i] >= net.n_labels())
              throw py::value_error("fallback: label out of range");
          run_without_gil([&] {
            slide::predict_topk_lsh(net, tables, query, X, out, scoring, n_threads,
                                    python_signal_pending);
          });
        }
        return py::make_tuple(labels, scores);
      },
      py::arg("params"), py::arg("x_indptr"), py::arg("x_indices"), py::arg("x_data"),
      py::arg("k"), py::arg("n_threads"), py::arg("lsh") = py::none(),
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
