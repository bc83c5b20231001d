// Applying a token bitmask to logits on the CPU.
#pragma once
#include <cstdint>

namespace fcg {

// logits: [rows, vocab] row-major with row stride `logit_stride`; bitmask rows of `words` uint32.
// Sets logits of disallowed tokens (bit clear) to -inf, for ids < vocab.
void apply_bitmask_f32(float* logits, int64_t logit_stride, const uint32_t* bitmask, int64_t words,
                       const int32_t* rows, int64_t nrows, int64_t vocab);

}  // namespace fcg
