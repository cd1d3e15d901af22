// Software prefetch of the scattered rows the hot loops visit. The rows of an
// active set, of a batch's features and of Adam's updates are random in memory
// (at 10^6 labels nothing is cached): asking for a row a few iterations before
// it is used overlaps those misses instead of paying them one after the other.
#pragma once

#include <cstdint>

namespace slide {

// Rows are fetched this many iterations ahead of their use.
constexpr int64_t kPrefetchRowsAhead = 4;

// Every cache line of n floats at p, for reading (write = false) or writing.
template <bool write = false>
inline void prefetch_floats(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, write ? 1 : 0);
}

}  // namespace slide
