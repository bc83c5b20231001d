#include "matcher.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_set>

namespace fcg {

// ---- CompiledGrammar -----------------------------------------------------------------------------

CompiledGrammar::CompiledGrammar(std::shared_ptr<const TokenIndex> index, std::shared_ptr<Automaton> automaton,
                                 const Limits& limits, std::vector<int32_t> stop_ids)
    : index_(std::move(index)), automaton_(std::move(automaton)), limits_(limits), stop_ids_(std::move(stop_ids)) {
  if (stop_ids_.empty() && index_) stop_ids_ = index_->stop_ids();
  std::sort(stop_ids_.begin(), stop_ids_.end());
  stop_ids_.erase(std::unique(stop_ids_.begin(), stop_ids_.end()), stop_ids_.end());
  for (int32_t s : stop_ids_)
    if (index_ && (s < 0 || s >= index_->vocab_size()))
      throw GrammarError("stop token id " + std::to_string(s) + " is outside the vocabulary of " +
                         std::to_string(index_->vocab_size()));
  const auto& toks = automaton_->special_tokens();
  for (size_t k = 0; k < toks.size(); ++k) {
    int32_t id = toks[k];
    if (index_ && (id < 0 || id >= index_->vocab_size()))
      throw GrammarError("grammar names token id " + std::to_string(id) + ", outside the vocabulary of " +
                         std::to_string(index_->vocab_size()));
    specials_.push_back({id, kNumBytes + Symbol(k)});
  }
}

CompiledGrammar::~CompiledGrammar() = default;

const MaskEntry* CompiledGrammar::publish_mask(int32_t d, std::unique_ptr<MaskEntry> e) const {
  std::lock_guard<std::mutex> lock(mu_);
  DState& st = automaton_->state_mut(d);
  if (void* p = st.mask.load(std::memory_order_acquire)) return static_cast<const MaskEntry*>(p);
  const MaskEntry* out = e.get();
  owned_.push_back(std::move(e));
  st.mask.store(const_cast<MaskEntry*>(out), std::memory_order_release);
  return out;
}

namespace {
// A string lexer state and a value, as cached on a deterministic state (DState::lexeme, DState::open).
int64_t pack_lexer(int32_t lexer_state, uint32_t value) { return (int64_t(lexer_state) << 32) | int64_t(value); }

// An answer cached in a state's slot: -1 while unknown, else pack_lexer(...) (0: does not apply).
// Concurrent first callers compute the same answer.
template <class Compute>
uint32_t cached_on_state(std::atomic<int64_t>& slot, int32_t* lexer_state, Compute compute) {
  int64_t v = slot.load(std::memory_order_acquire);
  if (v < 0) {
    v = compute();
    slot.store(v, std::memory_order_release);
  }
  *lexer_state = int32_t(v >> 32);
  return uint32_t(v & 0xFFFFFFFF);
}
}  // namespace

// Does `d` behave exactly like a state of the canonical JSON string automaton up to the closing quote,
// all quotes leading to one state? Decided structurally when the state lies inside one of the grammar's
// string bodies, else checked as a bisimulation; the answer is cached on the state.
int32_t CompiledGrammar::string_body(int32_t d, int32_t* lexer_state) const {
  return int32_t(cached_on_state(automaton_->state_mut(d).lexeme, lexer_state, [&]() -> int64_t {
    const DState& ds = automaton_->state(d);
    // A literal link reads one byte: no string lexer state does (and 0 is always safe: it is walked).
    if (!index_ || ds.final || !ds.calls.empty() || ds.lit >= 0) return 0;
    int32_t l = 0;
    int32_t x = structural_string_body(d, &l);
    if (!x) x = bisim_string_body(d, &l, true);
    return x ? pack_lexer(l, uint32_t(x)) : 0;
  }));
}

int32_t CompiledGrammar::string_body_bisim(int32_t d, int32_t* lexer_state) const {
  const DState& ds = automaton_->state(d);
  *lexer_state = 0;
  if (!index_ || ds.final || !ds.calls.empty()) return 0;
  return bisim_string_body(d, lexer_state, false);
}

// The bisimulation walk of both automata in lockstep over all 256 bytes. With `record`, every pair on
// the way (bisimilar with the same exit) is recorded on its state.
int32_t CompiledGrammar::bisim_string_body(int32_t d, int32_t* lexer_state, bool record) const {
  const Automaton& G = *automaton_;
  int64_t v = 0;
  const auto& str = index_->string_lexeme();
  const Automaton& L = *str.lexer;
  const int32_t* grow = G.row(d);
  // Every state of the string automaton allows one of these bytes (character boundary: '0'; after
  // a backslash: '"'; inside \uXXXX: '0'; mid UTF-8: a continuation byte). Literal states rarely do.
  static const uint8_t probes[] = {'0', '"', 0x80, 0x90, 0xA0, 0xBF};
  bool maybe = false;
  for (uint8_t b : probes) maybe = maybe || grow[G.symbol_class(b)] != kDead;
  if (!maybe) return 0;
  // A few more bytes must agree with some lexer state before the full comparison (most states that
  // allow '"' or '0' are structural ones: a key's opening quote, a number).
  static const uint8_t sig[] = {'0', '"', 'a', 'Z', ' ', '\\', 'u', '}', 0x1F, 0x80, 0xBF, 0xC2, 0xF5};
  bool any = false;
  for (size_t l0 = 1; l0 < str.entries.size() && !any; ++l0) {
    const auto& e = str.entries[l0];
    if (e.inside.empty()) continue;
    bool same = true;
    for (uint8_t b : sig)
      if (((e.live[b >> 3] >> (b & 7)) & 1) != (grow[G.symbol_class(b)] != kDead)) { same = false; break; }
    any = same;
  }
  if (!any) return 0;
  uint8_t live[32] = {0};
  for (int b = 0; b < 256; ++b)
    if (grow[G.symbol_class(b)] != kDead) live[b >> 3] |= uint8_t(1u << (b & 7));
  for (size_t l0 = 1; l0 < str.entries.size() && v == 0; ++l0) {
    const auto& e = str.entries[l0];
    if (e.inside.empty() || std::memcmp(e.live, live, 32) != 0) continue;
    int32_t exit = 0;
    bool ok = true;
    std::vector<std::pair<int32_t, int32_t>> seen{{int32_t(l0), d}}, todo{{int32_t(l0), d}};
    std::unordered_set<uint64_t> seen_set{(uint64_t(l0) << 32) | uint32_t(d)};
    int32_t last_l = -1, last_q = -1;
    while (ok && !todo.empty()) {
      auto [l, q] = todo.back();
      todo.pop_back();
      const DState& qs = G.state(q);
      if (qs.final || !qs.calls.empty()) { ok = false; break; }
      for (const auto& sp : specials_)
        if (G.step(q, sp.second) != kDead) ok = false;
      const int32_t* lrow = L.row(l);
      const int32_t* qrow = G.row(q);
      for (int b = 0; ok && b < 256; ++b) {
        int32_t l2 = lrow[L.symbol_class(b)], q2 = qrow[G.symbol_class(b)];
        if (l2 == kDead) {
          ok = q2 == kDead;
        } else if (q2 == kDead) {
          ok = false;
        } else if (L.state(l2).final) {
          if (exit == 0) exit = q2;
          ok = exit == q2;
        } else if (!(l2 == last_l && q2 == last_q)) {
          last_l = l2;
          last_q = q2;
          if (seen_set.insert((uint64_t(uint32_t(l2)) << 32) | uint32_t(q2)).second) {
            seen.push_back({l2, q2});
            todo.push_back({l2, q2});
            if (seen.size() > 256) ok = false;
          }
        }
      }
    }
    if (ok && exit) {
      v = pack_lexer(int32_t(l0), uint32_t(exit));
      if (record)
        for (const auto& [l, q] : seen) {
          int64_t unknown = -1;
          G.state_mut(q).lexeme.compare_exchange_strong(unknown, pack_lexer(l, uint32_t(exit)),
                                                       std::memory_order_acq_rel);
        }
    }
  }
  *lexer_state = int32_t(v >> 32);
  return int32_t(v & 0xFFFFFFFF);
}

// The fast check: `d`'s NFA states all lie inside one string body of the grammar (built from the same
// template as the lexer's), the body's exit state only reads the closing quote, and the set relative to
// the body is one the lexer's states have. Then `d` behaves as that lexer state; returns the state after
// the quote, or 0 when the check does not apply (the caller then runs the bisimulation).
int32_t CompiledGrammar::structural_string_body(int32_t d, int32_t* lexer_state) const {
  const Automaton& G = *automaton_;
  const Nfa& nfa = G.nfa();
  const auto& str = index_->string_lexeme();
  if (nfa.string_bodies.empty() || str.body_size == 0 || nfa.string_body_size != str.body_size) return 0;
  const Span<int32_t> set = G.state(d).nfa;
  const int32_t n = str.body_size;
  int32_t base = -1;
  uint64_t h = 1469598103934665603ull;
  size_t k = 0;
  int32_t rel[64];
  for (int32_t s : set) {
    if (!StringLexemeIndex::matters(nfa, s)) continue;
    if (base < 0) {
      auto it = std::upper_bound(nfa.string_bodies.begin(), nfa.string_bodies.end(), s);
      if (it == nfa.string_bodies.begin()) return 0;
      base = *(it - 1);
    }
    if (s < base || s >= base + n || k == 64) return 0;
    rel[k++] = s - base;
    h = (h ^ uint32_t(s - base)) * 1099511628211ull;
  }
  if (base < 0) return 0;
  const int32_t out = base + n - 1;
  if (!nfa.eps_of(out).empty() || !nfa.calls_of(out).empty() || nfa.is_final(out))
    return 0;
  auto es = nfa.edges_of(out);
  if (es.size() != 1 || es[0].lo != '"' || es[0].hi != '"' || (es[0].to >= base && es[0].to < base + n)) return 0;
  for (const auto& bs : str.body_sets) {
    if (bs.hash != h || bs.rel.size() != k || !std::equal(bs.rel.begin(), bs.rel.end(), rel)) continue;
    *lexer_state = bs.state;
    return G.closure_state(es[0].to);
  }
  return 0;
}

// ---- Open strings ------------------------------------------------------------------------------------
//
// An open string (the front end's "any key but the declared names") is a JSON string in which every
// valid body prefix can still be completed. Its DFA states are neither literals nor a plain string body,
// so the general walk would visit every token. Instead: tokens that stay inside the string are exactly
// the lexer state's precomputed inside set, and the tokens that close it are walked from the real state
// (a trie of ~1% of the vocabulary). The front end vouches for "every prefix can be completed"; every
// other condition is checked here: each NFA state of the copy gets the lexer state its transitions
// imply (any disagreement disables the copy), and NFA states of the DFA state outside any copy must
// accept nothing but valid string bytes until the closing quote.

namespace {
// Every transition of NFA state `s` read at (canonical) string lexer state `x`: next(target, lexer state
// after it, whether that closes the string), with the lexer state unchanged for epsilon moves. False when
// `s` calls a rule, ends its rule, reads a special token or a byte the lexer rejects, or when `next`
// returns false. A symbol range is stepped one run of a lexer class at a time.
template <class Next>
bool lexer_steps(const Nfa& nfa, const StringLexemeIndex& str, int32_t s, int32_t x, Next&& next) {
  if (!nfa.calls_of(s).empty() || nfa.is_final(s)) return false;
  for (int32_t t : nfa.eps_of(s))
    if (!next(t, x, false)) return false;
  const Automaton& L = *str.lexer;
  const int32_t* lrow = L.row(x);
  for (const NfaEdge& e : nfa.edges_of(s)) {
    if (e.hi >= kNumBytes) return false;
    for (Symbol b = e.lo; b <= e.hi; b = L.run_next(b)) {
      const int32_t y = str.canon[size_t(lrow[L.symbol_class(b)])];
      if (y == kDead || !next(e.to, y, L.state(y).final)) return false;
    }
  }
  return true;
}
}  // namespace

CompiledGrammar::OpenStringLabels CompiledGrammar::label_open_string(const Nfa::OpenString& c) const {
  using L_ = OpenStringLabels;
  const Nfa& nfa = automaton_->nfa();
  const auto& str = index_->string_lexeme();
  L_ out;
  out.label.assign(size_t(c.hi - c.lo), 0);
  std::vector<int32_t> todo;
  auto in = [&](int32_t s) { return s >= c.lo && s < c.hi; };
  // Give `s` label `x`; false on a disagreement. States outside the copy may only be reached by closing.
  auto give = [&](int32_t s, int32_t x) {
    if (!in(s)) return x == L_::kAfter;
    int32_t& cur = out.label[size_t(s - c.lo)];
    if (cur == 0) {
      cur = x;
      if (x != L_::kAfter) todo.push_back(s);
      return true;
    }
    return cur == x;
  };
  auto opening = [&](int32_t s, bool from_entry) {
    for (const NfaEdge& e : nfa.edges_of(s)) {
      if (from_entry && !in(e.to)) continue;  // another alternative at the entry
      if (e.lo != '"' || e.hi != '"' || !give(e.to, str.canon[size_t(str.start)])) return false;
    }
    for (int32_t t : nfa.eps_of(s)) {
      if (from_entry && !in(t)) continue;
      if (!give(t, L_::kOutside)) return false;
    }
    return from_entry || nfa.calls_of(s).empty();
  };
  if (!opening(c.entry, true)) return out;
  while (!todo.empty()) {
    int32_t s = todo.back();
    todo.pop_back();
    int32_t x = out.label[size_t(s - c.lo)];
    if (x == L_::kOutside) {
      if (!nfa.calls_of(s).empty() || nfa.is_final(s) || !opening(s, false)) return out;
      continue;
    }
    if (!lexer_steps(nfa, str, s, x, [&](int32_t t, int32_t y, bool closes) { return give(t, closes ? L_::kAfter : y); }))
      return out;
  }
  const Automaton& G = *automaton_;
  for (int32_t s = c.lo; s < c.hi; ++s) {
    int32_t x = out.label[size_t(s - c.lo)];
    uint32_t k = G.nfa_cost(s);
    if (x > 0 && k < kInfCost) out.max_cost = std::max(out.max_cost, k);
  }
  out.ok = out.max_cost > 0;
  return out;
}

const CompiledGrammar::OpenStringLabels& CompiledGrammar::open_string_labels(size_t k) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_labels_.empty()) open_labels_.resize(automaton_->nfa().open_strings.size());
  auto& p = open_labels_[k];
  if (!p) p = std::make_unique<OpenStringLabels>(label_open_string(automaton_->nfa().open_strings[k]));
  return *p;
}

