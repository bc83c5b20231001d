// Token index: everything precomputed from the vocabulary alone, shared by every grammar compiled for
// that tokenizer. A byte trie of the (non-special) tokens laid out in DFS order, and the precomputed
// behaviour of every token inside an unconstrained JSON string body.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "automaton.h"
#include "common.h"

namespace fcg {

class Trie {
 public:
  struct Node {
    uint32_t end;    // index one past this node's subtree
    uint16_t depth;  // bytes from the root
    uint8_t byte;
    uint8_t pad = 0;
  };
  Trie() = default;
  // entries: (bytes, token id); bytes must be non-empty.
  explicit Trie(std::vector<std::pair<std::string, int32_t>> entries);

  std::vector<Node> nodes;         // nodes[0] is the root
  std::vector<uint32_t> tok_off;   // tokens of node i: tok_ids[tok_off[i] .. tok_off[i+1])
  std::vector<int32_t> tok_ids;
  int32_t root_child[256] = {};    // node index of the root's child for a byte, or 0
  int32_t max_depth = 0;
  // Children of node i: child_byte / child_node [child_off[i] .. child_off[i+1]), by byte. Derived from
  // `nodes` (index_children), so a walk reads a node's child bytes contiguously.
  std::vector<uint32_t> child_off;
  std::vector<uint8_t> child_byte;
  std::vector<uint32_t> child_node;
  // The bytes that occur strictly below node i: below[2i] bits 1-63 for bytes 1-63, below[2i+1] for
  // bytes 64-127, and bit 0 of below[2i] for NUL or any byte >= 0x80. A walk in a state that loops on
  // all of them takes the whole subtree without visiting it. Also derived by index_children.
  std::vector<uint64_t> below;
  // utf8_ok[i] bit s: every byte string below node i (each token's bytes past it) is a prefix of valid
  // UTF-8 text, without NUL, read from utf8_step's state s (bit 0: from a character boundary; the others:
  // inside a character, for a node whose token prefix split one). A state that loops on their ASCII
  // bytes and reads every UTF-8 character back to itself accepts them all. Also derived by
  // index_children.
  std::vector<uint8_t> utf8_ok;
  void index_children();
  static constexpr int kUtf8States = 8;
  static int utf8_step(int state, uint8_t b);
  size_t memory_bytes() const {
    return nodes.size() * sizeof(Node) + tok_off.size() * 4 + tok_ids.size() * 4 + child_off.size() * 4 +
           child_byte.size() + child_node.size() * 4 + below.size() * 8 + utf8_ok.size();
  }
};

// How each token behaves inside an unconstrained JSON string body, from each state of the canonical
// string automaton (character boundary, mid-escape, mid-UTF-8 character).
struct StringLexemeIndex {
  static constexpr int kExtraBuckets = 8;
  struct Entry {
    std::vector<uint32_t> inside;      // bitset: tokens that stay inside the string
    std::vector<int32_t> exact_close;  // tokens whose last byte is the closing quote
    Trie suffixes;                     // tokens that close the string and continue, keyed by the rest
    Trie closers;                      // every closing token (exact close or continuing), whole bytes
    uint8_t live[32] = {0};            // bytes with a transition from this state (for matching states)
    uint32_t cost = 0;                 // symbols to close the string from here
    int32_t max_extra = 0;             // largest extra cost over inside tokens' end states
  };
  std::unique_ptr<Automaton> lexer;  // the canonical string-body automaton (states 1..n, 0 dead)
  std::vector<Entry> entries;        // by lexer state; entries[0] unused
  std::vector<int32_t> canon;        // lexer state -> the smallest equivalent one (0: dead)
  // For the start state only: inside tokens bucketed by how many more symbols than at a character
  // boundary they leave to close the string (budget-aware masks).
  std::vector<uint32_t> start_inside_by_extra[kExtraBuckets];
  int32_t start = 0;
  // Tokens that open a string and go on inside it: for the trie nodes of '"' and ' "', the tokens below
  // them, split as for the start state (inside / exact close / suffix trie after the closing quote).
  struct Opening {
    int32_t node = 0;  // trie node, 0 = absent
    Entry entry;       // as from the start state, for the bytes after the node
  };
  Opening openings[2];
  // Structural recognition (no bisimulation walk): the grammar's string bodies are built from the same
  // template as the lexer's, so a state whose NFA set lies inside one body is the lexer state with the
  // same set relative to the body's first state. body_size: NFA states of one body; body_sets: for each
  // inside lexer state, its core NFA set relative to the lexer's body (with a hash), and the state.
  int32_t body_size = 0;
  struct BodySet {
    uint64_t hash;
    std::vector<int32_t> rel;
    int32_t state;
  };
  std::vector<BodySet> body_sets;
  // The states of an NFA set that matter for its behaviour: those with an edge or a call, or final in
  // their rule (an epsilon-only state adds nothing once the set is closed).
  static bool matters(const Nfa& nfa, int32_t s) {
    return !nfa.edges_of(s).empty() || !nfa.calls_of(s).empty() || nfa.is_final(s);
  }
  static std::vector<int32_t> core(const Nfa& nfa, Span<int32_t> set) {
    std::vector<int32_t> out;
    for (int32_t s : set)
      if (matters(nfa, s)) out.push_back(s);
    return out;
  }
  static uint64_t hash_rel(const int32_t* s, size_t n, int32_t base) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; ++i) h = (h ^ uint32_t(s[i] - base)) * 1099511628211ull;
    return h;
  }
};

