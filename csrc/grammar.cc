// Lowering of the grammar IR to a byte-level NFA (Thompson construction with call edges).
#include "grammar.h"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <tuple>
#include <functional>
#include <unordered_map>

namespace fcg {
namespace {

using ByteRange = std::pair<uint8_t, uint8_t>;
using ByteSeq = std::vector<ByteRange>;  // one byte range per position

// Encode a code point as UTF-8 into out, return its length.
int encode_utf8(uint32_t c, uint8_t* out) {
  if (c < 0x80) { out[0] = uint8_t(c); return 1; }
  if (c < 0x800) { out[0] = uint8_t(0xC0 | (c >> 6)); out[1] = uint8_t(0x80 | (c & 0x3F)); return 2; }
  if (c < 0x10000) {
    out[0] = uint8_t(0xE0 | (c >> 12)); out[1] = uint8_t(0x80 | ((c >> 6) & 0x3F));
    out[2] = uint8_t(0x80 | (c & 0x3F)); return 3;
  }
  out[0] = uint8_t(0xF0 | (c >> 18)); out[1] = uint8_t(0x80 | ((c >> 12) & 0x3F));
  out[2] = uint8_t(0x80 | ((c >> 6) & 0x3F)); out[3] = uint8_t(0x80 | (c & 0x3F)); return 4;
}

int utf8_len(uint32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

// Split [lo, hi] (no surrogates) into sequences of byte ranges, each matching exactly a sub-range.
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<ByteSeq>& out) {
  if (lo > hi) return;
  // Split at encoding-length boundaries.
  static const uint32_t bounds[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t b : bounds) {
    if (lo <= b && hi > b) {
      utf8_sequences(lo, b, out);
      utf8_sequences(b + 1, hi, out);
      return;
    }
  }
  int n = utf8_len(lo);
  for (int i = 1; i < n; ++i) {
    uint32_t max = (1u << (6 * i)) - 1;
    if ((lo & ~max) != (hi & ~max)) {
      if ((lo & max) != 0) {
        utf8_sequences(lo, lo | max, out);
        utf8_sequences((lo | max) + 1, hi, out);
        return;
      }
      if ((hi & max) != max) {
        utf8_sequences(lo, (hi & ~max) - 1, out);
        utf8_sequences(hi & ~max, hi, out);
        return;
      }
    }
  }
  uint8_t a[4], b[4];
  encode_utf8(lo, a);
  encode_utf8(hi, b);
  ByteSeq seq;
  for (int i = 0; i < n; ++i) seq.push_back({a[i], b[i]});
  out.push_back(std::move(seq));
}

// Split [lo, hi] over fixed-width base-16 numbers into per-digit range sequences.
using DigitSeq = std::vector<std::pair<int, int>>;
void hex_sequences(uint32_t lo, uint32_t hi, int width, DigitSeq prefix, std::vector<DigitSeq>& out) {
  if (width == 0) { out.push_back(prefix); return; }
  uint32_t m = 1u << (4 * (width - 1));
  uint32_t lh = lo / m, hh = hi / m;
  if (lh == hh) {
    prefix.push_back({int(lh), int(lh)});
    hex_sequences(lo % m, hi % m, width - 1, prefix, out);
    return;
  }
  if (lo % m != 0) {
    DigitSeq p = prefix;
    p.push_back({int(lh), int(lh)});
    hex_sequences(lo % m, m - 1, width - 1, p, out);
    ++lh;
  }
  bool last_partial = hi % m != m - 1;
  if (last_partial) --hh;
  if (lh <= hh && (int32_t)hh >= 0) {
    DigitSeq p = prefix;
    p.push_back({int(lh), int(hh)});
    for (int i = 1; i < width; ++i) p.push_back({0, 15});
    out.push_back(p);
  }
  if (last_partial) {
    DigitSeq p = prefix;
    p.push_back({int(hi / m), int(hi / m)});
    hex_sequences(0, hi % m, width - 1, p, out);
  }
}

// The code points a JSON string may hold raw (not '"', '\\', control characters; surrogates have no UTF-8).
constexpr std::pair<uint32_t, uint32_t> kRawOk[] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}};

// The code points with a two-character JSON escape, and the escape's second character.
constexpr std::pair<uint32_t, char> kShortEscapes[] = {{0x22, '"'}, {0x5C, '\\'}, {0x2F, '/'}, {0x08, 'b'},
                                                       {0x0C, 'f'},  {0x0A, 'n'},  {0x0D, 'r'}, {0x09, 't'}};

uint32_t high_surrogate(uint32_t c) { return 0xD800 + ((c - 0x10000) >> 10); }
uint32_t low_surrogate(uint32_t c) { return 0xDC00 + ((c - 0x10000) & 0x3FF); }

// Every way a JSON string writes code point `c`, as codepoints_build accepts them: raw UTF-8 (not '"',
// '\\', control characters or surrogates), a short escape, \uXXXX in every hex case, or (`pairs`) a
// surrogate pair in every hex case.
void json_encodings(uint32_t c, bool pairs, std::vector<std::string>& out) {
  out.clear();
  for (auto [lo, hi] : kRawOk)
    if (lo <= c && c <= hi && !(c >= 0xD800 && c <= 0xDFFF)) {
      uint8_t b[4];
      out.emplace_back(reinterpret_cast<const char*>(b), size_t(encode_utf8(c, b)));
    }
  for (auto [sc, ch] : kShortEscapes)
    if (sc == c) out.push_back(std::string("\\") + ch);
  std::vector<std::string> acc{""}, next;
  auto hex4 = [&](uint32_t v) {
    for (std::string& p : acc) p += "\\u";
    for (int i = 3; i >= 0; --i) {
      const int d = int(v >> (4 * i)) & 15;
      next.clear();
      for (const std::string& p : acc) {
        if (d < 10) {
          next.push_back(p + char('0' + d));
        } else {
          next.push_back(p + char('a' + d - 10));
          next.push_back(p + char('A' + d - 10));
        }
      }
      acc.swap(next);
    }
  };
  if (c <= 0xFFFF) {
    hex4(c);
  } else if (pairs) {
    hex4(high_surrogate(c));
    hex4(low_surrogate(c));
  } else {
    return;
  }
  out.insert(out.end(), acc.begin(), acc.end());
}