bool CompiledGrammar::inside_string_only(const std::vector<int32_t>& others, int32_t l) const {
  const Nfa& nfa = automaton_->nfa();
  const auto& str = index_->string_lexeme();
  // (NFA state, lexer state) pairs seen: open addressing, twice the 4096 pairs the search may hold.
  constexpr size_t kSlots = 8192;
  constexpr uint64_t kEmpty = ~uint64_t(0);
  std::vector<uint64_t> table(kSlots, kEmpty);
  size_t count = 0;
  bool full = false;  // a pair could not be recorded: give up (the general walk decides)
  std::vector<std::pair<int32_t, int32_t>> todo;
  auto push = [&](int32_t s, int32_t x) {
    const uint64_t key = (uint64_t(uint32_t(s)) << 32) | uint32_t(x);
    size_t i = size_t((key * 0x9E3779B97F4A7C15ull) >> 51);  // 13 bits
    for (; table[i] != kEmpty; i = (i + 1) & (kSlots - 1))
      if (table[i] == key) return;
    if (count >= kSlots / 2) {
      full = true;
      return;
    }
    table[i] = key;
    ++count;
    todo.push_back({s, x});
  };
  for (int32_t s : others) push(s, l);
  while (!todo.empty()) {
    auto [s, x] = todo.back();
    todo.pop_back();
    if (full) return false;
    auto next = [&](int32_t t, int32_t y, bool closes) {
      if (!closes) push(t, y);  // a closing quote: the closers walk decides those tokens
      return true;
    };
    if (!lexer_steps(nfa, str, s, x, next)) return false;
  }
  return !full;
}

