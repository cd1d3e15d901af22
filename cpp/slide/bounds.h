// Upper bounds of the estimator's integer parameters that the engine relies on.
// Exported to Python as _slide_core.BOUNDS; sklearn_slide/_config.py builds the
// estimator's parameter constraints from them, so each is written only here.
#pragma once

namespace slide {

// Threads one native call may start: libgomp exits the process when it cannot
// create a thread, so absurd counts are refused.
constexpr int kMaxThreads = 1024;
// Codes per hash table (K): the bucket index concatenates (or hashes) them.
constexpr int kMaxHashBits = 32;
// Hash tables (L) of the output layer.
constexpr int kMaxTables = 4096;

}  // namespace slide
