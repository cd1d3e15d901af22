#include "slide/hash_family.h"

#include <stdexcept>
#include <vector>

#include "slide/hash_dwta.h"
#include "slide/hash_minhash.h"
#include "slide/hash_simhash.h"
#include "slide/hash_wta.h"
#include "slide/rng.h"

namespace slide {

namespace {
constexpr HashKind kHashKinds[] = {HashKind::SimHash, HashKind::WTA, HashKind::DWTA,
                                   HashKind::MinHash};
}  // namespace

std::string hash_kind_name(HashKind kind) {
  switch (kind) {
    case HashKind::SimHash: return "simhash";
    case HashKind::WTA: return "wta";
    case HashKind::DWTA: return "dwta";
    case HashKind::MinHash: return "minhash";
  }
  throw std::invalid_argument("unknown hash family");
}

std::vector<std::string> hash_kind_names() {
  std::vector<std::string> names;
  for (HashKind kind : kHashKinds) names.push_back(hash_kind_name(kind));
  return names;
}

HashKind parse_hash_kind(const std::string& name) {
  std::string expected;
  for (HashKind kind : kHashKinds) {
    if (name == hash_kind_name(kind)) return kind;
    expected += (expected.empty() ? "'" : ", '") + hash_kind_name(kind) + "'";
  }
  throw std::invalid_argument("unknown hash family '" + name + "'; expected one of " + expected);
}

std::unique_ptr<HashFamily> make_hash_family(HashKind kind, int dim, int codes_per_table,
                                             int n_tables, uint64_t seed) {
  switch (kind) {
    case HashKind::SimHash:
      return std::make_unique<SimHash>(dim, codes_per_table, n_tables, seed);
    case HashKind::WTA:
      return std::make_unique<WTAHash>(dim, codes_per_table, n_tables, seed);
    case HashKind::DWTA:
      return std::make_unique<DWTAHash>(dim, codes_per_table, n_tables, seed);
    case HashKind::MinHash:
      return std::make_unique<MinHash>(dim, codes_per_table, n_tables, seed);
  }
  throw std::invalid_argument("unknown HashKind value");
}

int bits_per_code(uint32_t code_range) {
  // A constant code (range 1) still gets one bit: callers size tables from
  // K * bits, and a zero-width code would make that product meaningless.
  int bits = 1;
  while (bits < 32 && (uint64_t{1} << bits) < code_range) ++bits;
  return bits;
}

uint32_t bucket_index(const uint32_t* table_codes, int codes_per_table, int code_bits,
                      int table_bits) {
  uint32_t index;
  bucket_indices_strided(table_codes, 1, 1, codes_per_table, code_bits, table_bits, &index);
  return index;
}

void bucket_indices_strided(const uint32_t* codes, int64_t code_stride, int64_t n,
                            int codes_per_table, int code_bits, int table_bits, uint32_t* out) {
  if (table_bits < 1 || table_bits > 31 || code_bits < 0 || code_bits > 32) {
    throw std::invalid_argument("bucket_index: table_bits must be in [1, 31], code_bits in [0, 32]");
  }
  const int64_t total_bits = static_cast<int64_t>(codes_per_table) * code_bits;
  if (total_bits <= table_bits) {
    // Concatenation keeps every code combination in its own bucket. The mask
    // only matters for out-of-range codes, which must still land in range.
    const uint32_t mask = static_cast<uint32_t>((uint64_t{1} << code_bits) - 1);
    for (int64_t i = 0; i < n; ++i) out[i] = 0;
    for (int k = 0; k < codes_per_table; ++k)  // items innermost: vectorises
      for (int64_t i = 0; i < n; ++i)
        out[i] = (out[i] << code_bits) | (codes[k * code_stride + i] & mask);
    return;
  }
  // Too many bits to concatenate: chain a strong mix so that the order of the
  // codes matters, and keep the top bits, which are the best mixed.
  for (int64_t i = 0; i < n; ++i) {
    uint64_t h = 0x243F6A8885A308D3ULL;
    for (int k = 0; k < codes_per_table; ++k) h = mix64(h ^ codes[k * code_stride + i]);
    out[i] = static_cast<uint32_t>(h >> (64 - table_bits));
  }
}

void HashFamily::buckets_of_rows(const float* rows, int64_t n_rows, int64_t row_stride,
                                 int table_bits, int32_t* buckets, int64_t bucket_stride,
                                 float* scratch) const {
  std::vector<uint32_t> row_codes(n_codes());
  const int k = codes_per_table(), code_bits = bits_per_code(code_range());
  for (int64_t r = 0; r < n_rows; ++r) {
    codes(rows + r * row_stride, row_codes.data(), scratch);
    for (int t = 0; t < n_tables(); ++t)
      buckets[t * bucket_stride + r] =
          static_cast<int32_t>(bucket_index(row_codes.data() + t * k, k, code_bits, table_bits));
  }
}

size_t HashFamily::rows_scratch_floats() const { return scratch_floats(); }

}  // namespace slide
