#include "bitmask.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace fcg {

namespace {

// One full word of 32 logits. Constrained masks are mostly all-zero words (a run of -inf stores) or
// all-one words (untouched); a mixed word takes a branch-free select on the bit patterns.
inline void apply_word(float* l, uint32_t bits, float ninf) {
  if (bits == 0xFFFFFFFFu) return;
  if (bits == 0) {
    for (int j = 0; j < 32; ++j) l[j] = ninf;
    return;
  }
  uint32_t v[32], inf_bits;
  std::memcpy(&inf_bits, &ninf, 4);
  std::memcpy(v, l, sizeof(v));
  for (int j = 0; j < 32; ++j) {
    uint32_t keep = 0u - ((bits >> j) & 1u);
    v[j] = (v[j] & keep) | (inf_bits & ~keep);
  }
  std::memcpy(l, v, sizeof(v));
}

}  // namespace

void apply_bitmask_f32(float* logits, int64_t logit_stride, const uint32_t* bitmask, int64_t words,
                       const int32_t* rows, int64_t nrows, int64_t vocab) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t full = std::min<int64_t>(words, vocab / 32);  // words covering 32 logits each
  for (int64_t r = 0; r < nrows; ++r) {
    int64_t row = rows ? rows[r] : r;
    float* l = logits + row * logit_stride;
    const uint32_t* m = bitmask + row * words;
    for (int64_t w = 0; w < full; ++w) apply_word(l + w * 32, m[w], ninf);
    int64_t j = full * 32;
    if (full < words)  // a last, partial word
      for (; j < vocab && j < (full + 1) * 32; ++j)
        if (!((m[full] >> (j - full * 32)) & 1u)) l[j] = ninf;
    for (; j < vocab; ++j) l[j] = ninf;  // ids the bitmask does not cover
  }
}

}  // namespace fcg
