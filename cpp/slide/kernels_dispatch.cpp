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

bool cpu_has_avx512_bf16() {
#if defined(SLIDE_HAVE_AVX512BF16_KERNELS) && (defined(__x86_64__) || defined(__i386__))
  return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
#else
  return false;  // not on this CPU, or the compiler could not build the kernel
#endif
}

bool cpu_has_amx_bf16() {
#if defined(SLIDE_HAVE_AMX_KERNELS)
  return cpu_has_avx512_bf16() && amx_available();
#else
  return false;
#endif
}

// The avx512 set with native bfloat16 scoring.
const Kernels* avx512_bf16_kernels() {
#if defined(SLIDE_HAVE_AVX512BF16_KERNELS)
  static const Kernels set = [] {
    Kernels k = kAvx512Kernels;
    k.name = "avx512_bf16";
    k.score_block_bf16 = score_block_bf16_avx512bf16;
    k.pack_bf16_panels = pack_bf16_panels_avx512bf16;
    k.score_packed_bf16 = score_packed_bf16_avx512bf16;
    return k;
  }();
  return &set;
#else
  return nullptr;
#endif
}

// The avx512_bf16 set with bfloat16 scoring on AMX tiles.
const Kernels* amx_bf16_kernels() {
#if defined(SLIDE_HAVE_AMX_KERNELS)
  static const Kernels set = [] {
    Kernels k = *avx512_bf16_kernels();
    k.name = "amx_bf16";
    k.score_block_bf16 = score_block_bf16_amx;
    k.score_packed_bf16 = score_packed_bf16_amx;
    return k;
  }();
  return &set;
#else
  return nullptr;
#endif
}

const Kernels* resolve(const std::string& name) {
  if (name == "auto") {
    if (cpu_has_amx_bf16()) return amx_bf16_kernels();
    if (cpu_has_avx512_bf16()) return avx512_bf16_kernels();
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
  if (name == "avx512_bf16") {
    if (!cpu_has_avx512_bf16())
      throw std::invalid_argument("this CPU (or this build) cannot run the 'avx512_bf16' kernels");
    return avx512_bf16_kernels();
  }
  if (name == "amx_bf16") {
    if (!cpu_has_amx_bf16())
      throw std::invalid_argument(
          "this CPU, operating system or build cannot run the 'amx_bf16' kernels");
    return amx_bf16_kernels();
  }
  throw std::invalid_argument("unknown kernel set '" + name +
                              "'; expected auto, generic, avx2, avx512, avx512_bf16 or amx_bf16");
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
  if (cpu_has_avx512_bf16()) names.push_back("avx512_bf16");
  if (cpu_has_amx_bf16()) names.push_back("amx_bf16");
  return names;
}

}  // namespace slide
