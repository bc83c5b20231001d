#include "token_index.h"

#include <algorithm>
#include <cstring>

namespace fcg {

Trie::Trie(std::vector<std::pair<std::string, int32_t>> entries) {
  std::sort(entries.begin(), entries.end());
  std::memset(root_child, 0, sizeof(root_child));
  nodes.push_back({0, 0, 0, 0});
  std::vector<int32_t> path{0};  // path[k] = open node at depth k
  std::vector<std::pair<int32_t, int32_t>> attach;  // (node, token) in node order
  const std::string* prev = nullptr;
  for (const auto& [bytes, id] : entries) {
    if (bytes.empty()) continue;
    if (bytes.size() > 0xFFFF) throw TokenizerError("token " + std::to_string(id) + " is longer than 65535 bytes");
    size_t common = 0;
    if (prev) {
      size_t lim = std::min(prev->size(), bytes.size());
      while (common < lim && (*prev)[common] == bytes[common]) ++common;
    }
    while (path.size() > common + 1) {
      nodes[path.back()].end = uint32_t(nodes.size());
      path.pop_back();
    }
    for (size_t k = common; k < bytes.size(); ++k) {
      int32_t idx = int32_t(nodes.size());
      nodes.push_back({0, uint16_t(k + 1), uint8_t(bytes[k]), 0});
      if (k == 0) root_child[uint8_t(bytes[k])] = idx;
      path.push_back(idx);
    }
    max_depth = std::max<int32_t>(max_depth, int32_t(bytes.size()));
    attach.push_back({path.back(), id});
    prev = &bytes;
  }
  while (!path.empty()) {
    nodes[path.back()].end = uint32_t(nodes.size());
    path.pop_back();
  }
  tok_off.assign(nodes.size() + 1, 0);
  for (auto [n, id] : attach) ++tok_off[n + 1];
  for (size_t i = 1; i < tok_off.size(); ++i) tok_off[i] += tok_off[i - 1];
  tok_ids.resize(attach.size());
  std::vector<uint32_t> fill(tok_off.begin(), tok_off.end() - 1);
  for (auto [n, id] : attach) tok_ids[fill[n]++] = id;
}

GrammarIR string_body_ir() {
  GrammarIR ir;
  Expr cp;
  cp.op = Op::Cp;
  cp.json = true;
  cp.ranges = {{0, 0x10FFFF}};
  Expr rep;
  rep.op = Op::Rep;
  rep.lo = 0;
  rep.hi = -1;
  rep.kids = {0};
  Expr quote;
  quote.op = Op::Lit;
  quote.bytes = "\"";
  Expr seq;
  seq.op = Op::Seq;
  seq.kids = {1, 2};
  ir.nodes = {cp, rep, quote, seq};
  ir.rules = {3};
  ir.names = {"json_string_body"};
  return ir;
}

TokenIndex::TokenIndex(std::vector<std::string> tokens, std::vector<uint8_t> special, int32_t vocab_size,
                       std::vector<int32_t> stop_ids, bool add_prefix_space)
    : tokens_(std::move(tokens)),
      special_(std::move(special)),
      vocab_size_(vocab_size),
      stop_ids_(std::move(stop_ids)),
      add_prefix_space_(add_prefix_space) {
  if (special_.size() != tokens_.size())
    throw TokenizerError("special flags (" + std::to_string(special_.size()) + ") and tokens (" +
                         std::to_string(tokens_.size()) + ") differ in length");
  if (vocab_size_ < int32_t(tokens_.size()))
    throw TokenizerError("vocab_size " + std::to_string(vocab_size_) + " is smaller than the tokenizer's " +
                         std::to_string(tokens_.size()) + " tokens");
  stop_mask_.assign(vocab_size_, 0);
  for (int32_t s : stop_ids_) {
    if (s < 0 || s >= vocab_size_) throw TokenizerError("stop token id " + std::to_string(s) + " out of range");
    stop_mask_[s] = 1;
  }
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (!special_[i] && !tokens_[i].empty() && !stop_mask_[i]) entries.push_back({tokens_[i], int32_t(i)});
  trie_ = Trie(std::move(entries));
  build_string_lexeme();
}

void TokenIndex::build_string_lexeme() {
  Limits lim;
  str_.lexer = std::make_unique<Automaton>(build_nfa(string_body_ir(), lim), lim);
  const Automaton& L = *str_.lexer;
  str_.start = L.start();
  int32_t W = words();
  for (auto& b : str_.start_inside_by_extra) b.assign(W, 0);
  // Discover every lexer state (rows are built lazily).
  std::vector<int32_t> todo{str_.start};
  std::vector<char> seen(2, 0);
  auto mark = [&](int32_t q) {
    if (q >= int32_t(seen.size())) seen.resize(size_t(q) + 1, 0);
    if (q != kDead && !seen[q]) { seen[q] = 1; todo.push_back(q); }
  };
  seen[str_.start] = 1;
  std::vector<int32_t> states;
  while (!todo.empty()) {
    int32_t q = todo.back();
    todo.pop_back();
    if (L.state(q).final) continue;  // after the closing quote: not inside
    states.push_back(q);
    for (int b = 0; b < 256; ++b) mark(L.step_byte(q, uint8_t(b)));
  }
  str_.entries.resize(size_t(L.num_states()));
  for (int32_t q : states) {
    auto& e = str_.entries[q];
    e.inside.assign(W, 0);
    e.cost = L.state(q).cost;
    for (int b = 0; b < 256; ++b)
      if (L.step_byte(q, uint8_t(b)) != kDead) e.live[b >> 3] |= uint8_t(1u << (b & 7));
    std::vector<std::pair<std::string, int32_t>> suffixes;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (special_[i] || tokens_[i].empty() || stop_mask_[i]) continue;
      const std::string& t = tokens_[i];
      int32_t l = q;
      size_t p = 0;
      for (; p < t.size(); ++p) {
        l = L.step_byte(l, uint8_t(t[p]));
        if (l == kDead || L.state(l).final) break;
      }
      if (l == kDead) continue;
      if (L.state(l).final) {
        if (p + 1 == t.size())
          e.exact_close.push_back(int32_t(i));
        else
          suffixes.push_back({t.substr(p + 1), int32_t(i)});
        continue;
      }
      int32_t extra = std::max(0, int32_t(L.state(l).cost) - int32_t(e.cost));
      e.max_extra = std::max(e.max_extra, extra);
      e.inside[i >> 5] |= 1u << (i & 31);
      if (q == str_.start) {
        extra = std::min(extra, StringLexemeIndex::kExtraBuckets - 1);
        str_.start_inside_by_extra[extra][i >> 5] |= 1u << (i & 31);
      }
    }
    e.suffixes = Trie(std::move(suffixes));
  }
}

size_t TokenIndex::memory_bytes() const {
  size_t b = trie_.memory_bytes();
  for (const auto& e : str_.entries) b += e.suffixes.memory_bytes() + e.inside.size() * 4 + e.exact_close.size() * 4;
  for (const auto& t : tokens_) b += t.size() + sizeof(std::string);
  b += special_.size() + stop_mask_.size();
  b += size_t(StringLexemeIndex::kExtraBuckets) * size_t(words()) * 4;
  return b;
}

}  // namespace fcg
