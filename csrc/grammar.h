// Grammar IR (twin of src/fcgrammar/grammar.py) and its lowering to a byte-level NFA.
//
// Rules that are not recursive are inlined at every use; rules in a recursive cycle become "calls":
// an NFA edge that pushes a return state and jumps to the rule's own start.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace fcg {

enum class Op : uint8_t { Lit = 0, Cp = 1, Byte = 2, Seq = 3, Alt = 4, Rep = 5, Ref = 6, Tok = 7, Excl = 8 };

struct Expr {
  Op op = Op::Seq;
  bool json = false;                               // Cp: JSON-string encoding
  int32_t lo = 0, hi = 0;                          // Rep bounds (hi = -1: unbounded)
  int32_t ref = -1;                                // Ref: rule index; Tok: token id
  std::string bytes;                               // Lit
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // Cp / Byte
  std::vector<int32_t> kids;                       // Seq / Alt children, Rep child (kids[0])
  // Excl with `json`: the body of a JSON string (no quotes) over the code points `ranges`, JSON-encoded,
  // whose decoded value is none of `words` (each a list of code points); `ranges` holds every surrogate or
  // none. Without `json`: an ASCII identifier [A-Za-z_][A-Za-z0-9_]* that is none of `words`.
  std::vector<std::vector<uint32_t>> words;
};

struct GrammarIR {
  std::vector<Expr> nodes;
  std::vector<int32_t> rules;  // rule index -> root node
  std::vector<std::string> names;
  std::vector<int32_t> calls;  // rules to build once and call even though they are not recursive
  // Open strings: rules whose language is a JSON string ("..." with its quotes) in which every valid
  // body prefix can still be completed to a member (e.g. "any key except these names"). The front end
  // vouches for that property; the engine checks everything else (see Nfa::open_strings).
  std::vector<int32_t> open_strings;
};

struct NfaEdge {
  Symbol lo, hi;  // inclusive symbol range
  int32_t to;
};

struct NfaCall {
  int32_t rule;  // callee (index into Nfa::call_rules)
  int32_t ret;   // state to continue at after the callee returns
};

template <class T>
struct Span {
  const T* b;
  const T* e;
  const T* begin() const { return b; }
  const T* end() const { return e; }
  size_t size() const { return size_t(e - b); }
  bool empty() const { return b == e; }
  const T& operator[](size_t i) const { return b[i]; }
};

// The NFA, with its adjacency in CSR form: the edges of state s are edges[edge_off[s] .. edge_off[s + 1]),
// likewise for epsilon moves and calls (three flat arrays instead of three vectors per state; call_off
// is empty when no state calls).
struct Nfa {
  std::vector<int32_t> edge_off, eps_off, call_off;  // num_states() + 1 entries each
  std::vector<NfaEdge> edges;
  std::vector<int32_t> eps;
  std::vector<NfaCall> calls;
  // Called rules (recursive ones). Index 0 is the top level (the grammar itself).
  std::vector<int32_t> call_start, call_final;
  std::vector<std::string> call_names;
  std::vector<int32_t> state_rule;     // owning call rule of each state (empty when there is one rule)
  int32_t n_states = 0;
  std::vector<int32_t> special_tokens;  // symbol 256+k <-> token id special_tokens[k]
  // Unconstrained JSON string bodies (rep(cp(0..0x10FFFF, json), 0, -1)): each one's first state, sorted.
  // Every such body is built by the same code from a cached template, so its states are the contiguous
  // range [first, first + string_body_size) with the same relative structure; only the last state (the
  // body's exit) may gain edges from what follows it.
  std::vector<int32_t> string_bodies;
  int32_t string_body_size = 0;
  // Each inlined copy of an open-string rule: built from `entry` into the new states [lo, hi), in
  // build order (so sorted by lo, and disjoint).
  struct OpenString {
    int32_t entry, lo, hi;
  };
  std::vector<OpenString> open_strings;

  int32_t num_states() const { return n_states; }
  int32_t rule_of(int32_t s) const { return state_rule.empty() ? 0 : state_rule[size_t(s)]; }
  bool is_final(int32_t s) const { return call_final[size_t(rule_of(s))] == s; }  // s ends its rule
  Span<NfaEdge> edges_of(int32_t s) const { return {edges.data() + edge_off[s], edges.data() + edge_off[s + 1]}; }
  Span<int32_t> eps_of(int32_t s) const { return {eps.data() + eps_off[s], eps.data() + eps_off[s + 1]}; }
  Span<NfaCall> calls_of(int32_t s) const {
    if (call_off.empty()) return {nullptr, nullptr};  // no state calls
    return {calls.data() + call_off[s], calls.data() + call_off[s + 1]};
  }
  size_t memory_bytes() const {
    return (edge_off.size() + eps_off.size() + call_off.size() + state_rule.size()) * 4 + edges.size() * sizeof(NfaEdge) +
           eps.size() * 4 + calls.size() * sizeof(NfaCall) + string_bodies.size() * 4 +
           open_strings.size() * sizeof(OpenString);
  }
};

// Lower the IR to an NFA. Throws GrammarError (left recursion, bad refs) or LimitError (size).
Nfa build_nfa(const GrammarIR& ir, const Limits& limits);

}  // namespace fcg
