// bfloat16 rounding: the top 16 bits of a float32 (8 exponent bits, 7 mantissa
// bits), rounded to nearest even as the CPU's conversion instructions do. A
// product of two bfloat16 values is exact in float32, which is why scoring in
// bfloat16 keeps float32 sums (see Kernels::score_block_bf16).
#pragma once

#include <cstdint>
#include <cstring>

namespace slide {

inline uint16_t float_to_bf16_bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)  // NaN: stays a (quiet) NaN, never rounds to inf
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float bf16_bits_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// x rounded to the nearest bfloat16, as a float32.
inline float round_to_bf16(float x) { return bf16_bits_to_float(float_to_bf16_bits(x)); }

}  // namespace slide