uint32_t CompiledGrammar::open_string(int32_t d, int32_t* lexer_state) const {
  return cached_on_state(automaton_->state_mut(d).open, lexer_state, [&]() -> int64_t {
    const Nfa& nfa = automaton_->nfa();
    const DState& ds = automaton_->state(d);
    if (!index_ || nfa.open_strings.empty() || ds.final || !ds.calls.empty()) return 0;
    int32_t l = 0;
    uint32_t bound = 0;
    std::vector<int32_t> others;
    for (int32_t s : ds.nfa) {
      if (!StringLexemeIndex::matters(nfa, s)) continue;
      auto it = std::upper_bound(nfa.open_strings.begin(), nfa.open_strings.end(), s,
                                 [](int32_t x, const Nfa::OpenString& c) { return x < c.lo; });
      if (it == nfa.open_strings.begin() || s >= (it - 1)->hi) {
        others.push_back(s);
        continue;
      }
      const OpenStringLabels& lab = open_string_labels(size_t(it - 1 - nfa.open_strings.begin()));
      int32_t x = lab.ok ? lab.label[size_t(s - (it - 1)->lo)] : 0;
      if (x <= 0 || (l && x != l)) return 0;
      l = x;
      bound = std::max(bound, lab.max_cost);
    }
    return l && (others.empty() || inside_string_only(others, l)) ? pack_lexer(l, bound) : 0;
  });
}

const MaskEntry* CompiledGrammar::find_frame_mask(int32_t d, int32_t ret) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = frame_masks_.find((uint64_t(uint32_t(d)) << 32) | uint32_t(ret));
  return it == frame_masks_.end() ? nullptr : it->second;
}

const MaskEntry* CompiledGrammar::publish_frame_mask(int32_t d, int32_t ret, std::unique_ptr<MaskEntry> e) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = (uint64_t(uint32_t(d)) << 32) | uint32_t(ret);
  auto it = frame_masks_.find(key);
  if (it != frame_masks_.end()) return it->second;
  const MaskEntry* out = e.get();
  owned_.push_back(std::move(e));
  frame_masks_.emplace(key, out);
  return out;
}

size_t CompiledGrammar::memory_bytes() const {
  size_t b = automaton_->memory_bytes();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : owned_) b += sizeof(MaskEntry) + e->ids.size() * 4 + e->bits.size() * 4;
  return b;
}

// ---- Matcher -------------------------------------------------------------------------------------

Matcher::Matcher(std::shared_ptr<const CompiledGrammar> g, int64_t max_tokens)
    : g_(std::move(g)), max_tokens_(max_tokens) {
  std::vector<Config> init{{g_->automaton().start(), 0}};
  closure(g_->automaton(), arena_, init, max_depth());
  history_.clear();
  history_.push_back({std::move(init), false});
}

void Matcher::reset() {
  if (!history_.empty()) history_.resize(1);
}

bool Matcher::is_accepting() const {
  return history_.back().terminated || configs_accepting(g_->automaton(), history_.back().cfgs);
}

uint32_t Matcher::min_cost_to_finish() const {
  return configs_cost(g_->automaton(), arena_, history_.back().cfgs);
}

bool Matcher::step_token_bytes(const std::string& bytes, bool strip_space, std::vector<Config>& cfgs) {
  const Automaton& a = g_->automaton();
  size_t i = strip_space ? 1 : 0;
  // One configuration in states that neither call nor return: plain row lookups (closing such a
  // state changes nothing). The general step takes over from the first byte that needs more.
  // A run of literal links is followed through the NFA, with a DFA state only where it stops.
  if (cfgs.size() == 1) {
    Config& c = cfgs[0];
    const uint8_t* const b0 = reinterpret_cast<const uint8_t*>(bytes.data());
    while (i < bytes.size()) {
      int32_t q = -1;
      size_t next = i + 1;
      if (const int32_t s = a.state(c.d).lit; s >= 0) {
        const uint8_t* p = b0 + i;
        const int32_t t = a.follow_literal(s, p, b0 + bytes.size());
        if (t >= 0) {
          q = a.closure_state(t);
          next = size_t(p - b0);
        }
      }
      if (q < 0) {  // not a link, or not its byte (the side byte, or refused)
        q = a.step_byte(c.d, b0[i]);
        if (q == kDead) return false;
      }
      if (expands(a.state(q), c.stack)) break;  // the general step reads from byte i on
      c.d = q;
      i = next;
    }
  }
  std::vector<Config> tmp;
  for (; i < bytes.size(); ++i) {
    if (!step_configs(a, arena_, cfgs, uint8_t(bytes[i]), tmp, max_depth())) return false;
    cfgs.swap(tmp);
  }
  return true;
}

bool Matcher::accept_bytes(const std::string& bytes) {
  if (is_terminated()) return false;
  std::vector<Config> cfgs = history_.back().cfgs;
  if (!step_token_bytes(bytes, false, cfgs)) return false;
  history_.push_back({std::move(cfgs), false});
  return true;
}

uint32_t Matcher::budget_limit() const {
  return uint32_t(std::min<int64_t>(remaining() - 1, int64_t(kInfCost) - 1));
}

bool Matcher::over_budget() {
  if (history_.back().over_budget < 0) {
    const Automaton& a = g_->automaton();
    const uint32_t limit = budget_limit();
    const std::vector<Config>& cur = history_.back().cfgs;
    bool over = remaining() > 0 && limit < kInfCost - 1 && !configs_accepting(a, cur);
    if (over) {  // what fill_mask finds: no token within the limit
      Out& out = out_scratch();
      Base base;
      collect(cur, g_->index()->add_prefix_space() && num_tokens() == 0, limit, out, base);
      over = out.empty() && base.n == 0;
    }
    history_.back().over_budget = over;
  }
  return history_.back().over_budget > 0;
}

bool Matcher::accept_token(int32_t id) {
  const TokenIndex* idx = g_->index();
  if (!idx) throw MatcherError("this grammar was compiled without a vocabulary");
  if (is_terminated() || id < 0 || id >= idx->vocab_size()) return false;
  const Automaton& a = g_->automaton();
  const std::vector<Config>& cur = history_.back().cfgs;
  if (remaining() <= 0) {
    // The budget counts the output's tokens, not the stop token: a complete output may always stop.
    if (!g_->is_stop(id) || !configs_accepting(a, cur)) return false;
    history_.push_back({cur, true});
    return true;
  }
  uint64_t after_limit = uint64_t(remaining() - 1);
  // Within the budget, or (where no token fits it any more and fill_mask falls back to the tokens that
  // bring the output closer to its end) closer to the end than now: exactly fill_mask's tokens.
  auto fits = [&](const std::vector<Config>& next) {
    uint64_t c = configs_cost(a, arena_, next);
    return c <= after_limit || (c < uint64_t(configs_cost(a, arena_, cur)) && over_budget());
  };
  bool stop = g_->is_stop(id);
  Symbol sym = a.token_symbol(id);
  if (sym >= 0) {
    std::vector<Config> next;
    if (step_configs(a, arena_, cur, sym, next, max_depth()) && fits(next)) {
      bool term = stop && configs_accepting(a, next);
      history_.push_back({std::move(next), term});
      return true;
    }
  }
  if (stop) {
    if (!configs_accepting(a, cur)) return false;
    history_.push_back({cur, true});
    return true;
  }
  if (id >= idx->n_tokens() || idx->is_special(id)) return false;
  const std::string& bytes = idx->token(id);
  if (bytes.empty()) return false;
  std::vector<Config> next = cur;
  bool ok = step_token_bytes(bytes, false, next);
  if (idx->add_prefix_space() && num_tokens() == 0 && bytes[0] == ' ' && bytes.size() > 1) {
    // SentencePiece decoders drop the output's leading space: the first token may carry it.
    std::vector<Config> stripped = cur;
    if (step_token_bytes(bytes, true, stripped)) {
      if (!ok) next.clear();
      for (const Config& c : stripped)
        if (std::find(next.begin(), next.end(), c) == next.end()) next.push_back(c);
      ok = true;
    }
  }
  if (!ok || !fits(next)) return false;
  history_.push_back({std::move(next), false});
  return true;
}