struct Builder {
  const GrammarIR& ir;
  const Limits& limits;
  Nfa nfa;
  std::vector<int32_t> rule_call;  // IR rule -> call rule index, or -1 (inlined)
  std::vector<char> open_string;    // IR rule -> inlined copies are recorded in nfa.open_strings
  std::unordered_map<int32_t, int32_t> token_symbol;

  Builder(const GrammarIR& ir_, const Limits& lim) : ir(ir_), limits(lim) {}

  int32_t cur_rule = 0;

  // Adjacency while building, as flat (from, ...) lists; put in CSR form by finish().
  struct RawEdge {
    int32_t from;
    NfaEdge e;
  };
  std::vector<RawEdge> raw_edges;
  std::vector<std::pair<int32_t, int32_t>> raw_eps;
  std::vector<std::pair<int32_t, NfaCall>> raw_calls;

  [[noreturn]] void too_many_states() const {
    throw LimitError("grammar automaton exceeds " + std::to_string(limits.max_nfa_states) +
                     " states; a repetition bound (maxLength, maxItems, ...) or the number of "
                     "alternatives is too large");
  }
  int32_t new_state() {
    if ((int64_t)nfa.n_states >= limits.max_nfa_states) too_many_states();
    nfa.state_rule.push_back(cur_rule);
    return nfa.n_states++;
  }
  // k new states at once; returns the first.
  int32_t new_states(int32_t k) {
    const int32_t first = nfa.num_states();
    if (int64_t(first) + k > limits.max_nfa_states) too_many_states();
    nfa.state_rule.resize(size_t(first + k), cur_rule);
    nfa.n_states += k;
    return first;
  }
  void eps(int32_t a, int32_t b) { raw_eps.push_back({a, b}); }
  void edge(int32_t a, Symbol lo, Symbol hi, int32_t b) { raw_edges.push_back({a, {lo, hi, b}}); }
  void call(int32_t a, NfaCall c) { raw_calls.push_back({a, c}); }

  // Code point sets recur (every free string has the same one): their states and edges are built once
  // and copied, relative to (from, to), afterwards.
  struct Fragment {
    int32_t n_new = 0;
    std::vector<std::array<int32_t, 4>> edges;  // (from, lo, hi, to); -1 = from, -2 = to, k >= 0 = k-th new state
  };
  std::map<std::tuple<std::vector<std::pair<uint32_t, uint32_t>>, bool, bool>, Fragment> fragments;
  std::unordered_map<uint64_t, Fragment> single_fragments;  // sets of one range: (lo, hi, json, pairs)

  // (state, value) pairs -> CSR: values[off[s] .. off[s + 1]) are state s's, in input order.
  template <class Raw, class Val, class Get>
  static void to_csr(const std::vector<Raw>& raw, int32_t N, std::vector<int32_t>& off, std::vector<Val>& values,
                     Get get) {
    off.assign(size_t(N) + 1, 0);
    for (const auto& r : raw) ++off[size_t(get(r).first) + 1];
    for (int32_t i = 0; i < N; ++i) off[i + 1] += off[i];
    values.resize(raw.size());
    std::vector<int32_t> fill(off.begin(), off.end() - 1);
    for (const auto& r : raw) {
      auto sv = get(r);
      values[size_t(fill[sv.first]++)] = sv.second;
    }
  }

  void finish() {
    int32_t N = nfa.num_states();
    to_csr(raw_edges, N, nfa.edge_off, nfa.edges, [](const RawEdge& r) { return std::make_pair(r.from, r.e); });
    to_csr(raw_eps, N, nfa.eps_off, nfa.eps, [](const std::pair<int32_t, int32_t>& r) { return r; });
    // Most grammars call nothing: no per-state call offsets then (Nfa::calls_of).
    if (!raw_calls.empty())
      to_csr(raw_calls, N, nfa.call_off, nfa.calls, [](const std::pair<int32_t, NfaCall>& r) { return r; });
    std::vector<RawEdge>().swap(raw_edges);
    std::vector<std::pair<int32_t, int32_t>>().swap(raw_eps);
    std::vector<std::pair<int32_t, NfaCall>>().swap(raw_calls);
    if (nfa.call_start.size() <= 1) std::vector<int32_t>().swap(nfa.state_rule);  // every state is rule 0's
  }

  void byte_seqs(int32_t from, int32_t to, const std::vector<ByteSeq>& seqs) {
    for (const auto& s : seqs) {
      int32_t cur = from;
      for (size_t i = 0; i < s.size(); ++i) {
        int32_t nxt = (i + 1 == s.size()) ? to : new_state();
        edge(cur, s[i].first, s[i].second, nxt);
        cur = nxt;
      }
    }
  }

  void hex_digit_edge(int32_t a, int lo, int hi, int32_t b) {
    if (lo <= 9) edge(a, '0' + lo, '0' + std::min(hi, 9), b);
    if (hi >= 10) {
      int l = std::max(lo, 10);
      edge(a, 'a' + (l - 10), 'a' + (hi - 10), b);
      edge(a, 'A' + (l - 10), 'A' + (hi - 10), b);
    }
  }

