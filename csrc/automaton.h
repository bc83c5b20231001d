// Lazily determinized automaton over symbols (bytes + special tokens), with call edges for recursion.
//
// Each deterministic state is a set of NFA states of one call rule. Transitions are computed on first
// use, one row (all symbol classes) at a time, under a mutex; rows are published through atomics so
// that many matchers (and threads) read a compiled grammar without locking.
// At run time a matcher holds a set of configurations (state, stack); the stack lives in a per-matcher
// StackArena and is only non-empty inside recursive rules.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "grammar.h"

namespace fcg {

constexpr int32_t kDead = 0;
constexpr uint32_t kInfCost = 0x3FFFFFFF;

struct DState {
  Span<int32_t> nfa{nullptr, nullptr};          // sorted NFA states (in the automaton's set pool)
  uint64_t hash = 0;                            // of `nfa`, for interning
  std::atomic<const int32_t*> row{nullptr};    // symbol class -> next state (kDead = none)
  int32_t rule = 0;                             // owning call rule
  bool final = false;                           // the rule can end here
  int16_t only_byte = -1;                       // the one byte with a transition (set with the row), or -1
  uint32_t cost = kInfCost;                     // fewest symbols to end the rule from here
  std::vector<std::pair<int32_t, int32_t>> calls;  // (callee rule, DFA state to return to)
  // Slots for the token layer's caches (owned and interpreted by CompiledGrammar).
  std::atomic<void*> mask{nullptr};   // cached token mask for this state with an empty stack
  std::atomic<int64_t> lexeme{-1};    // -1 unknown, 0 none, else (string lexer state << 32) | exit state
  std::atomic<int64_t> open{-1};      // -1 unknown, 0 none, else (string lexer state << 32) | cost bound
  // The bytes this state loops on, in Trie::below's layout (valid once loop_known is set).
  std::atomic<bool> loop_known{false};
  uint64_t loop[2] = {0, 0};
  // The state every multi-byte UTF-8 character leads to (kDead: none, or not all to one; -1: not computed
  // yet), and the ASCII bytes that lead there too, in loop's layout (valid once char_to >= 0).
  std::atomic<int32_t> char_to{-1};
  uint64_t asc_to[2] = {0, 0};
  // The NFA state when this state is a single literal link (Automaton::lit_byte), else -1.
  int32_t lit = -1;
};

class Automaton {
 public:
  Automaton(Nfa nfa, const Limits& limits);
  ~Automaton();
  Automaton(const Automaton&) = delete;
  Automaton& operator=(const Automaton&) = delete;

  int32_t start() const { return rule_start_[0]; }
  int32_t rule_start(int32_t rule) const { return rule_start_[rule]; }
  bool has_calls() const { return nfa_.call_start.size() > 1; }
  const Nfa& nfa() const { return nfa_; }

  const DState& state(int32_t d) const { return chunks_[d >> kChunkBits][d & kChunkMask]; }
  DState& state_mut(int32_t d) const { return chunks_[d >> kChunkBits][d & kChunkMask]; }
  int32_t num_states() const { return count_.load(std::memory_order_acquire); }

  int32_t symbol_class(Symbol s) const { return sym_class_[s]; }
  const uint16_t* byte_classes() const { return sym_class_.data(); }
  int32_t num_classes() const { return num_classes_; }
  // The first symbol after `s` in another class than s (num_symbols() at the end): a symbol range is
  // walked one run of a class at a time.
  int32_t run_next(Symbol s) const { return run_next_[size_t(s)]; }
  int32_t num_symbols() const { return int32_t(sym_class_.size()); }
  // The bytes (symbols below 256) of a class.
  Span<uint8_t> class_bytes(int32_t c) const {
    return {class_bytes_.data() + class_byte_off_[c], class_bytes_.data() + class_byte_off_[c + 1]};
  }
  int32_t num_rows() const { return num_rows_; }

