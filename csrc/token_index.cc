#include "token_index.h"

#include <map>

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
  index_children();
}

void Trie::index_children() {
  const size_t n = nodes.size();
  child_off.assign(n + 1, 0);
  child_byte.clear();
  child_node.clear();
  child_byte.reserve(n ? n - 1 : 0);
  child_node.reserve(n ? n - 1 : 0);
  for (size_t i = 0; i < n; ++i) {
    child_off[i] = uint32_t(child_node.size());
    for (uint32_t c = uint32_t(i) + 1; c < nodes[i].end; c = nodes[c].end) {
      child_byte.push_back(nodes[c].byte);
      child_node.push_back(c);
    }
  }
  child_off[n] = uint32_t(child_node.size());
  // The bytes below each node, children first (they come later in DFS order).
  below.assign(2 * n, 0);
  for (size_t i = n; i-- > 0;)
    for (uint32_t k = child_off[i]; k < child_off[i + 1]; ++k) {
      const uint32_t c = child_node[k];
      const uint8_t b = child_byte[k];
      below[2 * i] |= below[2 * c];
      below[2 * i + 1] |= below[2 * c + 1];
      if (b == 0 || b >= 0x80)
        below[2 * i] |= 1;
      else
        below[2 * i + (b >> 6)] |= uint64_t(1) << (b & 63);
    }
  // UTF-8 validity below each node, for each state of a validator (bit s: valid when the bytes below
  // are read from validator state s), children first.
  std::vector<uint8_t> valid(n, 0xFF);
  for (size_t i = n; i-- > 0;)
    for (uint32_t k = child_off[i]; k < child_off[i + 1]; ++k) {
      const uint32_t c = child_node[k];
      uint8_t v = 0;
      for (int st = 0; st < kUtf8States; ++st) {
        const int t = utf8_step(st, child_byte[k]);
        if (t >= 0 && (valid[c] >> t & 1)) v |= uint8_t(1u << st);
      }
      valid[i] &= v;
    }
  utf8_ok = std::move(valid);
}

// A UTF-8 validator: 0 at a character boundary; 1, 2, 3: that many continuation bytes (80-BF) to go;
// 4 (after E0): A0-BF then one; 5 (after ED): 80-9F then one; 6 (after F0): 90-BF then two; 7 (after
// F4): 80-8F then two. -1: invalid (NUL counts as invalid here).
int Trie::utf8_step(int st, uint8_t b) {
  auto in = [b](int lo, int hi) { return b >= lo && b <= hi; };
  switch (st) {
    case 0:
      if (b == 0) return -1;
      if (b < 0x80) return 0;
      if (in(0xC2, 0xDF)) return 1;
      if (b == 0xE0) return 4;
      if (b == 0xED) return 5;
      if (in(0xE1, 0xEF)) return 2;
      if (b == 0xF0) return 6;
      if (b == 0xF4) return 7;
      if (in(0xF1, 0xF3)) return 3;
      return -1;
    case 1: return in(0x80, 0xBF) ? 0 : -1;
    case 2: return in(0x80, 0xBF) ? 1 : -1;
    case 3: return in(0x80, 0xBF) ? 2 : -1;
    case 4: return in(0xA0, 0xBF) ? 1 : -1;
    case 5: return in(0x80, 0x9F) ? 1 : -1;
    case 6: return in(0x90, 0xBF) ? 2 : -1;
    case 7: return in(0x80, 0x8F) ? 2 : -1;
  }
  return -1;
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
  init_common();
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (!special_[i] && !tokens_[i].empty() && !stop_mask_[i]) entries.push_back({tokens_[i], int32_t(i)});
  trie_ = Trie(std::move(entries));
  build_string_lexeme();
  build_closers();
  build_digit_runs();
}

void TokenIndex::init_common() {
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
}

// ---- serialization (on-disk cache) ------------------------------------------------------------------

