// Run-time choice of the kernel set (see kernels.h).
#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "slide/kernels.h"

namespace slide {
namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

const Kernels* resolve(const std::string& name) {
  if (name == "auto") {
    if (cpu_has_avx512()) return &kAvx512Kernels;
    if (cpu_has_avx2()) return &kAvx2Kernels;
    return &kGenericKernels;
  }
  if (name == "generic") return &kGenericKernels;
  if (name == "avx2") {
    if (!cpu_has_avx2()) throw std::invalid_argument("this CPU cannot run the 'avx2' kernels");
    return &kAvx2Kernels;
  }
  if (name == "avx512") {
    if (!cpu_has_avx512()) throw std::invalid_argument("this CPU cannot run the 'avx512' kernels");
    return &kAvx512Kernels;
  }
  throw std::invalid_argument("unknown kernel set '" + name +
                              "'; expected auto, generic, avx2 or avx512");
}

const Kernels* initial_kernels() {
  const char* env = std::getenv("SKLEARN_SLIDE_KERNELS");
  return resolve(env && *env ? std::string(env) : std::string("auto"));
}

std::atomic<const Kernels*>& current() {
  static std::atomic<const Kernels*> active{initial_kernels()};
  return active;
}

}  // namespace

const Kernels& kernels() { return *current().load(std::memory_order_relaxed); }

void select_kernels(const std::string& name) { current().store(resolve(name)); }

std::vector<std::string> available_kernels() {
  std::vector<std::string> names{"generic"};
  if (cpu_has_avx2()) names.push_back("avx2");
  if (cpu_has_avx512()) names.push_back("avx512");
  return names;
}

}  // namespace slide