  // from --(4 hex digits in [lo, hi], any case)--> to
  void hex4(int32_t from, uint32_t lo, uint32_t hi, int32_t to) {
    std::vector<DigitSeq> seqs;
    hex_sequences(lo, hi, 4, {}, seqs);
    for (const auto& s : seqs) {
      int32_t cur = from;
      for (size_t i = 0; i < s.size(); ++i) {
        int32_t nxt = (i + 1 == s.size()) ? to : new_state();
        hex_digit_edge(cur, s[i].first, s[i].second, nxt);
        cur = nxt;
      }
    }
  }

  // from --"\uXXXX" for a high surrogate in [hlo,hhi] then "\uXXXX" low in [llo,lhi]--> to
  void surrogate_pair(int32_t from, uint32_t hlo, uint32_t hhi, uint32_t llo, uint32_t lhi, int32_t to) {
    int32_t a = new_state(), b = new_state(), c = new_state(), d = new_state();
    edge(from, 'u', 'u', a);
    hex4(a, hlo, hhi, b);
    edge(b, '\\', '\\', c);
    edge(c, 'u', 'u', d);
    hex4(d, llo, lhi, to);
  }

  // `pairs`: emit surrogate-pair escapes for non-BMP code points. They can be left out where the set
  // accepts every lone surrogate escape and the position is inside an unbounded repetition: there a pair
  // is just two lone escapes, and nothing counts characters.
  void codepoints(int32_t from, int32_t to, const std::vector<std::pair<uint32_t, uint32_t>>& ranges, bool json,
                  bool pairs = true) {
    // One range (every character of a literal key is one code point) is looked up by a number.
    const bool one = ranges.size() == 1;
    const uint64_t key1 = one ? (uint64_t(ranges[0].first) << 23 | uint64_t(ranges[0].second) << 2 |
                                 uint64_t(json) << 1 | uint64_t(pairs))
                              : 0;
    const Fragment* hit = nullptr;
    if (one) {
      auto it = single_fragments.find(key1);
      if (it != single_fragments.end()) hit = &it->second;
    } else {
      auto it = fragments.find(std::make_tuple(ranges, json, pairs));
      if (it != fragments.end()) hit = &it->second;
    }
    auto emit = [&](const Fragment& f) {
      const int32_t base = new_states(f.n_new);
      auto at = [&](int32_t r) { return r == -1 ? from : r == -2 ? to : base + r; };
      for (const auto& e : f.edges) edge(at(e[0]), e[1], e[2], at(e[3]));
    };
    if (hit) {
      emit(*hit);
      return;
    }
    // A JSON-encoded set wider than one code point: the minimal DFA (one range's \u escapes and surrogate
    // pairs are otherwise spelled once per range and hex case: 73 states for "any code point but a lone
    // surrogate", 20 minimal). Every unrolled repetition (maxLength) pays the fragment once per position.
    if (json && !(one && ranges[0].first == ranges[0].second) && prefix_free(ranges, pairs)) {
      const CpForms& c = cp_forms(ranges, pairs);
      if (c.minimal) {
        emit(c.fragment);
        if (one) {
          if (single_fragments.size() < 65536) single_fragments.emplace(key1, c.fragment);
        } else if (fragments.size() < 4096) {
          fragments.emplace(std::make_tuple(ranges, json, pairs), c.fragment);
        }
        return;
      }
    }
    int32_t n0 = nfa.num_states();
    size_t e0 = raw_edges.size(), p0 = raw_eps.size(), c0 = raw_calls.size();
    codepoints_build(from, to, ranges, json, pairs);
    if (raw_eps.size() != p0 || raw_calls.size() != c0) return;  // (never: code points are byte edges only)
    Fragment f;
    f.n_new = nfa.num_states() - n0;
    auto rel = [&](int32_t s) { return s == from ? -1 : s == to ? -2 : s - n0; };
    for (size_t i = e0; i < raw_edges.size(); ++i) {
      const RawEdge& r = raw_edges[i];
      f.edges.push_back({rel(r.from), r.e.lo, r.e.hi, rel(r.e.to)});
    }
    if (one) {
      if (single_fragments.size() < 65536) single_fragments.emplace(key1, std::move(f));
    } else if (fragments.size() < 4096) {
      fragments.emplace(std::make_tuple(ranges, json, pairs), std::move(f));
    }
  }

  void codepoints_build(int32_t from, int32_t to, const std::vector<std::pair<uint32_t, uint32_t>>& ranges, bool json,
                        bool pairs) {
    std::vector<ByteSeq> seqs;
    auto raw = [&](uint32_t lo, uint32_t hi) {
      // UTF-8 cannot encode surrogates.
      if (lo <= 0xD7FF) utf8_sequences(lo, std::min<uint32_t>(hi, 0xD7FF), seqs);
      if (hi >= 0xE000) utf8_sequences(std::max<uint32_t>(lo, 0xE000), hi, seqs);
    };
    if (!json) {
      for (auto [lo, hi] : ranges) raw(lo, hi);
      byte_seqs(from, to, seqs);
      return;
    }
    // Raw form: everything but '"', '\\' and control characters.
    for (auto [lo, hi] : ranges)
      for (auto [ol, oh] : kRawOk) {
        uint32_t l = std::max(lo, ol), h = std::min(hi, oh);
        if (l <= h) raw(l, h);
      }
    byte_seqs(from, to, seqs);
    // Escaped forms.
    auto contains = [&](uint32_t c) {
      for (auto [lo, hi] : ranges)
        if (lo <= c && c <= hi) return true;
      return false;
    };
    int32_t bs = -1;
    auto backslash = [&]() {
      if (bs < 0) {
        bs = new_state();
        edge(from, '\\', '\\', bs);
      }
      return bs;
    };
    for (auto [c, ch] : kShortEscapes)
      if (contains(c)) edge(backslash(), ch, ch, to);
    for (auto [lo, hi] : ranges) {
      if (lo <= 0xFFFF) {
        int32_t u = new_state();
        edge(backslash(), 'u', 'u', u);
        hex4(u, lo, std::min<uint32_t>(hi, 0xFFFF), to);
      }
      if (hi >= 0x10000 && pairs) {
        uint32_t a = std::max<uint32_t>(lo, 0x10000), b = hi;
        auto H = high_surrogate;
        auto L = low_surrogate;
        uint32_t ha = H(a), hb = H(b);
        if (ha == hb) {
          surrogate_pair(backslash(), ha, ha, L(a), L(b), to);
        } else {
          surrogate_pair(backslash(), ha, ha, L(a), 0xDFFF, to);
          if (hb - ha > 1) surrogate_pair(backslash(), ha + 1, hb - 1, 0xDC00, 0xDFFF, to);
          surrogate_pair(backslash(), hb, hb, 0xDC00, L(b), to);
        }
      }
    }
  }