  const int32_t* row(int32_t d) const {
    const int32_t* r = state(d).row.load(std::memory_order_acquire);
    return r ? r : compute_row(d);
  }
  int32_t step(int32_t d, Symbol s) const { return row(d)[sym_class_[s]]; }
  int32_t step_byte(int32_t d, uint8_t b) const { return row(d)[sym_class_[b]]; }

  // Fewest symbols to end the rule from NFA state `s` (kInfCost: never).
  uint32_t nfa_cost(int32_t s) const { return nfa_cost_[size_t(s)]; }

  // The DFA state of the epsilon closure of one NFA state (built on first use).
  int32_t closure_state(int32_t nfa_state) const;

  // Literal links: an NFA state that reads one byte (lit_byte, -1 if s is not a link) into one state
  // (lit_next) strictly closer to the end, with no epsilon move, call or rule end, and at most one other
  // byte (lit_side, -1 if none: a JSON literal's backslash, the same character escaped) into
  // lit_side_next. Its DFA state is the set {s} (DState::lit); the DFA state after its byte is
  // closure_state(lit_next(s)). Walks and steps follow a run of links through the NFA, so a key or name
  // read one byte at a time costs no DFA state (nor row) per byte, only where the run is left (or a
  // token takes the side byte). Stored as one byte per NFA state: which of its edges is the link's.
  int32_t lit_byte(int32_t s) const { return lit_[size_t(s)] ? lit_edge(s, 0).lo : -1; }
  int32_t lit_next(int32_t s) const { return lit_edge(s, 0).to; }
  int32_t lit_side(int32_t s) const { return lit_[size_t(s)] > 1 ? lit_edge(s, 1).lo : -1; }
  int32_t lit_side_next(int32_t s) const { return lit_edge(s, 1).to; }
  // Follow the links' bytes from link `s` over [p, end): the NFA state reached, stopping at the end, at
  // a state that is not a link or at a byte that is not the link's, with *p advanced past the bytes
  // read; -1 (p unchanged) when the first byte is not s's.
  int32_t follow_literal(int32_t s, const uint8_t*& p, const uint8_t* end) const {
    if (*p != lit_byte(s)) return -1;
    for (;;) {
      const int32_t t = lit_next(s);
      if (++p == end || lit_byte(t) != *p) return t;
      s = t;
    }
  }

  // Special token id -> symbol (or -1 if the grammar never names it).
  Symbol token_symbol(int32_t token_id) const;
  const std::vector<int32_t>& special_tokens() const { return nfa_.special_tokens; }

  size_t memory_bytes() const;

 private:
  static constexpr int kChunkBits = 8;
  static constexpr int32_t kChunkMask = (1 << kChunkBits) - 1;

  const int32_t* compute_row(int32_t d) const;
  void ensure_scratch_locked() const;
  int32_t intern_locked(const std::vector<int32_t>& set) const;
  void grow_intern_locked() const;
  void closure_locked(std::vector<int32_t>& set) const;
  // closure_state's work where single_ has no state yet for `nfa_state` (under mu_): builds and records it.
  int32_t new_closure_state_locked(int32_t nfa_state) const;
  // Epsilon closure of [begin, end) into `out` (sorted); `out` must not alias the input.
  void closure_into_locked(const int32_t* begin, const int32_t* end, std::vector<int32_t>& out) const;
  void compute_costs();
  void compute_classes();
  void compute_literal_links();

  Nfa nfa_;
  Limits limits_;
  std::vector<uint16_t> sym_class_;
  std::vector<int32_t> run_next_;        // next symbol in another class (or num_symbols)
  std::vector<int32_t> class_byte_off_;  // bytes of class c: class_bytes_[off[c] .. off[c+1])
  std::vector<uint8_t> class_bytes_;
  int32_t num_classes_ = 0;
  std::vector<uint32_t> nfa_cost_;
  // Per NFA state: 0 not a link; 1 a link by edge 0 (no side byte); 2 by edge 0, side edge 1; 3 by
  // edge 1, side edge 0.
  std::vector<uint8_t> lit_;
  // Link s's own edge (k = 0) or its side edge (k = 1).
  const NfaEdge& lit_edge(int32_t s, int k) const {
    return nfa_.edges[size_t(nfa_.edge_off[size_t(s)]) + size_t((lit_[size_t(s)] == 3) != (k == 1))];
  }
  std::vector<int32_t> rule_start_;

