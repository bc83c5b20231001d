// Compiled grammar (automaton + token index + per-state mask cache) and the matcher that walks it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "automaton.h"
#include "token_index.h"

namespace fcg {

// A cached token mask of one automaton state (with an empty stack).
struct MaskEntry {
  const uint32_t* base = nullptr;  // a bitset of the token index's (inside a JSON string), copied first
  std::vector<int32_t> ids;        // allowed token ids (besides the base), when sparse
  std::vector<uint32_t> bits;      // the whole mask, when dense
  uint32_t max_cost = 0;           // largest "symbols to finish" over the states the tokens lead to
};

class CompiledGrammar {
 public:
  // `stop_ids`: the tokens that end this grammar's output (allowed exactly when it is complete); empty
  // means the vocabulary's own stop tokens. Tool-call formats use it for their end-of-turn tokens.
  CompiledGrammar(std::shared_ptr<const TokenIndex> index, std::shared_ptr<Automaton> automaton,
                  const Limits& limits, std::vector<int32_t> stop_ids = {});
  ~CompiledGrammar();

  const TokenIndex* index() const { return index_.get(); }
  const Automaton& automaton() const { return *automaton_; }
  const Limits& limits() const { return limits_; }
  const std::vector<std::pair<int32_t, Symbol>>& specials() const { return specials_; }
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  bool is_stop(int32_t id) const {
    return std::binary_search(stop_ids_.begin(), stop_ids_.end(), id);
  }

  // If `d` behaves exactly like state `*lexer_state` of an unconstrained JSON string body (a
  // bisimulation up to the closing quote), the state after the quote; else 0.
  int32_t string_body(int32_t d, int32_t* lexer_state) const;
  // The structural part of string_body (no transition rows needed); 0 when it does not apply.
  int32_t structural_string_body(int32_t d, int32_t* lexer_state) const;
  // string_body by the bisimulation walk alone (tests compare the two).
  int32_t string_body_bisim(int32_t d, int32_t* lexer_state) const;
  // If `d` lies inside an open string (GrammarIR::open_strings) at string lexer state `*lexer_state`:
  // then every token that stays inside the string from that lexer state is allowed, and the tokens that
  // close it are exactly those of the lexer state's closers that `d` accepts. Returns an upper bound on
  // the cost after an inside token (relative to d's rule, at least 1), or 0 when this does not apply.
  uint32_t open_string(int32_t d, int32_t* lexer_state) const;
  const MaskEntry* publish_mask(int32_t d, std::unique_ptr<MaskEntry> e) const;
  // Masks inside a called rule that depend on the caller's return state (one frame) only.
  const MaskEntry* find_frame_mask(int32_t d, int32_t ret) const;
  const MaskEntry* publish_frame_mask(int32_t d, int32_t ret, std::unique_ptr<MaskEntry> e) const;
  size_t memory_bytes() const;

 private:
  int32_t bisim_string_body(int32_t d, int32_t* lexer_state, bool record) const;
  // Lexer state of each NFA state of an open string's copy, from its opening quote (kOutside before it,
  // kAfter past the closing quote, 0 unreached); ok = false when a transition disagrees with the lexer.
  struct OpenStringLabels {
    static constexpr int32_t kOutside = -1, kAfter = -2;
    bool ok = false;
    std::vector<int32_t> label;  // by NFA state - copy.lo
    uint32_t max_cost = 0;       // largest finite cost of an NFA state inside the string
  };
  const OpenStringLabels& open_string_labels(size_t copy) const;
  OpenStringLabels label_open_string(const Nfa::OpenString& c) const;
  // Every byte sequence the NFA states `others` accept from lexer state `l` stays a valid string body
  // until it closes the string.
  bool inside_string_only(const std::vector<int32_t>& others, int32_t l) const;