bool Matcher::accept_is_cheap(int32_t id) const {
  const TokenIndex* idx = g_->index();
  if (!idx || is_terminated() || id < 0 || id >= idx->n_tokens() || idx->is_special(id)) return false;
  const std::vector<Config>& cur = history_.back().cfgs;
  if (cur.size() != 1 || remaining() <= 0 || (idx->add_prefix_space() && num_tokens() == 0)) return false;
  const Automaton& a = g_->automaton();
  int32_t d = cur[0].d;
  const std::string& tok = idx->token(id);
  const uint8_t *p = reinterpret_cast<const uint8_t*>(tok.data()), *const end = p + tok.size();
  while (p < end) {
    const int32_t s = a.state(d).lit, t = s >= 0 ? a.follow_literal(s, p, end) : -1;
    if (t >= 0) {
      // A run of links: no row to read; the state where it stops is one closure (bounded work).
      d = a.closure_state(t);
    } else {
      const int32_t* row = a.state(d).row.load(std::memory_order_acquire);
      if (!row) return false;
      d = row[a.symbol_class(*p++)];
      if (d == kDead) return true;  // refused by rows that exist
    }
    if (expands(a.state(d), cur[0].stack)) return false;
  }
  // Within the budget: accept_token needs no over-budget collection.
  return uint64_t(a.state(d).cost) + arena_.node(cur[0].stack).cost <= uint64_t(remaining() - 1);
}

int32_t Matcher::validate_tokens(const int32_t* ids, size_t n) {
  int32_t k = 0;
  for (size_t i = 0; i < n; ++i, ++k)
    if (!accept_token(ids[i])) break;
  rollback(k);
  return k;
}

void Matcher::rollback(int32_t n) {
  if (n < 0 || n > num_tokens())
    throw MatcherError("cannot roll back " + std::to_string(n) + " tokens: only " + std::to_string(num_tokens()) +
                       " accepted");
  history_.resize(history_.size() - size_t(n));
}

// Walk with one configuration: plain deterministic steps while no call is entered and the rule is not
// left. A subtree below a state that calls, or that may return to the caller, is handed to the general
// walk, which records how far below the current rule it looked (min_depth_). Children are read from the
// trie's child arrays, so a dead child costs one byte and a lookup, not a visit of its node.
void Matcher::walk_dfa(const Trie& trie, uint32_t node, bool include_self, Config start, uint32_t limit,
                       Out& out) {
  const Automaton& a = g_->automaton();
  const uint16_t* cls = a.byte_classes();
  const uint32_t stack_cost = arena_.node(start.stack).cost;
  const bool opening = &trie == &g_->index()->trie();
  const uint32_t* child_off = trie.child_off.data();
  const uint8_t* child_byte = trie.child_byte.data();
  const uint32_t* child_node = trie.child_node.data();
  const int32_t e_cls = a.symbol_class('e');
  // Frames live in a member vector shared with nested walks (the opening shortcut walks another trie
  // from inside this one): they are addressed by index, and each walk pops back to where it started.
  auto& fs = frames_;
  const size_t base = fs.size();
  // The frame of node i's children for a state with transition row `row` and `only`, its only_byte (read
  // after the row, which sets it): a state that reads one literal byte (a call's trigger, from every node
  // of free text) goes straight to that child by memchr, if there is one.
  // `bound`, `u`: see WalkFrame.
  auto push_children = [&](uint32_t i, const int32_t* row, int32_t only, int32_t bound, int8_t u) {
    if (only < 0) {
      fs.push_back({child_off[i], child_off[i + 1], row, bound, u});
    } else if (const void* hit = std::memchr(child_byte + child_off[i], only, child_off[i + 1] - child_off[i])) {
      const uint32_t j = uint32_t(static_cast<const uint8_t*>(hit) - child_byte);
      fs.push_back({j, j + 1, row, bound, u});
    }
  };
  // States worth a look for the subtree skips below: q loops on 'e' (text, a string body), or reads 'e'
  // into prose, a state that loops on 'e' and on a raw newline (the first character of a text slot; not
  // a JSON string, whose start state walks would otherwise pay for char_to for nothing). One lookup for
  // the rest (literals, numbers, structure): char_to builds the rows of every UTF-8 character's states.
  const int32_t nl_cls = a.symbol_class('\n');
  auto texty = [&](int32_t q, const int32_t* row) {
    const int32_t t = row[e_cls];
    if (t == q) return t != kDead;
    if (t == kDead) return false;
    const int32_t* rt = a.row(t);
    return rt[e_cls] == t && rt[nl_cls] == t;
  };
  // Runs of literal links (a key, a name; Automaton::lit_byte): node i reached in NFA state t by a link's
  // byte (or side byte). A link takes its tokens at i (at its cost: its DFA state is {t}) and goes on
  // to the child on its byte, with no DFA state (nor row) on the way; a child on its side byte gets a
  // frame of its own. Where the run is left, returns the node and the DFA state (t's closure) to enter
  // there (node kNoNode: nothing to enter). `done`: t's tokens at i are taken already (t is the DFA
  // state entered at i). A link reads one byte (or its side byte), so none of the skips below (text,
  // loops, UTF-8 tracking) nor the string opening (a link is never a string body state) applies to it.
  struct Next {
    uint32_t node;
    int32_t q;
  };
  constexpr uint32_t kNoNode = ~uint32_t(0);
  const Next stop{kNoNode, kDead};
  auto follow = [&](uint32_t i, int32_t t, bool done) -> Next {
    for (;; done = false) {
      if (a.lit_byte(t) < 0) {  // left: its state is built only where the node has tokens or children
        if (trie.tok_off[i] == trie.tok_off[i + 1] && child_off[i] == child_off[i + 1]) return stop;
        return {i, a.closure_state(t)};
      }
      const uint32_t c = a.nfa_cost(t) + stack_cost;
      if (!done && c <= limit) append_tokens(out, trie.tok_ids.data(), trie.tok_off[i], trie.tok_off[i + 1], c);
      const uint32_t lo = child_off[i], n = child_off[i + 1] - lo;
      if (a.lit_side(t) >= 0)
        if (const void* hit = std::memchr(child_byte + lo, a.lit_side(t), n)) {
          const uint32_t j = uint32_t(static_cast<const uint8_t*>(hit) - child_byte);
          fs.push_back({j, j + 1, nullptr, a.lit_side_next(t), 0});
        }
      const void* hit = std::memchr(child_byte + lo, a.lit_byte(t), n);
      if (!hit) return stop;
      i = child_node[static_cast<const uint8_t*>(hit) - child_byte];
      t = a.lit_next(t);
    }
  };
  // Node i, reached in state q; `bound` and `u` as in its frame's WalkFrame, u already stepped by its byte.
  auto enter = [&](uint32_t i, int32_t q, int32_t bound, int8_t u) -> Next {
    const DState& qs = a.state(q);
    // A state that calls or returns: the closure's other configurations each walk the subtree on their
    // own (a set of configurations is a union), and q goes on below as a plain state. Free text that may
    // start a call at every character stays a deterministic walk (with its subtree skips) instead of a
    // walk of sets.
    const bool expands_here = expands(qs, start.stack);
    Closure cl{0, 0, 0, 0};  // the closure, in closure_store_
    uint32_t here;           // cost after a token that ends at this node
    if (expands_here) {
      cl = closure_one({q, start.stack});
      min_depth_ = std::min(min_depth_, cl.depth);
      here = cl.cost;
      if (here >= kInfCost) return stop;
    } else {
      if (qs.cost >= kInfCost) return stop;
      here = qs.cost + stack_cost;
    }
    if (here <= limit) append_tokens(out, trie.tok_ids.data(), trie.tok_off[i], trie.tok_off[i + 1], here);
    if (expands_here) {
      if (child_off[i] == child_off[i + 1]) return stop;
      for (uint32_t k = cl.first; k < cl.second; ++k) {  // by index: nested walks may add closures to the store
        const Config o = closure_store_[k];
        if (!(o.d == q && o.stack == start.stack)) walk_dfa(trie, i, false, o, limit, out);
      }
      if (qs.cost >= kInfCost) return stop;
    }
    if (qs.lit >= 0 && u == 0) return follow(i, qs.lit, true);
    const uint32_t c = qs.cost + stack_cost;
    if (opening && trie.nodes[i].byte == '"' && opening_shortcut(int32_t(i), {{q, start.stack}}, limit, out))
      return stop;
    if (child_off[i] == child_off[i + 1]) return stop;
    // Free text: every byte string below (finishing the character the token split, if u > 0) reads as
    // text into a state that takes all the rest (its ASCII bytes and any character) back to itself. The
    // subtree is allowed without a visit; a token may end inside a character, at most 3 symbols more.
    const int32_t* row = a.row(q);
    const bool text = u > 0 || texty(q, row);
    const int32_t b1 = u > 0 ? bound : q;  // the state at the next character boundary
    if (text && (trie.utf8_ok[i] >> u & 1)) {
      const int32_t b2 = char_to(a, b1);  // after one more character
      if (b2 != kDead && char_to(a, b2) == b2) {
        const DState &s1 = a.state(b1), &s2 = a.state(b2);
        const uint64_t* bl = &trie.below[2 * size_t(i)];
        const uint64_t cb = uint64_t(std::max(s1.cost, s2.cost)) + stack_cost + 3;
        if (!(bl[0] & ~(s1.asc_to[0] & s2.asc_to[0]) & ~uint64_t(1)) && !(bl[1] & ~(s1.asc_to[1] & s2.asc_to[1])) &&
            cb <= limit) {
          append_tokens(out, trie.tok_ids.data(), trie.tok_off[i + 1], trie.tok_off[trie.nodes[i].end], uint32_t(cb));
          return stop;
        }
      }
    }
    // A state that loops on every byte below this node (a character-class run, raw bytes) allows the
    // whole subtree and stays where it is: take its tokens without visiting its nodes. States that do
    // not even loop on 'e' are not checked.
    if (row[e_cls] == q) {
      const uint64_t* lp = loop_bytes(a, q, row);
      const uint64_t* bl = &trie.below[2 * size_t(i)];
      if (!(bl[0] & ~lp[0]) && !(bl[1] & ~lp[1])) {
        if (c <= limit) append_tokens(out, trie.tok_ids.data(), trie.tok_off[i + 1], trie.tok_off[trie.nodes[i].end], c);
        return stop;
      }
    }
    push_children(i, row, qs.only_byte, u > 0 ? bound : text ? q : kDead, u);
    return stop;
  };
  // enter, then enter where a run of links is left (at a character boundary, not text).
  auto run = [&](uint32_t i, int32_t q, int32_t bound, int8_t u) {
    for (Next n = enter(i, q, bound, u); n.node != kNoNode; n = enter(n.node, n.q, kDead, 0)) {
    }
  };
  // Byte b read in a frame (its bound and u): the child's bound and UTF-8 position. A character starts
  // at a boundary where char_to of the boundary's state knows where it ends; else it is not tracked.
  auto step_u = [&](int32_t bound, int8_t u, uint8_t b, int32_t* child_bound) -> int8_t {
    *child_bound = kDead;
    if (bound == kDead) return 0;
    const int t = Trie::utf8_step(u, b);
    if (t <= 0) return 0;
    *child_bound = u > 0 ? bound : char_to(a, bound);
    return *child_bound != kDead ? int8_t(t) : 0;
  };
  if (const int32_t s = a.state(start.d).lit; s >= 0) {  // a link (not text: see follow) starts the walk
    Next n = stop;
    if (!include_self)
      n = follow(node, s, true);
    else if (trie.nodes[node].byte == a.lit_byte(s))
      n = follow(node, a.lit_next(s), false);
    else if (trie.nodes[node].byte == a.lit_side(s))
      n = follow(node, a.lit_side_next(s), false);
    if (n.node != kNoNode) run(n.node, n.q, kDead, 0);
  } else if (include_self) {
    const uint8_t b = trie.nodes[node].byte;
    const int32_t* row = a.row(start.d);
    const int32_t q = row[cls[b]];
    if (q != kDead) {
      int32_t bound;
      const int8_t u = step_u(texty(start.d, row) ? start.d : kDead, 0, b, &bound);
      run(node, q, bound, u);
    }
  } else if (child_off[node] != child_off[node + 1]) {
    const int32_t* row = a.row(start.d);
    push_children(node, row, a.state(start.d).only_byte, texty(start.d, row) ? start.d : kDead, 0);
  }
  while (fs.size() > base) {
    const size_t k = fs.size() - 1;
    const WalkFrame f = fs[k];
    if (!f.row) {  // one child, reached in NFA state f.bound (a link's side byte)
      fs.pop_back();
      const Next n = follow(child_node[f.next], f.bound, false);
      if (n.node != kNoNode) run(n.node, n.q, kDead, 0);
      continue;
    }
    uint32_t j = f.next;
    int32_t q = kDead;
    for (; j < f.end; ++j)
      if ((q = f.row[cls[child_byte[j]]]) != kDead) break;
    if (j == f.end) {
      fs.pop_back();
      continue;
    }
    fs[k].next = j + 1;
    int32_t bound;
    const int8_t u = step_u(f.bound, f.u, child_byte[j], &bound);
    run(child_node[j], q, bound, u);
  }
}