namespace {

struct Writer {
  std::string out;
  template <class T>
  void pod(const T& v) { out.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod(uint64_t(v.size()));
    out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void trie(const Trie& t) {
    vec(t.nodes);
    vec(t.tok_off);
    vec(t.tok_ids);
    out.append(reinterpret_cast<const char*>(t.root_child), sizeof(t.root_child));
    pod(t.max_depth);
  }
};

struct Reader {
  const std::string& in;
  size_t pos = 0;
  void need(size_t n) {
    if (pos + n > in.size()) throw TokenizerError("token index cache is truncated");
  }
  template <class T>
  T pod() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, in.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  template <class T>
  std::vector<T> vec(uint64_t max_elems) {
    uint64_t n = pod<uint64_t>();
    if (n > max_elems) throw TokenizerError("token index cache has an implausible size");
    need(n * sizeof(T));
    std::vector<T> v(n);
    std::memcpy(v.data(), in.data() + pos, n * sizeof(T));
    pos += n * sizeof(T);
    return v;
  }
  Trie trie(int32_t n_tokens) {
    Trie t;
    t.nodes = vec<Trie::Node>(uint64_t(1) << 32);
    t.tok_off = vec<uint32_t>(uint64_t(1) << 32);
    t.tok_ids = vec<int32_t>(uint64_t(1) << 32);
    need(sizeof(t.root_child));
    std::memcpy(t.root_child, in.data() + pos, sizeof(t.root_child));
    pos += sizeof(t.root_child);
    t.max_depth = pod<int32_t>();
    // Structural checks: a corrupt cache must never be trusted.
    size_t n = t.nodes.size();
    if (n == 0 || t.tok_off.size() != n + 1 || t.tok_off.back() != t.tok_ids.size())
      throw TokenizerError("token index cache: inconsistent trie");
    for (size_t i = 0; i < n; ++i) {
      if (t.nodes[i].end <= i || t.nodes[i].end > n || t.tok_off[i] > t.tok_off[i + 1] ||
          t.nodes[i].depth > t.max_depth)
        throw TokenizerError("token index cache: inconsistent trie");
      if (i > 0 && t.nodes[i].depth == 0) throw TokenizerError("token index cache: inconsistent trie");
    }
    for (int32_t id : t.tok_ids)
      if (id < 0 || id >= n_tokens) throw TokenizerError("token index cache: token id out of range");
    for (int32_t c : t.root_child)
      if (c < 0 || size_t(c) >= n) throw TokenizerError("token index cache: inconsistent trie");
    t.index_children();
    return t;
  }
};

}  // namespace

std::string TokenIndex::serialize() const {
  Writer w;
  w.pod(kFormatVersion);
  w.pod(int32_t(tokens_.size()));
  w.pod(vocab_size_);
  w.trie(trie_);
  w.pod(uint64_t(str_.entries.size()));
  for (const auto& e : str_.entries) {
    w.vec(e.inside);
    w.vec(e.exact_close);
    w.trie(e.suffixes.nodes.empty() ? Trie(std::vector<std::pair<std::string, int32_t>>{}) : e.suffixes);
    w.out.append(reinterpret_cast<const char*>(e.live), sizeof(e.live));
    w.pod(e.cost);
    w.pod(e.max_extra);
  }
  for (const auto& b : str_.start_inside_by_extra) w.vec(b);
  return w.out;
}

TokenIndex::TokenIndex(std::vector<std::string> tokens, std::vector<uint8_t> special, int32_t vocab_size,
                       std::vector<int32_t> stop_ids, bool add_prefix_space, const std::string& blob)
    : tokens_(std::move(tokens)),
      special_(std::move(special)),
      vocab_size_(vocab_size),
      stop_ids_(std::move(stop_ids)),
      add_prefix_space_(add_prefix_space) {
  init_common();
  Reader r{blob};
  if (r.pod<uint32_t>() != kFormatVersion) throw TokenizerError("token index cache: other format version");
  int32_t n = int32_t(tokens_.size());
  if (r.pod<int32_t>() != n || r.pod<int32_t>() != vocab_size_)
    throw TokenizerError("token index cache: built for another vocabulary");
  trie_ = r.trie(n);
  // The string lexer is rebuilt (it is fixed and cheap); its states must line up with the cache.
  std::vector<int32_t> states = lexer_states();
  uint64_t ne = r.pod<uint64_t>();
  if (ne != uint64_t(str_.lexer->num_states()) || ne > 4096)
    throw TokenizerError("token index cache: string lexer mismatch");
  int32_t W = words();
  str_.entries.resize(ne);
  for (auto& e : str_.entries) {
    e.inside = r.vec<uint32_t>(uint64_t(W));
    if (!e.inside.empty() && int32_t(e.inside.size()) != W) throw TokenizerError("token index cache: bad bitset");
    e.exact_close = r.vec<int32_t>(uint64_t(n));
    for (int32_t id : e.exact_close)
      if (id < 0 || id >= n) throw TokenizerError("token index cache: token id out of range");
    e.suffixes = r.trie(n);
    r.need(sizeof(e.live));
    std::memcpy(e.live, blob.data() + r.pos, sizeof(e.live));
    r.pos += sizeof(e.live);
    e.cost = r.pod<uint32_t>();
    e.max_extra = r.pod<int32_t>();
  }
  for (int32_t q : states)
    if (str_.entries[q].inside.empty()) throw TokenizerError("token index cache: string lexer mismatch");
  for (auto& b : str_.start_inside_by_extra) {
    b = r.vec<uint32_t>(uint64_t(W));
    if (int32_t(b.size()) != W) throw TokenizerError("token index cache: bad bitset");
  }
  if (r.pos != blob.size()) throw TokenizerError("token index cache: trailing bytes");
  build_openings();
  build_closers();
  build_digit_runs();
}

// The tokens that close the string from each lexer state, whole: for states whose closing depends on
// what came before (an open string such as "any key but these names"), a walk of these from the real
// state decides them.
void TokenIndex::build_closers() {
  for (auto& e : str_.entries) {
    std::vector<std::pair<std::string, int32_t>> entries;
    for (int32_t id : e.exact_close) entries.push_back({tokens_[id], id});
    for (int32_t id : e.suffixes.tok_ids) entries.push_back({tokens_[id], id});
    e.closers = Trie(std::move(entries));
  }
}

void TokenIndex::build_digit_runs() {
  digits_ = DigitRuns();
  digits_.all.assign(size_t(words()), 0);
  digits_.nonzero.assign(size_t(words()), 0);
  const auto& nodes = trie_.nodes;
  std::vector<std::pair<uint16_t, int32_t>> by_len[10];  // (digits, token)
  for (int k = 0; k < 10; ++k) {
    int32_t root = trie_.root_child[uint8_t('0' + k)];
    if (!root) continue;
    for (uint32_t i = uint32_t(root); i < nodes[root].end;) {
      if (nodes[i].byte < '0' || nodes[i].byte > '9') {
        digits_.frontier[k].push_back(i);  // its parent's path is all digits (else it was skipped)
        i = nodes[i].end;
        continue;
      }
      digits_.max_len = std::max<int32_t>(digits_.max_len, nodes[i].depth);
      for (uint32_t t = trie_.tok_off[i]; t < trie_.tok_off[i + 1]; ++t) {
        int32_t id = trie_.tok_ids[t];
        by_len[k].push_back({nodes[i].depth, id});
        digits_.all[size_t(id) >> 5] |= 1u << (id & 31);
        if (k) digits_.nonzero[size_t(id) >> 5] |= 1u << (id & 31);
      }
      ++i;
    }
  }
  for (int k = 0; k < 10; ++k) {
    std::stable_sort(by_len[k].begin(), by_len[k].end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    auto& off = digits_.len_off[k];
    off.assign(size_t(digits_.max_len) + 2, 0);
    for (const auto& [n, id] : by_len[k]) {
      digits_.tokens[k].push_back(id);
      ++off[size_t(n) + 1];
    }
    for (size_t n = 1; n < off.size(); ++n) off[n] += off[n - 1];
  }
}

// Build the canonical string automaton and list its inside states in a fixed order.
std::vector<int32_t> TokenIndex::lexer_states() {
  Limits lim;
  str_.lexer = std::make_unique<Automaton>(build_nfa(string_body_ir(), lim), lim);
  const Automaton& L = *str_.lexer;
  str_.start = L.start();
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
  str_.body_sets.clear();
  str_.body_size = 0;
  const Nfa& nfa = L.nfa();
  if (nfa.string_bodies.size() == 1) {
    int32_t base = nfa.string_bodies[0], n = nfa.string_body_size;
    bool ok = true;
    for (int32_t q : states) {
      std::vector<int32_t> set = StringLexemeIndex::core(nfa, L.state(q).nfa);
      if (set.empty() || set.front() < base || set.back() >= base + n) ok = false;
      if (!ok) break;
      StringLexemeIndex::BodySet bs;
      bs.hash = StringLexemeIndex::hash_rel(set.data(), set.size(), base);
      for (int32_t x : set) bs.rel.push_back(x - base);
      bs.state = q;
      str_.body_sets.push_back(std::move(bs));
    }
    if (ok) str_.body_size = n;
    else str_.body_sets.clear();
  }
  // The lazy DFA is not minimal (the boundary before the first character and after one are two states):
  // canon[q] = the smallest state with the same behaviour (Moore's partition refinement).
  const int32_t n = L.num_states();
  std::vector<int32_t> cls(size_t(n), 0);
  for (int32_t q = 1; q < n; ++q) cls[size_t(q)] = L.state(q).final ? 1 : 2;
  for (size_t classes = 0;;) {
    std::map<std::vector<int32_t>, int32_t> sig;
    std::vector<int32_t> next(size_t(n), 0);
    for (int32_t q = 1; q < n; ++q) {
      std::vector<int32_t> k{cls[size_t(q)]};
      for (int b = 0; b < 256; ++b) k.push_back(cls[size_t(L.step_byte(q, uint8_t(b)))]);
      next[size_t(q)] = sig.emplace(std::move(k), int32_t(sig.size()) + 1).first->second;
    }
    cls.swap(next);
    if (sig.size() == classes) break;
    classes = sig.size();
  }
  str_.canon.assign(size_t(n), 0);
  for (int32_t q = n - 1; q >= 1; --q)
    for (int32_t r = 1; r <= q; ++r)
      if (cls[size_t(r)] == cls[size_t(q)]) { str_.canon[size_t(q)] = r; break; }
  return states;
}

void TokenIndex::build_string_lexeme() {
  std::vector<int32_t> states = lexer_states();
  const Automaton& L = *str_.lexer;
  int32_t W = words();
  for (auto& b : str_.start_inside_by_extra) b.assign(W, 0);
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
      int32_t extra = classify_in_string(int32_t(i), 0, q, e, suffixes);
      if (extra >= 0 && q == str_.start) {
        extra = std::min(extra, StringLexemeIndex::kExtraBuckets - 1);
        str_.start_inside_by_extra[extra][i >> 5] |= 1u << (i & 31);
      }
    }
    e.suffixes = Trie(std::move(suffixes));
  }
  build_openings();
}