  std::shared_ptr<const TokenIndex> index_;
  std::shared_ptr<Automaton> automaton_;
  Limits limits_;
  std::vector<std::pair<int32_t, Symbol>> specials_;  // (token id, symbol) the grammar names
  std::vector<int32_t> stop_ids_;                      // sorted
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<MaskEntry>> owned_;
  mutable std::unordered_map<uint64_t, const MaskEntry*> frame_masks_;
  mutable std::vector<std::unique_ptr<OpenStringLabels>> open_labels_;  // by copy, on first use (mu_)
};

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const CompiledGrammar> g, int64_t max_tokens = -1);
  Matcher(const Matcher&) = default;
  Matcher& operator=(const Matcher&) = default;

  bool accept_token(int32_t id);
  // accept_token(id) has little to compute (one configuration, every row on the token's path exists or
  // it follows a run of literal links, no call or return on it, the end within the budget): a few
  // lookups and at most a closure per run of links. The bindings hold the GIL for it.
  bool accept_is_cheap(int32_t id) const;
  bool accept_bytes(const std::string& bytes);  // byte level, counts as no token
  // Writes the allowed-token bitmask (index->words() uint32 words, bit set = allowed).
  void fill_mask(uint32_t* out);
  // fill_mask when every configuration's mask is already cached (a copy, no walk, nothing computed);
  // false, with `out` unspecified, when fill_mask has work to do. The bindings hold the GIL for this.
  bool fill_mask_cached(uint32_t* out);
  int32_t validate_tokens(const int32_t* ids, size_t n);
  void rollback(int32_t n);
  void reset();
  bool is_accepting() const;
  bool is_terminated() const { return history_.back().terminated; }
  int32_t num_tokens() const { return int32_t(history_.size()) - 1; }
  int64_t max_tokens() const { return max_tokens_; }
  int64_t remaining() const { return max_tokens_ < 0 ? INT64_MAX : max_tokens_ - num_tokens(); }
  // Bytes the grammar forces next (exactly one possible byte at each step), at most `limit`.
  std::string forced_bytes(size_t limit) const;
  // Fewest symbols needed to complete from here (bytes or special tokens).
  uint32_t min_cost_to_finish() const;
  const CompiledGrammar& grammar() const { return *g_; }
  // How the next mask is computed, for tests: per configuration, "string" (a plain string body),
  // "open string" or "walk" (the trie walk), joined by " + " (a union of their masks).
  std::string mask_path() const;

 private:
  struct Step {
    std::vector<Config> cfgs;
    bool terminated = false;
    int8_t over_budget = -1;  // no token fits the budget here (-1: not computed yet), see over_budget()
  };
  // (token, cost after it) pairs. Not a std::vector: a free-text mask appends most of the vocabulary in
  // runs (append_tokens), and vector::resize would construct every element first.
  struct TokCost {
    int32_t first;
    uint32_t second;
  };
  class Out {
   public:
    Out() = default;
    Out(const Out&) = delete;
    Out& operator=(const Out&) = delete;
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    void clear() { n_ = 0; }
    const TokCost* begin() const { return buf_.get(); }
    const TokCost* end() const { return buf_.get() + n_; }
    void push_back(TokCost x) { *grow(1) = x; }
    // Room for k more elements (left unset), appended: the caller writes them.
    TokCost* grow(size_t k) {
      if (n_ + k > cap_) {
        const size_t cap = std::max(n_ + k, cap_ * 2 + 64);
        std::unique_ptr<TokCost[]> b(new TokCost[cap]);
        if (n_) std::copy(buf_.get(), buf_.get() + n_, b.get());
        buf_ = std::move(b);
        cap_ = cap;
      }
      TokCost* p = buf_.get() + n_;
      n_ += k;
      return p;
    }
   private:
    std::unique_ptr<TokCost[]> buf_;
    size_t n_ = 0, cap_ = 0;
  };
  bool step_token_bytes(const std::string& bytes, bool strip_space, std::vector<Config>& cfgs);
  // The fill limit at the current position: the cost a token may leave for the tokens after it.
  uint32_t budget_limit() const;
  // Whether no token keeps a completion within the budget at the current position (and the output is not
  // complete): the mask then holds the tokens that bring the output closer to its end. Cached on the step.
  bool over_budget();
  // Walks the subtree of trie node `node`: the node itself and below (include_self), or only below it.
  void walk(const Trie& trie, uint32_t node, bool include_self, const std::vector<Config>& start, uint32_t limit,
            Out& out);
  void walk_dfa(const Trie& trie, uint32_t node, bool include_self, Config start, uint32_t limit, Out& out);
  static const uint64_t* loop_bytes(const Automaton& a, int32_t q, const int32_t* row);
  // Every multi-byte UTF-8 character read from q leads to `to` through live states.
  static bool utf8_loops(const Automaton& a, int32_t q, int32_t to);
  // The state every multi-byte UTF-8 character read from q leads to (q itself inside free text), or
  // kDead; cached on the state with the ASCII bytes that lead there (DState::asc_to). Free-text walks
  // take whole subtrees with it, also below a character that a token split.
  static int32_t char_to(const Automaton& a, int32_t q);
  static void append_tokens(Out& out, const int32_t* ids, uint32_t t0, uint32_t t1, uint32_t cost) {
    if (t0 >= t1) return;
    TokCost* p = out.grow(t1 - t0);
    for (uint32_t t = t0; t < t1; ++t) *p++ = {ids[t], cost};
  }
  static std::mutex& loop_mu() {
    static std::mutex mu;
    return mu;
  }
  void walk_configs(const Trie& trie, uint32_t begin, uint32_t end, int base_depth, const std::vector<Config>& start,
                    uint32_t limit, Out& out);
  // The closure of one configuration, as a range of closure_store_, with its cost (configs_cost) and the
  // shallowest stack depth in it (memoized: the arena only grows, so a configuration's closure never
  // changes).
  struct Closure {
    uint32_t first, second, cost, depth;
  };
  Closure closure_one(Config c);
  static Out& out_scratch();  // cleared
  std::unordered_map<uint64_t, Closure> closure_memo_;
  uint64_t last_closure_key_ = ~uint64_t(0);  // a walk asks for one state's closure at node after node
  Closure last_closure_{0, 0, 0, 0};
  std::vector<Config> closure_store_;
  // Shallowest stack depth a walk reached (how far below the current rule it looked).
  uint32_t min_depth_ = 0;
  // The shallowest stack depth among `cfgs` (UINT32_MAX when empty).
  uint32_t shallowest(const std::vector<Config>& cfgs) const {
    uint32_t d = UINT32_MAX;
    for (const Config& c : cfgs) d = std::min(d, arena_.node(c.stack).depth);
    return d;
  }
  void note_depth(const std::vector<Config>& cfgs) { min_depth_ = std::min(min_depth_, shallowest(cfgs)); }
  struct Base {
    const uint32_t* sets[StringLexemeIndex::kExtraBuckets + 4];
    int n = 0;
    uint32_t max_cost = 0;  // largest cost after a token of these sets
  };
  // Tokens that open an unconstrained string at trie node `node` (state `q` after it): precomputed
  // sets instead of a walk. False when the shortcut does not apply.
  bool opening_shortcut(int32_t node, const std::vector<Config>& after, uint32_t limit, Out& out);
  Base* base_ = nullptr;  // where walks put precomputed sets (set by collect)
  void collect(const std::vector<Config>& cfgs, bool first, uint32_t limit, Out& out, Base& base);
  void walk_root(const Trie& trie, const std::vector<Config>& start, uint32_t limit, Out& out);
  // Root children that are digits leading to a state that loops on every digit: their digit-only tokens
  // from the token index, and walks only from where tokens leave the digits. Marks the digits it did.
  void digit_runs(Config start, uint32_t limit, Out& out, bool done[10]);
  // The cached mask of a configuration (its state's, or its state's under its top frame), or null.
  const MaskEntry* lookup_entry(Config cfg) const;
  const MaskEntry* cached_entry(Config cfg, Out& out, Base& base);
  // Writes (`write`) or ORs a cached mask into `mask`; false when it allows no token.
  bool put_entry(const MaskEntry& e, uint32_t* mask, bool write) const;
  // Sets the grammar's stop tokens in `mask`.
  void put_stops(uint32_t* mask) const;
  bool config_mask(Config cfg, uint32_t limit, uint32_t* mask, bool write);
  // Up to this many configurations, a mask is the union of each one's (cached) mask; beyond, one walk
  // steps them all together.
  static constexpr size_t kMaxSplitConfigs = 16;
  uint32_t max_depth() const { return uint32_t(g_->limits().max_stack_depth); }

  std::shared_ptr<const CompiledGrammar> g_;
  int64_t max_tokens_;
  StackArena arena_;
  std::vector<Step> history_;
  std::vector<std::vector<Config>> scratch_;
  struct WalkFrame {
    uint32_t next, end;   // the children still to visit: child arrays [next, end)
    const int32_t* row;   // transition row of the state at the frame's node
    // Inside a character (u > 0, Trie::utf8_step's states, at the frame's node): the state the character
    // leads to once complete (char_to of the last boundary's state). u = 0: at a boundary, where `bound`
    // is the frame node's state if it is text (the walk tracks the characters its children start), or
    // kDead (not tracked). A frame without a row holds one child, reached in NFA state `bound` (a literal
    // link's side byte, see walk_dfa's follow).
    int32_t bound;
    int8_t u;
  };
  std::vector<WalkFrame> frames_;
};

// Fill masks of many matchers across threads (GIL released by the caller).
void batch_fill(const std::vector<Matcher*>& ms, uint32_t* bitmask, int64_t row_stride,
                const std::vector<int32_t>& rows, int32_t threads);

}  // namespace fcg