// The bytes state q loops on (row: its transition row), in Trie::below's layout; computed once per state.
namespace {
// The ASCII bytes 1-127 that `row` sends to state `to`, in Trie::below's layout.
void ascii_to(const Automaton& a, const int32_t* row, int32_t to, uint64_t out[2]) {
  out[0] = out[1] = 0;
  for (int b = 1; b < 128; ++b)
    if (row[a.symbol_class(Symbol(b))] == to) out[b >> 6] |= uint64_t(1) << (b & 63);
}
}  // namespace

const uint64_t* Matcher::loop_bytes(const Automaton& a, int32_t q, const int32_t* row) {
  DState& st = a.state_mut(q);
  if (!st.loop_known.load(std::memory_order_acquire)) {
    uint64_t lp[2];
    ascii_to(a, row, q, lp);
    bool high = row[a.symbol_class(0)] == q;
    for (int b = 0x80; high && b < 0x100; ++b) high = row[a.symbol_class(Symbol(b))] == q;
    if (high) lp[0] |= 1;
    // Concurrent writers compute the same value; readers wait for the flag.
    std::lock_guard<std::mutex> lock(loop_mu());
    if (!st.loop_known.load(std::memory_order_relaxed)) {
      st.loop[0] = lp[0];
      st.loop[1] = lp[1];
      st.loop_known.store(true, std::memory_order_release);
    }
  }
  return st.loop;
}

// The token list a mask is collected into, per thread: a free-text state lists most of the vocabulary
// (over a megabyte), and a buffer per matcher would be fresh memory, page faults included, for every new
// matcher. Not inlined: the caller keeps the reference (see row_scratch).
__attribute__((noinline)) Matcher::Out& Matcher::out_scratch() {
  thread_local Out out;
  out.clear();
  return out;
}

Matcher::Closure Matcher::closure_one(Config c) {
  const uint64_t key = (uint64_t(uint32_t(c.d)) << 32) | uint32_t(c.stack);
  if (key == last_closure_key_) return last_closure_;
  auto it = closure_memo_.find(key);
  if (it != closure_memo_.end()) {
    last_closure_key_ = key;
    return last_closure_ = it->second;
  }
  std::vector<Config> cfgs{c};
  closure(g_->automaton(), arena_, cfgs, max_depth());
  const Closure r{uint32_t(closure_store_.size()), uint32_t(closure_store_.size() + cfgs.size()),
                  configs_cost(g_->automaton(), arena_, cfgs), shallowest(cfgs)};
  closure_store_.insert(closure_store_.end(), cfgs.begin(), cfgs.end());
  closure_memo_.emplace(key, r);
  last_closure_key_ = key;
  return last_closure_ = r;
}

int32_t Matcher::char_to(const Automaton& a, int32_t q) {
  DState& st = a.state_mut(q);
  const int32_t v = st.char_to.load(std::memory_order_acquire);
  if (v >= 0) return v;
  const int32_t* row = a.row(q);
  const int32_t mid = row[a.symbol_class(0xC2)];  // some two-byte character: where it ends
  int32_t t = mid == kDead ? kDead : a.row(mid)[a.symbol_class(0x80)];
  if (t != kDead && !utf8_loops(a, q, t)) t = kDead;
  uint64_t asc[2] = {0, 0};
  if (t != kDead) ascii_to(a, row, t, asc);
  // Concurrent writers compute the same value; readers wait for the release.
  std::lock_guard<std::mutex> lock(loop_mu());
  if (st.char_to.load(std::memory_order_relaxed) < 0) {
    st.asc_to[0] = asc[0];
    st.asc_to[1] = asc[1];
    st.char_to.store(t, std::memory_order_release);
  }
  return st.char_to.load(std::memory_order_relaxed);
}