// Run token `id` from byte `from` through the string automaton from state `l`: record it in `e` as inside
// (returns the extra cost of its end state), exact close or closing-and-continuing (returns -1).
int32_t TokenIndex::classify_in_string(int32_t id, size_t from, int32_t l, StringLexemeIndex::Entry& e,
                                       std::vector<std::pair<std::string, int32_t>>& suffixes) const {
  const Automaton& L = *str_.lexer;
  const std::string& tok = tokens_[id];
  size_t p = from;
  for (; p < tok.size(); ++p) {
    l = L.step_byte(l, uint8_t(tok[p]));
    if (l == kDead || L.state(l).final) break;
  }
  if (l == kDead) return -1;
  if (L.state(l).final) {
    if (p + 1 == tok.size())
      e.exact_close.push_back(id);
    else
      suffixes.push_back({tok.substr(p + 1), id});
    return -1;
  }
  int32_t extra = std::max(0, int32_t(L.state(l).cost) - int32_t(e.cost));
  e.max_extra = std::max(e.max_extra, extra);
  e.inside[id >> 5] |= 1u << (id & 31);
  return extra;
}

// For the trie nodes '"' and ' "': classify the tokens below them by what their remaining bytes do
// from the string's start state.
void TokenIndex::build_openings() {
  const Automaton& L = *str_.lexer;
  int32_t W = words();
  const char* prefixes[2] = {"\"", " \""};
  for (int k = 0; k < 2; ++k) {
    auto& op = str_.openings[k];
    op = StringLexemeIndex::Opening();
    // Find the node.
    int32_t node = 0;
    const std::string pre = prefixes[k];
    for (size_t d = 0; d < pre.size(); ++d) {
      int32_t child = 0;
      if (d == 0) {
        child = trie_.root_child[uint8_t(pre[0])];
      } else {
        for (uint32_t c = uint32_t(node) + 1; c < trie_.nodes[node].end; c = trie_.nodes[c].end)
          if (trie_.nodes[c].byte == uint8_t(pre[d])) { child = int32_t(c); break; }
      }
      node = child;
      if (!node) break;
    }
    if (!node) continue;
    op.node = node;
    auto& e = op.entry;
    e.inside.assign(W, 0);
    e.cost = L.state(str_.start).cost;
    std::vector<std::pair<std::string, int32_t>> suffixes;
    for (uint32_t t = trie_.tok_off[node + 1]; t < trie_.tok_off[trie_.nodes[node].end]; ++t)
      classify_in_string(trie_.tok_ids[t], pre.size(), str_.start, e, suffixes);
    e.suffixes = Trie(std::move(suffixes));
  }
}

size_t TokenIndex::memory_bytes() const {
  size_t b = trie_.memory_bytes();
  for (const auto& e : str_.entries)
    b += e.suffixes.memory_bytes() + e.closers.memory_bytes() + e.inside.size() * 4 + e.exact_close.size() * 4;
  for (const auto& t : tokens_) b += t.size() + sizeof(std::string);
  b += special_.size() + stop_mask_.size();
  b += size_t(StringLexemeIndex::kExtraBuckets) * size_t(words()) * 4;
  b += (digits_.all.size() + digits_.nonzero.size()) * 4;
  for (int k = 0; k < 10; ++k)
    b += (digits_.tokens[k].size() + digits_.len_off[k].size() + digits_.frontier[k].size()) * 4;
  return b;
}

}  // namespace fcg