  mutable std::mutex mu_;
  mutable std::unique_ptr<std::unique_ptr<DState[]>[]> chunks_;
  mutable int32_t max_chunks_ = 0;
  mutable std::atomic<int32_t> count_{0};
  static uint64_t hash_set(const std::vector<int32_t>& v) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t x : v) h = (h ^ uint32_t(x)) * 1099511628211ull;
    return h ^ (h >> 29);
  }
  // NFA set -> DFA state: open addressing over DFA ids (-1 empty), at most half full.
  mutable std::vector<int32_t> intern_;
  // Ints carved from blocks: one allocation per many rows or NFA sets (they live as long as the automaton).
  class IntPool {
   public:
    explicit IntPool(size_t block) : block_(block) {}
    int32_t* alloc(size_t n) {
      if (blocks_.empty() || used_ + n > size_) {
        size_ = std::max(n, block_);
        blocks_.emplace_back(new int32_t[size_]);
        used_ = 0;
        allocated_ += size_;
      }
      int32_t* p = blocks_.back().get() + used_;
      used_ += n;
      return p;
    }
    size_t allocated_bytes() const { return allocated_ * sizeof(int32_t); }

   private:
    std::vector<std::unique_ptr<int32_t[]>> blocks_;
    size_t block_, size_ = 0, used_ = 0, allocated_ = 0;
  };
  mutable IntPool sets_{2048};  // the NFA sets of deterministic states
  mutable IntPool rows_{4096};  // transition rows
  mutable int32_t num_rows_ = 0;
  // Scratch for compute_row (used under mu_; its per-class buckets are per thread, see RowScratch).
  mutable std::vector<int32_t> single_;               // NFA state -> DFA state of its closure, or -1
  mutable std::vector<int32_t> closure_todo_, closure_out_;
  std::unordered_map<int32_t, Symbol> token_symbol_;
};

// ---- Run-time configurations -------------------------------------------------------------------

struct Config {
  int32_t d;      // DFA state
  int32_t stack;  // StackArena node (0 = empty stack)
  bool operator==(const Config& o) const { return d == o.d && stack == o.stack; }
};

class StackArena {
 public:
  struct Node {
    int32_t parent;
    int32_t ret;     // DFA state to continue at
    uint32_t cost;   // sum of the return states' costs down to the bottom
    uint32_t depth;
  };
  StackArena() { reset(); }
  void reset();
  // Returns -1 when the depth limit is hit.
  int32_t push(const Automaton& a, int32_t parent, int32_t ret, uint32_t max_depth);
  const Node& node(int32_t i) const { return nodes_[i]; }
  size_t size() const { return nodes_.size(); }

 private:
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> index_;
};

// A configuration in state `st` with stack `stack` calls a rule or can return: its closure holds other
// configurations than itself.
inline bool expands(const DState& st, int32_t stack) { return !st.calls.empty() || (st.final && stack != 0); }

// Expand calls and returns in place (deduplicated). Configurations whose state is dead are dropped.
void closure(const Automaton& a, StackArena& arena, std::vector<Config>& cfgs, uint32_t max_depth);
// Advance all configurations by one symbol, then close; returns false if nothing survives.
bool step_configs(const Automaton& a, StackArena& arena, const std::vector<Config>& in, Symbol s,
                  std::vector<Config>& out, uint32_t max_depth);
bool configs_accepting(const Automaton& a, const std::vector<Config>& cfgs);
uint32_t configs_cost(const Automaton& a, const StackArena& arena, Span<Config> cfgs);
inline uint32_t configs_cost(const Automaton& a, const StackArena& arena, const std::vector<Config>& cfgs) {
  return configs_cost(a, arena, Span<Config>{cfgs.data(), cfgs.data() + cfgs.size()});
}

}  // namespace fcg