  static bool covers_surrogates(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
    for (auto [lo, hi] : ranges)
      if (lo <= 0xD800 && hi >= 0xDFFF) return true;
    return false;
  }

  static bool has_surrogates(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
    for (auto [lo, hi] : ranges)
      if (lo <= 0xDFFF && hi >= 0xD800) return true;
    return false;
  }

  // (one code point of `ranges`, JSON-encoded)* from `cur`; returns the end. Where the set holds every
  // surrogate, surrogate pairs are left out (two lone escapes spell them). The unconstrained body (every
  // code point) is recorded in nfa.string_bodies.
  int32_t json_star(int32_t cur, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
    const int32_t loop = new_state();
    eps(cur, loop);
    const int32_t end = new_state();
    const bool lone = covers_surrogates(ranges);
    codepoints(loop, end, ranges, true, /*pairs=*/!lone);
    eps(end, loop);
    const int32_t out = new_state();
    eps(loop, out);
    if (lone && ranges.size() == 1 && ranges[0].first == 0 && ranges[0].second == 0x10FFFF) {
      const int32_t size = out - loop + 1;
      if (nfa.string_body_size == 0) nfa.string_body_size = size;
      if (size == nfa.string_body_size) nfa.string_bodies.push_back(loop);
    }
    return out;
  }

  // One JSON-encoded code point of a set, as a DFA over bytes (subset construction of the fragment
  // codepoints_build makes; state 0 is the start). Its language is prefix-free (one code point per word),
  // so a final state has no moves.
  struct CpDfa {
    struct Move {
      int32_t lo, hi, to;
    };
    std::vector<std::vector<Move>> moves;  // per state, sorted by byte, disjoint
    std::vector<char> final;
    int32_t step(int32_t a, int32_t b) const {
      for (const Move& m : moves[size_t(a)])
        if (m.lo <= b && b <= m.hi) return m.to;
      return -1;
    }
  };
  // A code point set's DFA and, where it has one, its minimal fragment: they depend on (ranges, pairs)
  // alone, so cp_forms keeps them once per process.
  struct CpForms {
    CpDfa dfa;
    bool minimal = false;  // `fragment` holds the minimal DFA as a Fragment
    Fragment fragment;
  };
  using CpKey = std::pair<std::vector<std::pair<uint32_t, uint32_t>>, bool>;
  std::map<CpKey, CpForms> cp_local;  // where the process-wide table is full
  std::unordered_map<uint64_t, std::vector<std::string>> encodings_;  // (pairs, code point) -> json_encodings

  const std::vector<std::string>& encodings(uint32_t c, bool pairs) {
    auto [it, fresh] = encodings_.try_emplace((uint64_t(pairs) << 32) | c);
    if (fresh) json_encodings(c, pairs, it->second);
    return it->second;
  }

  // Whether one JSON-encoded code point of the set is a prefix-free language, as CpDfa needs: where the set
  // has a lone high surrogate and pairs, the lone escape is a prefix of a pair's.
  static bool prefix_free(const std::vector<std::pair<uint32_t, uint32_t>>& ranges, bool pairs) {
    bool high = false, astral = false;
    for (auto [lo, hi] : ranges) {
      high = high || (lo <= 0xDBFF && hi >= 0xD800);
      astral = astral || hi >= 0x10000;
    }
    return !(pairs && high && astral);
  }

