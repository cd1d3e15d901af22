// Locality-sensitive hash families: a vector in, K codes per table for L tables out.
//
// Every family hashes a dense float vector of a fixed length `dim` (the input of
// the layer whose neurons are hashed: a hidden activation at query time, a weight
// row at insertion time). Zeros mean "absent" for the families built for sparse
// data (DWTA, MinHash). Codes are always in [0, code_range()), whatever the input
// (empty, one-hot, dense, negative): callers index arrays with them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slide {

enum class HashKind { SimHash, WTA, DWTA, MinHash };

// Names "simhash", "wta", "dwta", "minhash" (the estimator's hash_family values).
std::string hash_kind_name(HashKind kind);
std::vector<std::string> hash_kind_names();
// The kind of a name; std::invalid_argument naming the choices otherwise.
HashKind parse_hash_kind(const std::string& name);

class HashFamily {
 public:
  HashFamily(int dim, int codes_per_table, int n_tables)
      : dim_(dim), codes_per_table_(codes_per_table), n_tables_(n_tables) {}
  virtual ~HashFamily() = default;

  int dim() const { return dim_; }
  int codes_per_table() const { return codes_per_table_; }  // K
  int n_tables() const { return n_tables_; }                // L
  int n_codes() const { return codes_per_table_ * n_tables_; }

  // Codes take values in [0, code_range()).
  virtual uint32_t code_range() const = 0;
  // Floats of caller-provided scratch that codes() needs (0 if none).
  virtual size_t scratch_floats() const { return 0; }

  // Writes n_codes() codes, table-major: codes[t * K + k]. Thread-safe (const) and
  // allocation-free; `scratch` holds scratch_floats() floats owned by the caller.
  virtual void codes(const float* x, uint32_t* codes, float* scratch) const = 0;

  // Bucket in each table of n_rows rows (row r at rows + r * row_stride), as
  // bucket_index() of their codes(): buckets[t * bucket_stride + r], table-major
  // like a table build stores them. The default hashes row by row; a family may
  // hash a block of rows at once (the same buckets). `scratch` holds
  // rows_scratch_floats() floats.
  virtual void buckets_of_rows(const float* rows, int64_t n_rows, int64_t row_stride,
                               int table_bits, int32_t* buckets, int64_t bucket_stride,
                               float* scratch) const;
  virtual size_t rows_scratch_floats() const;

 private:
  int dim_;
  int codes_per_table_;
  int n_tables_;
};

// Draws the family's random functions (permutations, projections) from `seed`:
// the same arguments always give the same family.
std::unique_ptr<HashFamily> make_hash_family(HashKind kind, int dim, int codes_per_table,
                                             int n_tables, uint64_t seed);

// Bits needed to store one code of a family with this code range.
int bits_per_code(uint32_t code_range);

// Bucket index in [0, 2^table_bits) of one table from its K codes: the codes are
// concatenated when they fit in table_bits, otherwise mixed by a 64-bit hash and folded.
uint32_t bucket_index(const uint32_t* table_codes, int codes_per_table, int code_bits,
                      int table_bits);
// bucket_index of n items at once, code k of item i at codes[k * code_stride + i].
void bucket_indices_strided(const uint32_t* codes, int64_t code_stride, int64_t n,
                            int codes_per_table, int code_bits, int table_bits, uint32_t* out);

}  // namespace slide
