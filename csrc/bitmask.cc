#include "bitmask.h"

#include <algorithm>
#include <limits>

namespace fcg {

void apply_bitmask_f32(float* logits, int64_t logit_stride, const uint32_t* bitmask, int64_t words,
                       const int32_t* rows, int64_t nrows, int64_t vocab) {
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < nrows; ++r) {
    int64_t row = rows ? rows[r] : r;
    float* l = logits + row * logit_stride;
    const uint32_t* m = bitmask + row * words;
    int64_t nw = std::min<int64_t>(words, (vocab + 31) / 32);
    for (int64_t w = 0; w < nw; ++w) {
      uint32_t bits = m[w];
      if (bits == 0xFFFFFFFFu) continue;
      int64_t base = w * 32, top = std::min<int64_t>(32, vocab - base);
      for (int64_t j = 0; j < top; ++j)
        if (!((bits >> j) & 1u)) l[base + j] = ninf;
    }
    for (int64_t j = nw * 32; j < vocab; ++j) l[j] = ninf;  // ids the bitmask does not cover
  }
}

}  // namespace fcg