  // The forms of a prefix-free set (prefix_free), built once per process: the subset construction over
  // 256 bytes costs about twice what compiling a small schema does. At most 4096 sets are kept for the
  // process (entries are never erased, so references stay valid); past that, for this builder only.
  const CpForms& cp_forms(const std::vector<std::pair<uint32_t, uint32_t>>& ranges, bool pairs) {
    static std::mutex mu;
    static std::map<CpKey, CpForms> made;
    CpKey key(ranges, pairs);
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = made.find(key);
      if (it != made.end()) return it->second;
    }
    auto local = cp_local.find(key);
    if (local != cp_local.end()) return local->second;
    CpForms c;
    c.dfa = build_cp_dfa(ranges, pairs);
    c.minimal = minimal_fragment(c.dfa, c.fragment);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (made.size() < 4096) return made.emplace(key, std::move(c)).first->second;  // or another thread's
    }
    return cp_local.emplace(std::move(key), std::move(c)).first->second;
  }

  CpDfa build_cp_dfa(const std::vector<std::pair<uint32_t, uint32_t>>& ranges, bool pairs) {
    Builder tb(ir, limits);
    const int32_t s0 = tb.new_state(), s1 = tb.new_state();
    tb.codepoints_build(s0, s1, ranges, true, pairs);
    std::vector<std::vector<NfaEdge>> out(size_t(tb.nfa.num_states()));
    for (const RawEdge& r : tb.raw_edges) out[size_t(r.from)].push_back(r.e);
    CpDfa A;
    std::map<std::vector<int32_t>, int32_t> ids;
    std::vector<std::vector<int32_t>> sets;
    auto id_of = [&](std::vector<int32_t> set) {
      std::sort(set.begin(), set.end());
      set.erase(std::unique(set.begin(), set.end()), set.end());
      auto [p, fresh] = ids.emplace(set, int32_t(sets.size()));
      if (fresh) {
        A.final.push_back(std::binary_search(set.begin(), set.end(), s1));
        A.moves.emplace_back();
        sets.push_back(std::move(set));
      }
      return p->second;
    };
    id_of({s0});
    std::vector<int32_t> to_set;
    for (size_t a = 0; a < sets.size(); ++a) {
      const std::vector<int32_t> cur = sets[a];
      int32_t prev = -1, lo = 0;
      for (int32_t b = 0; b <= 256; ++b) {
        int32_t to = -1;
        if (b < 256) {
          to_set.clear();
          for (int32_t s : cur)
            for (const NfaEdge& e : out[size_t(s)])
              if (e.lo <= b && b <= e.hi) to_set.push_back(e.to);
          if (!to_set.empty()) to = id_of(to_set);
        }
        if (to != prev) {
          if (prev >= 0) A.moves[a].push_back({lo, b - 1, prev});
          prev = to;
          lo = b;
        }
      }
      if (A.final[a] && !A.moves[a].empty()) throw GrammarError("internal error: a code point is a prefix of another");
    }
    return A;
  }

  // A minimized (Moore's partition refinement) as a Fragment: the start state is `from`, the final states
  // (no moves: the language is prefix-free) are `to`. False where a state besides the start falls in the
  // start's class (it cannot, for a finite language; checked, not assumed).
  static bool minimal_fragment(const CpDfa& A, Fragment& f) {
    const size_t n = A.moves.size();
    using Sig = std::vector<std::array<int32_t, 3>>;  // moves (lo, hi, class), adjacent ones of a class merged
    auto signature = [&](size_t a, const std::vector<int32_t>& cls) {
      Sig sig;
      for (const CpDfa::Move& mv : A.moves[a]) {
        const int32_t c = cls[size_t(mv.to)];
        if (!sig.empty() && sig.back()[2] == c && sig.back()[1] + 1 == mv.lo)
          sig.back()[1] = mv.hi;
        else
          sig.push_back({mv.lo, mv.hi, c});
      }
      return sig;
    };
    std::vector<int32_t> cls(n);
    size_t ncls = 0;
    {
      bool seen[2] = {false, false};
      for (size_t a = 0; a < n; ++a) {
        cls[a] = A.final[a] ? 1 : 0;
        seen[cls[a]] = true;
      }
      ncls = size_t(seen[0]) + size_t(seen[1]);
    }
    for (;;) {
      std::map<std::pair<int32_t, Sig>, int32_t> ids;
      std::vector<int32_t> next(n);
      for (size_t a = 0; a < n; ++a)
        next[a] = ids.emplace(std::make_pair(cls[a], signature(a, cls)), int32_t(ids.size())).first->second;
      cls.swap(next);
      const bool stable = ids.size() == ncls;  // refinement only splits: no new class means no change
      ncls = ids.size();
      if (stable) break;
    }
    std::vector<int32_t> rel(ncls, INT32_MIN), rep(ncls, -1);
    rel[size_t(cls[0])] = -1;
    int32_t k = 0;
    for (size_t a = 0; a < n; ++a) {
      const size_t c = size_t(cls[a]);
      if (a > 0 && c == size_t(cls[0])) return false;
      if (rel[c] == INT32_MIN) rel[c] = A.final[a] ? -2 : k++;
      if (rep[c] < 0) rep[c] = int32_t(a);
    }
    f.n_new = k;
    f.edges.clear();
    for (size_t c = 0; c < ncls; ++c) {
      if (rel[c] == -2) continue;  // final: no moves
      for (const auto& m : signature(size_t(rep[c]), cls)) f.edges.push_back({rel[c], m[0], m[1], rel[size_t(m[2])]});
    }
    return true;
  }

  // The names of an Op::Excl as a trie over their characters (code points or bytes).
  struct NameTrie {
    struct Node {
      std::vector<std::pair<uint32_t, int32_t>> kids;  // character -> node
      bool word = false;                               // a name ends here
    };
    std::vector<Node> nodes{Node{}};
    void insert(const std::vector<uint32_t>& w) {
      int32_t n = 0;
      for (uint32_t c : w) {
        auto& ks = nodes[size_t(n)].kids;
        auto it = std::find_if(ks.begin(), ks.end(), [&](const auto& k) { return k.first == c; });
        if (it != ks.end()) {
          n = it->second;
        } else {
          const int32_t m = int32_t(nodes.size());
          ks.push_back({c, m});
          nodes.emplace_back();
          n = m;
        }
      }
      nodes[size_t(n)].word = true;
    }
  };

  // Op::Excl without json: an ASCII identifier that is none of the words. One state per trie node; a
  // byte that leaves the names goes to one state that reads the rest of the identifier.
  int32_t build_excl_identifier(const Expr& e, int32_t from) {
    static const std::pair<int32_t, int32_t> kStart[] = {{'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    static const std::pair<int32_t, int32_t> kCont[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    auto in = [](const auto& ranges, uint32_t c) {
      for (auto [lo, hi] : ranges)
        if (lo <= int32_t(c) && int32_t(c) <= hi) return true;
      return false;
    };
    auto ident = [&](uint32_t c, bool first) { return first ? in(kStart, c) : in(kCont, c); };
    NameTrie names;
    for (const auto& w : e.words) {
      bool ok = !w.empty();
      for (size_t i = 0; ok && i < w.size(); ++i) ok = ident(w[i], i == 0);
      if (ok) names.insert(w);  // (others are never written: nothing to exclude)
    }
    const auto& trie = names.nodes;
    const int32_t X = new_state();  // end of the identifier
    const int32_t D = new_state();  // left every name: any identifier characters follow
    for (auto [lo, hi] : kCont) edge(D, lo, hi, D);
    eps(D, X);
    std::vector<int32_t> S(trie.size(), from);
    for (size_t n = 1; n < trie.size(); ++n) S[n] = new_state();
    for (size_t n = 0; n < trie.size(); ++n) {
      if (n != 0 && !trie[n].word) eps(S[n], X);
      auto kids = trie[n].kids;
      std::sort(kids.begin(), kids.end());
      size_t k = 0;
      auto emit = [&](int32_t lo, int32_t hi) {
        for (; k < kids.size() && int32_t(kids[k].first) <= hi; ++k) {
          const int32_t b = int32_t(kids[k].first);
          if (b > lo) edge(S[n], lo, b - 1, D);
          edge(S[n], b, b, S[size_t(kids[k].second)]);
          lo = b + 1;
        }
        if (lo <= hi) edge(S[n], lo, hi, D);
      };
      if (n == 0) {
        for (auto [lo, hi] : kStart) emit(lo, hi);
      } else {
        for (auto [lo, hi] : kCont) emit(lo, hi);
      }
    }
    return X;
  }

  // Op::Excl: a trie over the names' code points with one state per trie node, and at each node a small
  // DFA reading one JSON-encoded code point: the encodings of the node's children lead to their states
  // (their shared prefixes, such as "\u00", are shared states), every other code point leaves through
  // states shared by the whole key ("deviated": any body follows). Keys that stop at a node that is no
  // name end there. Per name character this is about six states; the same language as a regular
  // expression (names' prefixes | deviations, then any body) takes about thirty.
  int32_t build_excl(const Expr& e, int32_t from) {
    if (!e.json) return build_excl_identifier(e, from);
    const auto& u = e.ranges;
    const bool lone = has_surrogates(u);
    if (lone && !covers_surrogates(u))
      throw GrammarError("key exclusion: its code points must hold every surrogate or none");
    const bool pairs = !lone;
    const CpDfa& A = cp_forms(u, pairs).dfa;  // prefix-free: pairs only where the set has no surrogate
    auto in_u = [&](uint32_t c) {
      for (auto [lo, hi] : u)
        if (lo <= c && c <= hi) return true;
      return false;
    };
    NameTrie names;
    for (const auto& w : e.words) {
      if (!std::all_of(w.begin(), w.end(), in_u)) continue;  // never written: nothing to exclude
      if (!pairs && std::any_of(w.begin(), w.end(), [](uint32_t c) { return c > 0xFFFF; }))
        throw GrammarError("key exclusion: a name outside the BMP needs code points without surrogates");
      names.insert(w);
    }
    const auto& trie = names.nodes;
    const int32_t X = new_state();  // end of the body
    const int32_t D = new_state();  // deviated: any body follows
    eps(json_star(D, u), X);
    std::vector<int32_t> dev(A.moves.size(), -1);
    for (size_t a = 0; a < A.final.size(); ++a)
      if (A.final[a]) dev[a] = D;
    std::function<int32_t(int32_t)> deviated = [&](int32_t a) -> int32_t {
      if (dev[size_t(a)] < 0) {  // (final states are D already)
        dev[size_t(a)] = new_state();
        for (const auto& m : A.moves[size_t(a)]) edge(dev[size_t(a)], m.lo, m.hi, deviated(m.to));
      }
      return dev[size_t(a)];
    };
    auto leave = [&](int32_t a) { return dev[size_t(a)] >= 0 ? dev[size_t(a)] : deviated(a); };
    // The moves of a decoder state that hold no child's byte all leave; positions with the same state
    // and the same such moves share one state holding them (an epsilon move instead of ~10 edges each).
    std::map<std::pair<int32_t, uint64_t>, int32_t> hubs;
    auto hub_of = [&](int32_t a, uint64_t touched) {
      auto [it, fresh] = hubs.emplace(std::make_pair(a, touched), 0);
      if (fresh) {
        it->second = new_state();
        const auto& mv = A.moves[size_t(a)];
        for (size_t i = 0; i < mv.size(); ++i)
          if (!((touched >> i) & 1)) edge(it->second, mv[i].lo, mv[i].hi, leave(mv[i].to));
      }
      return it->second;
    };
    std::vector<int32_t> S(trie.size(), from);
    for (size_t n = 1; n < trie.size(); ++n) S[n] = new_state();
    struct Pos {
      int32_t state, a;
      std::vector<std::pair<int32_t, int32_t>> next;  // byte -> position, or ~state of a child
    };
    std::vector<Pos> pos;
    for (size_t n = 0; n < trie.size(); ++n) {
      if (!trie[n].word) eps(S[n], X);
      pos.clear();
      pos.push_back({S[n], 0, {}});
      for (auto [c, kid] : trie[n].kids) {
        for (const std::string& w : encodings(c, pairs)) {
          int32_t p = 0;
          for (size_t i = 0; i < w.size(); ++i) {
            const int32_t b = static_cast<unsigned char>(w[i]);
            const int32_t a = A.step(pos[size_t(p)].a, b);
            const bool last = i + 1 == w.size();
            if (a < 0 || bool(A.final[size_t(a)]) != last)
              throw GrammarError("internal error: key exclusion encoding of U+" + std::to_string(c));
            auto& nx = pos[size_t(p)].next;
            auto it = std::find_if(nx.begin(), nx.end(), [&](const auto& x) { return x.first == b; });
            if (last) {
              if (it == nx.end()) nx.push_back({b, ~S[size_t(kid)]});
            } else if (it != nx.end()) {
              p = it->second;
            } else {
              const int32_t q = int32_t(pos.size());
              nx.push_back({b, q});
              pos.push_back({new_state(), a, {}});
              p = q;
            }
          }
        }
      }
      for (Pos& p : pos) {
        std::sort(p.next.begin(), p.next.end());
        const auto& mv = A.moves[size_t(p.a)];
        uint64_t touched = 0;  // moves that hold a child's byte
        size_t k = 0;
        for (size_t i = 0; i < mv.size() && i < 64; ++i) {
          while (k < p.next.size() && p.next[k].first < mv[i].lo) ++k;
          if (k < p.next.size() && p.next[k].first <= mv[i].hi) touched |= uint64_t(1) << i;
        }
        const bool hub = mv.size() <= 64 && mv.size() - size_t(__builtin_popcountll(touched)) >= 2;
        if (hub) eps(p.state, hub_of(p.a, touched));
        k = 0;
        for (size_t i = 0; i < mv.size(); ++i) {
          const auto& m = mv[i];
          if (hub && !((touched >> i) & 1)) continue;  // no child byte in it: the hub has it
          int32_t lo = m.lo;
          for (; k < p.next.size() && p.next[k].first <= m.hi; ++k) {
            const int32_t b = p.next[k].first, t = p.next[k].second;
            if (b > lo) edge(p.state, lo, b - 1, leave(m.to));
            edge(p.state, b, b, t < 0 ? ~t : pos[size_t(t)].state);
            lo = b + 1;
          }
          if (lo <= m.hi) edge(p.state, lo, m.hi, leave(m.to));
        }
      }
    }
    return X;
  }

  // Build node `n` starting at `from`; return the end state.
  int32_t build(int32_t n, int32_t from, int depth = 0) {
    if (depth > 10000) throw GrammarError("grammar nesting too deep");
    const Expr& e = ir.nodes.at(n);
    switch (e.op) {
      case Op::Lit: {
        int32_t cur = from;
        for (unsigned char c : e.bytes) {
          int32_t nxt = new_state();
          edge(cur, c, c, nxt);
          cur = nxt;
        }
        return cur;
      }
      case Op::Byte: {
        int32_t to = new_state();
        for (auto [lo, hi] : e.ranges) edge(from, Symbol(lo), Symbol(hi), to);
        return to;
      }
      case Op::Cp: {
        int32_t to = new_state();
        codepoints(from, to, e.ranges, e.json);
        return to;
      }
      case Op::Seq: {
        int32_t cur = from;
        for (int32_t k : e.kids) cur = build(k, cur, depth + 1);
        return cur;
      }
      case Op::Alt: {
        int32_t to = new_state();
        for (int32_t k : e.kids) {
          int32_t s = new_state();
          eps(from, s);
          eps(build(k, s, depth + 1), to);
        }
        return to;  // no kids: unreachable end = empty language
      }
      case Op::Rep: {
        int32_t cur = from;
        for (int32_t i = 0; i < e.lo; ++i) cur = build(e.kids[0], cur, depth + 1);
        if (e.hi < 0) {
          const Expr& kid = ir.nodes.at(e.kids[0]);
          if (kid.op == Op::Cp && kid.json) return json_star(cur, kid.ranges);
          int32_t loop = new_state();
          eps(cur, loop);
          eps(build(e.kids[0], loop, depth + 1), loop);
          int32_t out = new_state();
          eps(loop, out);
          return out;
        }
        int32_t end = new_state();
        for (int32_t i = e.lo; i < e.hi; ++i) {
          eps(cur, end);
          cur = build(e.kids[0], cur, depth + 1);
        }
        eps(cur, end);
        return end;
      }
      case Op::Ref: {
        if (e.ref < 0 || e.ref >= (int32_t)ir.rules.size())
          throw GrammarError("reference to undefined rule #" + std::to_string(e.ref));
        int32_t c = rule_call[e.ref];
        if (c >= 0) {
          int32_t ret = new_state();
          call(from, {c, ret});
          return ret;
        }
        if (open_string[size_t(e.ref)]) {
          const int32_t lo = nfa.num_states();
          const int32_t end = build(ir.rules[e.ref], from, depth + 1);
          nfa.open_strings.push_back({from, lo, nfa.num_states()});
          return end;
        }
        return build(ir.rules[e.ref], from, depth + 1);
      }
      case Op::Excl:
        return build_excl(e, from);
      case Op::Tok: {
        auto it = token_symbol.find(e.ref);
        Symbol sym;
        if (it == token_symbol.end()) {
          sym = kNumBytes + Symbol(nfa.special_tokens.size());
          nfa.special_tokens.push_back(e.ref);
          token_symbol.emplace(e.ref, sym);
        } else {
          sym = it->second;
        }
        int32_t to = new_state();
        edge(from, sym, sym, to);
        return to;
      }
    }
    throw GrammarError("unknown grammar node");
  }

  void collect_refs(int32_t n, std::vector<char>& seen, std::vector<int32_t>& out) {
    if (seen[n]) return;
    seen[n] = 1;
    const Expr& e = ir.nodes[n];
    if (e.op == Op::Ref) {
      if (e.ref < 0 || e.ref >= (int32_t)ir.rules.size())
        throw GrammarError("reference to undefined rule #" + std::to_string(e.ref));
      out.push_back(e.ref);
    }
    for (int32_t k : e.kids) collect_refs(k, seen, out);
  }

  // Mark rules that lie on a reference cycle (Tarjan's SCC).
  std::vector<char> recursive_rules() {
    size_t R = ir.rules.size();
    std::vector<std::vector<int32_t>> adj(R);
    for (size_t r = 0; r < R; ++r) {
      std::vector<char> seen(ir.nodes.size(), 0);
      collect_refs(ir.rules[r], seen, adj[r]);
    }
    std::vector<int32_t> index(R, -1), low(R, 0), stack;
    std::vector<char> on(R, 0), rec(R, 0);
    int32_t counter = 0;
    std::function<void(int32_t)> strong = [&](int32_t v) {
      index[v] = low[v] = counter++;
      stack.push_back(v);
      on[v] = 1;
      for (int32_t w : adj[v]) {
        if (index[w] < 0) {
          strong(w);
          low[v] = std::min(low[v], low[w]);
        } else if (on[w]) {
          low[v] = std::min(low[v], index[w]);
        }
      }
      if (low[v] == index[v]) {
        std::vector<int32_t> comp;
        int32_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on[w] = 0;
          comp.push_back(w);
        } while (w != v);
        bool self = std::find(adj[v].begin(), adj[v].end(), v) != adj[v].end();
        if (comp.size() > 1 || self)
          for (int32_t x : comp) rec[x] = 1;
      }
    };
    for (size_t r = 0; r < R; ++r)
      if (index[r] < 0) strong(int32_t(r));
    return rec;
  }

  void check_left_recursion() {
    size_t C = nfa.call_start.size();
    // nullable[c]: callee c can return without reading a symbol.
    std::vector<char> nullable(C, 0);
    auto reach_no_input = [&](int32_t start, std::vector<int32_t>* entered) {
      std::vector<int32_t> todo{start};
      std::vector<char> seen(size_t(nfa.num_states()), 0);
      seen[start] = 1;
      bool final_reached = false;
      while (!todo.empty()) {
        int32_t s = todo.back();
        todo.pop_back();
        if (nfa.is_final(s)) final_reached = true;
        auto visit = [&](int32_t t) {
          if (!seen[t]) { seen[t] = 1; todo.push_back(t); }
        };
        for (int32_t t : nfa.eps_of(s)) visit(t);
        for (const auto& c : nfa.calls_of(s)) {
          if (entered) entered->push_back(c.rule);
          if (nullable[c.rule]) visit(c.ret);
        }
      }
      return final_reached;
    };
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t c = 0; c < C; ++c)
        if (!nullable[c] && reach_no_input(nfa.call_start[c], nullptr)) nullable[c] = changed = true;
    }
    std::vector<std::vector<int32_t>> enters(C);
    for (size_t c = 0; c < C; ++c) reach_no_input(nfa.call_start[c], &enters[c]);
    // A cycle in "enters without input" is left recursion.
    std::vector<int8_t> color(C, 0);
    std::function<void(int32_t)> dfs = [&](int32_t v) {
      color[v] = 1;
      for (int32_t w : enters[v]) {
        if (color[w] == 1)
          throw GrammarError("left recursion through rule '" + nfa.call_names[w] +
                             "': it can reach itself without consuming input");
        if (color[w] == 0) dfs(w);
      }
      color[v] = 2;
    };
    for (size_t c = 0; c < C; ++c)
      if (color[c] == 0) dfs(int32_t(c));
  }

  Nfa run() {
    if (ir.rules.empty()) throw GrammarError("grammar has no rules");
    std::vector<char> rec = recursive_rules();
    for (int32_t c : ir.calls) rec.at(size_t(c)) = 1;
    rule_call.assign(ir.rules.size(), -1);
    open_string.assign(ir.rules.size(), 0);
    for (int32_t r : ir.open_strings)
      if (r >= 0 && r < int32_t(ir.rules.size()) && !rec[size_t(r)]) open_string[size_t(r)] = 1;
    // Call rule 0 is the top level; it inlines rule 0 unless rule 0 itself is recursive.
    nfa.call_names.push_back("<top>");
    for (size_t r = 0; r < ir.rules.size(); ++r)
      if (rec[r]) {
        rule_call[r] = int32_t(nfa.call_names.size());
        nfa.call_names.push_back(r < ir.names.size() ? ir.names[r] : "rule" + std::to_string(r));
      }
    size_t C = nfa.call_names.size();
    nfa.call_start.assign(C, -1);
    nfa.call_final.assign(C, -1);
    for (size_t c = 0; c < C; ++c) {
      cur_rule = int32_t(c);
      nfa.call_start[c] = new_state();
    }
    // Top level.
    cur_rule = 0;
    {
      int32_t end;
      if (rule_call[0] >= 0) {
        end = new_state();
        call(nfa.call_start[0], {rule_call[0], end});
      } else {
        end = build(ir.rules[0], nfa.call_start[0]);
      }
      nfa.call_final[0] = end;
    }
    for (size_t r = 0; r < ir.rules.size(); ++r) {
      int32_t c = rule_call[r];
      if (c < 0) continue;
      cur_rule = c;
      nfa.call_final[c] = build(ir.rules[r], nfa.call_start[c]);
    }
    finish();
    check_left_recursion();
    return std::move(nfa);
  }
};

}  // namespace

Nfa build_nfa(const GrammarIR& ir, const Limits& limits) {
  Builder b(ir, limits);
  return b.run();
}

}  // namespace fcg