bool Matcher::utf8_loops(const Automaton& a, int32_t q, int32_t to) {
  // (lead bytes, first continuation range, continuation bytes in all)
  static const struct { uint8_t lo, hi, c_lo, c_hi; int n; } kLeads[] = {
      {0xC2, 0xDF, 0x80, 0xBF, 1}, {0xE0, 0xE0, 0xA0, 0xBF, 2}, {0xE1, 0xEC, 0x80, 0xBF, 2},
      {0xED, 0xED, 0x80, 0x9F, 2}, {0xEE, 0xEF, 0x80, 0xBF, 2}, {0xF0, 0xF0, 0x90, 0xBF, 3},
      {0xF1, 0xF3, 0x80, 0xBF, 3}, {0xF4, 0xF4, 0x80, 0x8F, 3}};
  std::vector<std::pair<int32_t, int>> good;  // (state, continuation bytes left) known to end at `to`
  // From s, `need` more continuation bytes (the first in [lo, hi], the rest 80-BF) end at `to`.
  auto back = [&](auto&& self, int32_t s, int need, int lo, int hi) -> bool {
    const bool full = lo == 0x80 && hi == 0xBF;
    if (full && std::find(good.begin(), good.end(), std::make_pair(s, need)) != good.end()) return true;
    if (s == kDead) return false;
    const int32_t* row = a.row(s);
    for (int b = lo; b <= hi; ++b) {
      const int32_t t = row[a.symbol_class(Symbol(b))];
      if (need == 1 ? t != to : !self(self, t, need - 1, 0x80, 0xBF)) return false;
    }
    if (full) good.push_back({s, need});
    return true;
  };
  const int32_t* row = a.row(q);
  for (const auto& l : kLeads)
    for (int b = l.lo; b <= l.hi; ++b)
      if (!back(back, row[a.symbol_class(Symbol(b))], l.n, l.c_lo, l.c_hi)) return false;
  return true;
}

void Matcher::walk(const Trie& trie, uint32_t node, bool include_self, const std::vector<Config>& start,
                   uint32_t limit, Out& out) {
  if (start.size() == 1) {
    walk_dfa(trie, node, include_self, start[0], limit, out);
    return;
  }
  note_depth(start);
  const Trie::Node& n = trie.nodes[node];
  if (include_self)
    walk_configs(trie, node, n.end, n.depth - 1, start, limit, out);
  else
    walk_configs(trie, node + 1, n.end, n.depth, start, limit, out);
}

void Matcher::walk_configs(const Trie& trie, uint32_t begin, uint32_t end, int base_depth,
                           const std::vector<Config>& start, uint32_t limit, Out& out) {
  const Automaton& a = g_->automaton();
  if (scratch_.size() < size_t(trie.max_depth) + 2) scratch_.resize(size_t(trie.max_depth) + 2);
  scratch_[base_depth] = start;
  const Trie::Node* nodes = trie.nodes.data();
  for (uint32_t i = begin; i < end;) {
    const Trie::Node& n = nodes[i];
    auto& cur = scratch_[n.depth];
    if (!step_configs(a, arena_, scratch_[n.depth - 1], n.byte, cur, max_depth())) { i = n.end; continue; }
    note_depth(cur);
    uint32_t c = configs_cost(a, arena_, cur);
    if (c >= kInfCost) { i = n.end; continue; }
    uint32_t t0 = trie.tok_off[i], t1 = trie.tok_off[i + 1];
    if (t0 != t1 && c <= limit)
      append_tokens(out, trie.tok_ids.data(), t0, t1, c);
    if (n.byte == '"' && &trie == &g_->index()->trie() && opening_shortcut(int32_t(i), cur, limit, out)) {
      i = n.end;
      continue;
    }
    ++i;
  }
}

bool Matcher::opening_shortcut(int32_t node, const std::vector<Config>& after, uint32_t limit, Out& out) {
  if (!base_ || after.size() != 1 || base_->n >= int(sizeof(base_->sets) / sizeof(base_->sets[0]))) return false;
  const auto& str = g_->index()->string_lexeme();
  const StringLexemeIndex::Entry* e = nullptr;
  for (const auto& op : str.openings)
    if (op.node == node) e = &op.entry;
  if (!e) return false;
  int32_t l = 0;
  int32_t x = g_->string_body(after[0].d, &l);
  if (!x || l != str.start) return false;
  const Automaton& a = g_->automaton();
  int32_t stack = after[0].stack;
  uint32_t cost_q = a.state(after[0].d).cost + arena_.node(stack).cost;
  if (uint64_t(cost_q) + uint64_t(e->max_extra) > limit) return false;  // budget: walk instead
  base_->sets[base_->n++] = e->inside.data();
  base_->max_cost = std::max<uint32_t>(base_->max_cost, cost_q + uint32_t(e->max_extra));
  std::vector<Config> xc{{x, stack}};
  closure(a, arena_, xc, max_depth());
  note_depth(xc);
  uint32_t cx = configs_cost(a, arena_, xc);
  if (cx <= limit)
    for (int32_t t : e->exact_close) out.push_back({t, cx});
  // The suffix walk must not recurse into this shortcut's own base bookkeeping differently: it walks
  // a separate trie, for which the shortcut never applies.
  std::vector<std::vector<Config>> saved_cfg = std::move(scratch_);
  scratch_.clear();
  walk_root(e->suffixes, xc, limit, out);
  scratch_ = std::move(saved_cfg);
  return true;
}

void Matcher::digit_runs(Config start, uint32_t limit, Out& out, bool done[10]) {
  const Automaton& a = g_->automaton();
  const TokenIndex& idx = *g_->index();
  const Trie& trie = idx.trie();
  const DigitRuns& runs = idx.digit_runs();
  const int32_t L = runs.max_len;
  constexpr int32_t kMaxChain = 24;
  if (L == 0 || L > kMaxChain) return;
  const uint32_t stack_cost = arena_.node(start.stack).cost;
  // A state a token may end in without a closure of its own (no call, no return).
  auto plain = [&](int32_t q) { return !expands(a.state(q), start.stack); };
  // The state every digit leads to from q (kDead when none does), or -1 when digits differ.
  auto digit_step = [&](int32_t q) {
    const int32_t* row = a.row(q);
    const int32_t r = row[a.symbol_class('0')];
    for (int j = 1; j < 10; ++j)
      if (row[a.symbol_class(uint8_t('0' + j))] != r) return -1;
    return r;
  };
  // chain[k][n]: the state after n digits that start with k (kDead: no such run), for n = 1..L, where all
  // digits lead alike along the chain; ok[k] false where they do not (that digit is walked).
  int32_t chain[10][kMaxChain + 1];
  bool ok[10];
  for (int k = 0; k < 10; ++k) {
    ok[k] = false;
    const int32_t q = a.step_byte(start.d, uint8_t('0' + k));
    if (q == kDead || !plain(q)) continue;
    if (k > 0 && ok[k - 1] && chain[k - 1][1] == q) {  // the same chain as the previous digit's
      std::copy(chain[k - 1] + 1, chain[k - 1] + L + 1, chain[k] + 1);
      ok[k] = true;
      continue;
    }
    chain[k][1] = q;
    bool good = true;
    for (int32_t n = 1; n < L && good; ++n) {
      const int32_t s = chain[k][n];
      int32_t t = kDead;
      if (s != kDead) {
        t = (n > 1 && chain[k][n - 1] == s) ? s : digit_step(s);  // a loop stays a loop
        good = t >= 0 && (t == kDead || plain(t));
      }
      chain[k][n + 1] = t;
    }
    ok[k] = good;
  }
  // One precomputed set for the digit-only tokens of 1-9 (and of 0, if alike), when no run length is
  // dead and the costliest fits the budget.
  bool same = ok[1];
  for (int k = 2; k < 10 && same; ++k) same = ok[k] && chain[k][1] == chain[1][1];
  const bool with_zero = same && ok[0] && chain[0][1] == chain[1][1];
  bool in_set = false;
  if (same && base_ && base_->n < int(sizeof(base_->sets) / sizeof(base_->sets[0]))) {
    uint64_t worst = 0;
    for (int32_t n = 1; n <= L; ++n)
      worst = std::max<uint64_t>(worst, chain[1][n] == kDead ? kInfCost : a.state(chain[1][n]).cost);
    worst += stack_cost;
    if (worst <= limit) {
      base_->sets[base_->n++] = with_zero ? runs.all.data() : runs.nonzero.data();
      base_->max_cost = std::max(base_->max_cost, uint32_t(worst));
      in_set = true;
    }
  }
  for (int k = 0; k < 10; ++k) {
    if (!ok[k]) continue;
    done[k] = true;
    if (!(in_set && (k > 0 || with_zero))) {
      const auto& off = runs.len_off[k];
      for (int32_t n = 1; n <= L && chain[k][n] != kDead; ++n) {
        const uint64_t c = uint64_t(a.state(chain[k][n]).cost) + stack_cost;
        if (c > limit) continue;
        for (uint32_t i = off[n]; i < off[n + 1]; ++i) out.push_back({runs.tokens[k][i], uint32_t(c)});
      }
    }
    for (uint32_t f : runs.frontier[k]) {
      const int32_t s = chain[k][trie.nodes[f].depth - 1];
      if (s != kDead) walk_dfa(trie, f, true, {s, start.stack}, limit, out);
    }
  }
}

