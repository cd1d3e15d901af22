// score_block_bf16 on AMX tiles (TDPBF16PS: a 16 x 16 float32 tile += a 16 x 32
// bfloat16 tile times a 32 x 16 one, 8,192 multiply-adds per instruction).
// Compiled with -mamx-tile -mamx-bf16 -mavx512bf16; only called when the CPU
// has AMX and the kernel granted this process the tile state (amx_available()).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "slide/kernels.h"
#include "slide/kernels_bf16_pack.h"

namespace slide {
namespace {

constexpr int64_t kTileRows = 16;      // rows of every tile used here
constexpr int64_t kPairsPerTile = 16;  // 64-byte tile rows: 16 bfloat16 pairs
constexpr int64_t kPanel = kBf16PanelWidth;
static_assert(kPanel == 64, "a panel is four 16-neuron score tiles");

// Tiles 0-3: scores of 16 rows x 16 neurons each; 4: 16 rows x 16 pairs of
// inputs; 5: 16 pairs x 16 neurons of weights (pair-interleaved, as TDPBF16PS
// reads its second operand, and as the panels are packed).
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 6; ++t) {
    config.rows[t] = kTileRows;
    config.colsb[t] = 64;
  }
  _tile_loadconfig(&config);
}

}  // namespace

bool amx_available() {
#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
  static const bool granted = [] {
    unsigned eax, ebx, ecx, edx;
    if (!__builtin_cpu_supports("avx512f")) return false;
    __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
    const bool amx_bf16 = (edx >> 22) & 1u, amx_tile = (edx >> 24) & 1u;
    if (!amx_bf16 || !amx_tile) return false;
    // Linux hands out the 8 KiB tile state only on request (ARCH_REQ_XCOMP_PERM
    // for XFEATURE_XTILEDATA); kernels before 5.16 refuse, and so do we then.
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return granted;
#else
  return false;
#endif
}

// Rows are the first operand (16 rows x 16 pairs per tile), the packed panels
// the second (16 pairs x 16 neurons per tile, which is the panel layout read with
// a stride of one panel row); four score tiles cover a 64-neuron panel.
void score_packed_bf16_amx(const float* rows, int64_t n_rows, const uint32_t* panels,
                           const float* bias, int64_t n_cols, int64_t dim, float* out,
                           int64_t out_stride) {
  const int64_t pairs = bf16_panel_pairs(dim);  // whole tiles of pairs
  const int64_t padded_rows = (n_rows + kTileRows - 1) / kTileRows * kTileRows;
  const uint32_t* packed_rows = pack_rows(rows, n_rows, padded_rows, dim);
  const int64_t words = bf16_panel_words(dim);
  alignas(64) float scores[kTileRows * kPanel];  // row i, neuron j at i * kPanel + j
  configure_tiles();
  for (int64_t c = 0; c < n_cols; c += kPanel) {
    const int64_t width = std::min(kPanel, n_cols - c);
    const uint32_t* panel = panels + (c / kPanel) * words;
    for (int64_t r0 = 0; r0 < n_rows; r0 += kTileRows) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t p0 = 0; p0 < pairs; p0 += kPairsPerTile) {
        _tile_loadd(4, packed_rows + r0 * pairs + p0, pairs * 4);
        const uint32_t* w = panel + p0 * kPanel;
        _tile_loadd(5, w, kPanel * 4);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(5, w + 16, kPanel * 4);
        _tile_dpbf16ps(1, 4, 5);
        _tile_loadd(5, w + 32, kPanel * 4);
        _tile_dpbf16ps(2, 4, 5);
        _tile_loadd(5, w + 48, kPanel * 4);
        _tile_dpbf16ps(3, 4, 5);
      }
      _tile_stored(0, scores, kPanel * 4);
      _tile_stored(1, scores + 16, kPanel * 4);
      _tile_stored(2, scores + 32, kPanel * 4);
      _tile_stored(3, scores + 48, kPanel * 4);
      const int64_t n = std::min(kTileRows, n_rows - r0);
      for (int64_t i = 0; i < n; ++i) {
        float* dst = out + (r0 + i) * out_stride + c;
        const float* src = scores + i * kPanel;
        if (bias)
          for (int64_t j = 0; j < width; ++j) dst[j] = src[j] + bias[c + j];
        else
          std::copy(src, src + width, dst);
      }
    }
  }
  _tile_release();
}

void score_block_bf16_amx(const float* rows, int64_t n_rows, const float* weights,
                          const float* bias, int64_t n_cols, int64_t dim, float* out,
                          int64_t out_stride) {
  pack_and_score<score_packed_bf16_amx>(rows, n_rows, weights, bias, n_cols, dim, out,
                                        out_stride);
}

}  // namespace slide
