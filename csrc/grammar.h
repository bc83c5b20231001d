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

enum class Op : uint8_t { Lit = 0, Cp = 1, Byte = 2, Seq = 3, Alt = 4, Rep = 5, Ref = 6, Tok = 7 };

struct Expr {
  Op op = Op::Seq;
  bool json = false;                               // Cp: JSON-string encoding
  int32_t lo = 0, hi = 0;                          // Rep bounds (hi = -1: unbounded)
  int32_t ref = -1;                                // Ref: rule index; Tok: token id
  std::string bytes;                               // Lit
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // Cp / Byte
  std::vector<int32_t> kids;                       // Seq / Alt children, Rep child (kids[0])
};

struct GrammarIR {
  std::vector<Expr> nodes;
  std::vector<int32_t> rules;  // rule index -> root node
  std::vector<std::string> names;
  std::vector<int32_t> calls;  // rules to build once and call even though they are not recursive
};

struct NfaEdge {
  Symbol lo, hi;  // inclusive symbol range
  int32_t to;
};

struct NfaCall {
  int32_t rule;  // callee (index into Nfa::call_rules)
  int32_t ret;   // state to continue at after the callee returns
};

struct NfaState {
  std::vector<NfaEdge> edges;
  std::vector<int32_t> eps;
  std::vector<NfaCall> calls;
};

struct Nfa {
  std::vector<NfaState> states;
  // Called rules (recursive ones). Index 0 is the top level (the grammar itself).
  std::vector<int32_t> call_start, call_final;
  std::vector<std::string> call_names;
  std::vector<int32_t> state_rule;     // owning call rule of each state
  std::vector<int32_t> special_tokens;  // symbol 256+k <-> token id special_tokens[k]
};

// Lower the IR to an NFA. Throws GrammarError (left recursion, bad refs) or LimitError (size).
Nfa build_nfa(const GrammarIR& ir, const Limits& limits);

}  // namespace fcg
