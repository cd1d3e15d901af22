// Bounds assertions for hot paths, compiled in only with -DSLIDE_DEBUG_CHECKS=1
// (CMake option SLIDE_DEBUG_CHECKS). They abort loudly: they catch engine bugs,
// not user errors, which the binding rejects before any work starts.
#pragma once

#if defined(SLIDE_DEBUG_CHECKS) && SLIDE_DEBUG_CHECKS
#include <cstdio>
#include <cstdlib>
#define SLIDE_ASSERT_INDEX(i, n)                                                        \
  do {                                                                                  \
    if (!(static_cast<long long>(i) >= 0 && static_cast<long long>(i) < (long long)(n))) { \
      std::fprintf(stderr, "sklearn_slide: index %lld out of range [0, %lld) at %s:%d\n", \
                   static_cast<long long>(i), static_cast<long long>(n), __FILE__, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
#else
#define SLIDE_ASSERT_INDEX(i, n) ((void)0)
#endif