// Walk the whole trie, visiting only the root's children whose first byte the grammar allows: with one
// configuration, the bytes of the live classes of its row (literal states have few).
void Matcher::walk_root(const Trie& trie, const std::vector<Config>& start, uint32_t limit, Out& out) {
  const Automaton& a = g_->automaton();
  bool digits_done[10] = {false};
  if (start.size() == 1) {
    if (const int32_t s = a.state(start[0].d).lit; s >= 0) {  // a literal link: its byte and side byte
      for (const int32_t b : {a.lit_byte(s), a.lit_side(s)})
        if (const int32_t child = b >= 0 ? trie.root_child[b] : 0)
          walk_dfa(trie, uint32_t(child), true, start[0], limit, out);
      return;
    }
    if (&trie == &g_->index()->trie()) digit_runs(start[0], limit, out, digits_done);
    const int32_t* row = a.row(start[0].d);
    const int32_t ncls = a.num_classes();
    for (int32_t c = 0; c < ncls; ++c) {
      if (row[c] == kDead) continue;
      for (uint8_t b : a.class_bytes(c)) {
        int32_t child = trie.root_child[b];
        if (!child || (b >= '0' && b <= '9' && digits_done[b - '0'])) continue;
        walk(trie, uint32_t(child), true, start, limit, out);
      }
    }
    return;
  }
  for (int b = 0; b < 256; ++b) {
    int32_t child = trie.root_child[b];
    if (!child) continue;
    bool alive = false;
    for (const Config& c : start)
      if (a.step_byte(c.d, uint8_t(b)) != kDead) { alive = true; break; }
    if (!alive) continue;
    walk(trie, uint32_t(child), true, start, limit, out);
  }
}

// Allowed tokens (with the cost after each) from `cfgs`. Inside a JSON string body the tokens that
// stay inside are not listed but returned as precomputed bitsets in `base`.
void Matcher::collect(const std::vector<Config>& cfgs, bool first, uint32_t limit, Out& out, Base& base) {
  const Automaton& a = g_->automaton();
  const TokenIndex& idx = *g_->index();
  base.n = 0;
  base.max_cost = 0;
  base_ = &base;
  std::vector<Config> tmp;
  for (const auto& [id, sym] : g_->specials()) {
    if (step_configs(a, arena_, cfgs, sym, tmp, max_depth())) {
      note_depth(tmp);
      uint32_t c = configs_cost(a, arena_, tmp);
      if (c <= limit) out.push_back({id, c});
    }
  }
  const Trie& trie = idx.trie();
  int32_t l = 0, ol = 0;
  // Open strings first: their states look like string bodies, and telling them apart by bisimulation
  // would build rows for every escape and UTF-8 state along the declared names.
  const uint32_t open_bound = (!first && cfgs.size() == 1) ? g_->open_string(cfgs[0].d, &ol) : 0;
  int32_t x = (!first && cfgs.size() == 1 && !open_bound) ? g_->string_body(cfgs[0].d, &l) : 0;
  if (x) {
    const auto& str = idx.string_lexeme();
    const auto& e = str.entries[l];
    int32_t stack = cfgs[0].stack;
    uint32_t cost_d = a.state(cfgs[0].d).cost + arena_.node(stack).cost;
    bool usable = true;
    if (uint64_t(cost_d) + uint64_t(e.max_extra) <= limit) {
      base.sets[base.n++] = e.inside.data();
      base.max_cost = cost_d + uint32_t(e.max_extra);
    } else if (l == str.start) {
      for (int k = 0; k < StringLexemeIndex::kExtraBuckets && uint64_t(cost_d) + uint64_t(k) <= limit; ++k) {
        base.sets[base.n++] = str.start_inside_by_extra[k].data();
        base.max_cost = cost_d + uint32_t(k);
      }
    } else {
      usable = false;  // budget too tight for the precomputed sets: walk every token instead
    }
    if (usable) {
      std::vector<Config> xc{{x, stack}};
      closure(a, arena_, xc, max_depth());
      note_depth(xc);
      uint32_t cx = configs_cost(a, arena_, xc);
      if (cx <= limit)
        for (int32_t t : e.exact_close) out.push_back({t, cx});
      base_ = nullptr;  // the suffix trie is not the vocabulary trie
      walk_root(e.suffixes, xc, limit, out);
      return;
    }
  }
  if (open_bound) {
    const auto& e = idx.string_lexeme().entries[size_t(ol)];
    const uint64_t cost = uint64_t(open_bound) + arena_.node(cfgs[0].stack).cost;
    if (cost <= limit) {  // else (budget too tight for the bound): walk every token
      base.sets[base.n++] = e.inside.data();
      base.max_cost = std::max(base.max_cost, uint32_t(cost));
      base_ = nullptr;  // the closers trie is not the vocabulary trie
      walk_root(e.closers, cfgs, limit, out);
      return;
    }
  }
  walk_root(trie, cfgs, limit, out);
  if (first) {
    int32_t sp = trie.root_child[uint8_t(' ')];
    base_ = nullptr;  // leading-space variant: plain walk
    if (sp) walk(trie, uint32_t(sp), false, cfgs, limit, out);
  }
  base_ = nullptr;
}

// The mask of a single configuration, cached on its state: always with an empty stack, and with a
// non-empty one when the walk never looked below the current rule (pure), which is then true for every
// stack. Costs in the entry are relative to the rule (the stack's cost is added on use). nullptr when
// the result depends on the stack (then `out`/`base` hold it for this call).
const MaskEntry* Matcher::lookup_entry(Config cfg) const {
  if (void* p = g_->automaton().state(cfg.d).mask.load(std::memory_order_acquire))
    return static_cast<const MaskEntry*>(p);
  return cfg.stack != 0 ? g_->find_frame_mask(cfg.d, arena_.node(cfg.stack).ret) : nullptr;
}

const MaskEntry* Matcher::cached_entry(Config cfg, Out& out, Base& base) {
  if (const MaskEntry* e = lookup_entry(cfg)) return e;
  const auto top = arena_.node(cfg.stack);
  const TokenIndex& idx = *g_->index();
  std::vector<Config> cfgs{cfg};
  min_depth_ = top.depth;
  collect(cfgs, false, kInfCost - 1, out, base);
  // How far below the current rule did the walk look? Not at all: the mask holds for every stack.
  // One frame: for every stack with the same top frame. Deeper: not cached.
  uint32_t pops = top.depth - std::min(min_depth_, top.depth);
  if (pops > 1) return nullptr;
  const uint32_t stack_cost = top.cost;
  auto e = std::make_unique<MaskEntry>();
  uint32_t mc = base.max_cost;
  for (const auto& [t, c] : out) mc = std::max(mc, c);
  e->max_cost = mc >= stack_cost ? mc - stack_cost : 0;
  int32_t W = idx.words();
  if (base.n == 1) e->base = base.sets[0];
  if (out.size() > size_t(W) / 4 || base.n > 1) {
    e->bits.assign(W, 0);
    for (int k = 0; k < base.n; ++k)
      for (int32_t w = 0; w < W; ++w) e->bits[w] |= base.sets[k][w];
    for (const auto& [t, c] : out) e->bits[t >> 5] |= 1u << (t & 31);
    e->base = nullptr;
  } else {
    // Unsorted (in trie order), possibly with repeats: it is only ever OR-ed into a mask.
    e->ids.reserve(out.size());
    for (const auto& [t, c] : out) e->ids.push_back(t);
  }
  if (pops == 1) return g_->publish_frame_mask(cfg.d, top.ret, std::move(e));
  return g_->publish_mask(cfg.d, std::move(e));
}