// Tokens made only of ASCII digits, by first digit and length, and the trie nodes below each digit where
// a token leaves the digits (its path so far all digits). Number grammars read digits through a short
// chain of states that all digits lead along alike (after one digit, two, then a loop): the digit-only
// tokens then need no walk, only the chain's state at each length.
struct DigitRuns {
  // tokens[k][len_off[k][n] .. len_off[k][n + 1]): the tokens of n digits (n >= 1) that start with k
  std::vector<int32_t> tokens[10];
  std::vector<uint32_t> len_off[10];
  std::vector<uint32_t> frontier[10];
  int32_t max_len = 0;            // the longest all-digit path in the trie (a token's, or below one)
  std::vector<uint32_t> all;      // bitset of every digit-only token
  std::vector<uint32_t> nonzero;  // bitset of the digit-only tokens that start with 1-9
};

class TokenIndex {
 public:
  TokenIndex(std::vector<std::string> tokens, std::vector<uint8_t> special, int32_t vocab_size,
             std::vector<int32_t> stop_ids, bool add_prefix_space);
  // Restore the precomputed parts from serialize()'s output instead of recomputing them. Throws
  // TokenizerError when the blob does not fit these tokens (the caller then rebuilds).
  TokenIndex(std::vector<std::string> tokens, std::vector<uint8_t> special, int32_t vocab_size,
             std::vector<int32_t> stop_ids, bool add_prefix_space, const std::string& blob);
  std::string serialize() const;
  static constexpr uint32_t kFormatVersion = 1;

  int32_t vocab_size() const { return vocab_size_; }
  int32_t n_tokens() const { return int32_t(tokens_.size()); }
  int32_t words() const { return (vocab_size_ + 31) / 32; }
  const std::string& token(int32_t id) const { return tokens_[id]; }
  bool is_special(int32_t id) const { return special_[id] != 0; }
  bool is_stop(int32_t id) const { return id >= 0 && id < vocab_size_ && stop_mask_[id]; }
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  bool add_prefix_space() const { return add_prefix_space_; }
  const Trie& trie() const { return trie_; }
  const StringLexemeIndex& string_lexeme() const { return str_; }
  const DigitRuns& digit_runs() const { return digits_; }
  size_t memory_bytes() const;

 private:
  void init_common();
  void build_string_lexeme();
  void build_openings();
  void build_digit_runs();
  void build_closers();
  int32_t classify_in_string(int32_t id, size_t from, int32_t l, StringLexemeIndex::Entry& e,
                             std::vector<std::pair<std::string, int32_t>>& suffixes) const;
  std::vector<int32_t> lexer_states();

  std::vector<std::string> tokens_;
  std::vector<uint8_t> special_;
  int32_t vocab_size_;
  std::vector<int32_t> stop_ids_;
  std::vector<uint8_t> stop_mask_;
  bool add_prefix_space_;
  Trie trie_;
  StringLexemeIndex str_;
  DigitRuns digits_;
};

// Canonical grammar of an unconstrained JSON string body followed by its closing quote.
GrammarIR string_body_ir();

}  // namespace fcg
