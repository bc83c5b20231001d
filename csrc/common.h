// Shared types and errors of the fcgrammar engine.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fcg {

// Symbols the automaton reads: 0..255 are bytes, 256+k is the k-th special token named by the grammar.
using Symbol = int32_t;
constexpr Symbol kNumBytes = 256;

// Typed errors, mapped to fcgrammar.errors.* by the bindings.
struct GrammarError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct LimitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct TokenizerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct MatcherError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Limits {
  int64_t max_nfa_states = 4'000'000;  // automaton size before LimitError
  int64_t max_dfa_states = 2'000'000;  // lazily built deterministic states
  int64_t max_stack_depth = 4096;      // nesting of recursive rules at run time
};

}  // namespace fcg