namespace {
inline void put_words(uint32_t* mask, const uint32_t* src, int32_t W, bool write) {
  if (write) {
    std::memcpy(mask, src, size_t(W) * 4);
  } else {
    for (int32_t w = 0; w < W; ++w) mask[w] |= src[w];
  }
}
}  // namespace

bool Matcher::put_entry(const MaskEntry& e, uint32_t* mask, bool write) const {
  const int32_t W = g_->index()->words();
  if (!e.bits.empty()) {
    put_words(mask, e.bits.data(), W, write);
    return true;
  }
  if (e.base)
    put_words(mask, e.base, W, write);
  else if (write)
    std::memset(mask, 0, size_t(W) * 4);
  for (int32_t t : e.ids) mask[t >> 5] |= 1u << (t & 31);
  return e.base || !e.ids.empty();
}

// The mask of one configuration within `limit`, written over `mask` (`write`) or OR-ed into it. A set
// of configurations is a union (each steps on its own), so its mask is the union of theirs, and each
// comes from the cache of its own state. False when no token is allowed.
bool Matcher::config_mask(Config cfg, uint32_t limit, uint32_t* mask, bool write) {
  const int32_t W = g_->index()->words();
  Out& out = out_scratch();
  Base base;
  const MaskEntry* e = cached_entry(cfg, out, base);
  if (e && e->max_cost + uint64_t(arena_.node(cfg.stack).cost) <= limit) return put_entry(*e, mask, write);
  // Not cached (the mask depends on the stack: out/base hold it without a limit), or over the budget.
  if (!(e == nullptr && limit >= kInfCost - 1)) {
    out.clear();
    collect({cfg}, false, limit, out, base);
  }
  if (base.n)
    put_words(mask, base.sets[0], W, write);
  else if (write)
    std::memset(mask, 0, size_t(W) * 4);
  for (int k = 1; k < base.n; ++k) put_words(mask, base.sets[k], W, false);
  for (const auto& [t, c] : out) mask[t >> 5] |= 1u << (t & 31);
  return base.n || !out.empty();
}

bool Matcher::fill_mask_cached(uint32_t* mask) {
  const TokenIndex* idx = g_->index();
  if (!idx || is_terminated() || remaining() <= 0) return false;
  const std::vector<Config>& cur = history_.back().cfgs;
  if (cur.empty() || cur.size() > kMaxSplitConfigs || (idx->add_prefix_space() && num_tokens() == 0)) return false;
  const uint32_t limit = budget_limit();
  const MaskEntry* es[kMaxSplitConfigs];
  for (size_t i = 0; i < cur.size(); ++i) {
    es[i] = lookup_entry(cur[i]);
    if (!es[i] || es[i]->max_cost + uint64_t(arena_.node(cur[i].stack).cost) > limit) return false;
  }
  const Automaton& a = g_->automaton();
  const bool accepting = configs_accepting(a, cur);
  bool any = false;
  for (size_t i = 0; i < cur.size(); ++i) any |= put_entry(*es[i], mask, i == 0);
  if (!(any || accepting || limit >= kInfCost - 1)) return false;  // over the budget: fill_mask decides
  if (accepting) put_stops(mask);
  history_.back().over_budget = 0;
  return true;
}

void Matcher::put_stops(uint32_t* mask) const {
  for (int32_t s : g_->stop_ids()) mask[s >> 5] |= 1u << (s & 31);
}

void Matcher::fill_mask(uint32_t* mask) {
  const TokenIndex* idxp = g_->index();
  if (!idxp) throw MatcherError("this grammar was compiled without a vocabulary");
  const TokenIndex& idx = *idxp;
  const Automaton& a = g_->automaton();
  int32_t W = idx.words();
  if (is_terminated()) {
    std::memset(mask, 0, size_t(W) * 4);
    put_stops(mask);
    return;
  }
  int64_t rem = remaining();
  if (rem <= 0) {
    std::memset(mask, 0, size_t(W) * 4);
    if (configs_accepting(a, history_.back().cfgs)) put_stops(mask);  // the stop token is not counted
    return;
  }
  const uint32_t limit = budget_limit();
  const std::vector<Config>& cur = history_.back().cfgs;
  bool accepting = configs_accepting(a, cur);
  bool first = idx.add_prefix_space() && num_tokens() == 0;
  if (!first && !cur.empty() && cur.size() <= kMaxSplitConfigs) {
    bool any = false;
    for (size_t i = 0; i < cur.size(); ++i) any |= config_mask(cur[i], limit, mask, i == 0);
    if (any || accepting || limit >= kInfCost - 1) {  // (each one: not over the budget)
      if (accepting) put_stops(mask);
      history_.back().over_budget = 0;
      return;
    }
  }
  Out& out = out_scratch();
  Base base;
  collect(cur, first, limit, out, base);
  const bool over = out.empty() && base.n == 0 && !accepting && limit < kInfCost - 1;
  history_.back().over_budget = over;
  if (over) {
    // No token keeps a completion within the budget by our (one token per byte) bound: fall back to
    // the tokens that bring the output closer to its end (every byte is a token, so one always does;
    // each step then shortens the ending, and the output ends all the same).
    const uint32_t cost_now = configs_cost(a, arena_, cur);
    out.clear();
    if (cost_now > 0 && cost_now < kInfCost) collect(cur, first, cost_now - 1, out, base);
  }
  if (base.n)
    std::memcpy(mask, base.sets[0], size_t(W) * 4);
  else
    std::memset(mask, 0, size_t(W) * 4);
  for (int k = 1; k < base.n; ++k)
    for (int32_t w = 0; w < W; ++w) mask[w] |= base.sets[k][w];
  for (const auto& [t, c] : out) mask[t >> 5] |= 1u << (t & 31);
  if (accepting) put_stops(mask);
}

std::string Matcher::mask_path() const {
  std::string out;
  for (const Config& c : history_.back().cfgs) {
    int32_t l = 0;
    if (!out.empty()) out += " + ";
    if (g_->open_string(c.d, &l))
      out += "open string";
    else if (g_->string_body(c.d, &l))
      out += "string";
    else
      out += "walk";
  }
  return out;
}

std::string Matcher::forced_bytes(size_t limit) const {
  const Automaton& a = g_->automaton();
  StackArena arena = arena_;  // keep this call free of side effects
  std::vector<Config> cfgs = history_.back().cfgs, tmp, only;
  std::string out;
  if (is_terminated()) return out;
  while (out.size() < limit) {
    if (configs_accepting(a, cfgs)) break;
    bool special = false;
    for (const auto& sp : g_->specials())
      if (step_configs(a, arena, cfgs, sp.second, tmp, max_depth())) special = true;
    if (special) break;
    int found = -1;
    for (int b = 0; b < 256; ++b) {
      if (step_configs(a, arena, cfgs, b, tmp, max_depth()) && configs_cost(a, arena, tmp) < kInfCost) {
        if (found >= 0) { found = -2; break; }
        found = b;
        only = tmp;
      }
    }
    if (found < 0) break;
    out.push_back(char(found));
    cfgs.swap(only);
  }
  return out;
}

void batch_fill(const std::vector<Matcher*>& ms, uint32_t* bitmask, int64_t row_stride,
                const std::vector<int32_t>& rows, int32_t threads) {
  const size_t n = ms.size();
  if (threads <= 1 || n <= 1) {
    for (size_t i = 0; i < n; ++i) ms[i]->fill_mask(bitmask + rows[i] * row_stride);
    return;
  }
  // The calling thread starts alone and takes rows from a shared counter; helper threads join only once
  // the rows prove slow (cold masks), since starting a thread costs tens of µs and a warm mask a few.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  const size_t T = std::min<size_t>(size_t(threads), n);
  std::vector<std::exception_ptr> errors(T);
  auto work = [&](size_t t) {
    try {
      for (size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n;)
        ms[i]->fill_mask(bitmask + rows[i] * row_stride);
    } catch (...) {
      errors[t] = std::current_exception();
      failed.store(true);
    }
  };
  std::vector<std::thread> pool;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    for (size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n;) {
      ms[i]->fill_mask(bitmask + rows[i] * row_stride);
      if (pool.empty() && next.load() + 1 < n && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(50))
        for (size_t t = 1; t < T; ++t) pool.emplace_back(work, t);
    }
  } catch (...) {
    errors[0] = std::current_exception();
    failed.store(true);
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace fcg
