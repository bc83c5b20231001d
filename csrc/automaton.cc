#include "automaton.h"

#include <algorithm>
#include <cstring>
#include <queue>

namespace fcg {

Automaton::Automaton(Nfa nfa, const Limits& limits) : nfa_(std::move(nfa)), limits_(limits) {
  max_chunks_ = int32_t(limits_.max_dfa_states >> kChunkBits) + 1;
  chunks_.reset(new std::unique_ptr<DState[]>[max_chunks_]);
  for (size_t k = 0; k < nfa_.special_tokens.size(); ++k)
    token_symbol_.emplace(nfa_.special_tokens[k], kNumBytes + Symbol(k));
  compute_classes();
  compute_costs();
  compute_literal_links();
  std::lock_guard<std::mutex> lock(mu_);
  intern_.assign(64, -1);
  intern_locked({});  // state 0: dead
  rule_start_.resize(nfa_.call_start.size());
  for (size_t c = 0; c < nfa_.call_start.size(); ++c) {
    std::vector<int32_t> s{nfa_.call_start[c]};
    closure_locked(s);
    rule_start_[c] = intern_locked(std::move(s));
  }
}

Automaton::~Automaton() = default;

Symbol Automaton::token_symbol(int32_t token_id) const {
  auto it = token_symbol_.find(token_id);
  return it == token_symbol_.end() ? -1 : it->second;
}

// Symbols that no edge tells apart share a class (partition refinement over the distinct ranges).
void Automaton::compute_classes() {
  int32_t nsym = kNumBytes + int32_t(nfa_.special_tokens.size());
  // Distinct ranges: byte ranges through a 256x256 bit matrix (grammars have many edges, few ranges).
  std::vector<std::pair<Symbol, Symbol>> ranges, other;
  std::vector<uint64_t> seen(256 * 4, 0);
  for (const auto& e : nfa_.edges) {
    if (e.hi < kNumBytes) {
      uint64_t& w = seen[size_t(e.lo) * 4 + size_t(e.hi >> 6)];
      uint64_t bit = uint64_t(1) << (e.hi & 63);
      if (!(w & bit)) {
        w |= bit;
        ranges.push_back({e.lo, e.hi});
      }
    } else {
      other.push_back({e.lo, e.hi});
    }
  }
  std::sort(other.begin(), other.end());
  other.erase(std::unique(other.begin(), other.end()), other.end());
  ranges.insert(ranges.end(), other.begin(), other.end());
  std::sort(ranges.begin(), ranges.end());
  std::vector<int32_t> cls(nsym, 0);
  int32_t ncls = 1;
  std::vector<int32_t> remap;
  for (auto [lo, hi] : ranges) {
    // Split every class that has members both inside and outside [lo, hi].
    remap.assign(ncls, -1);
    for (Symbol s = lo; s <= hi; ++s) {
      int32_t c = cls[s];
      if (remap[c] < 0) remap[c] = ncls++;
      cls[s] = remap[c];
    }
    // Classes fully inside the range got a fresh id; that is still a valid (finer) partition.
    // Compact ids so they stay dense.
    std::vector<int32_t> dense(ncls, -1);
    int32_t n = 0;
    for (Symbol s = 0; s < nsym; ++s) {
      int32_t c = cls[s];
      if (dense[c] < 0) dense[c] = n++;
      cls[s] = dense[c];
    }
    ncls = n;
  }
  sym_class_.assign(cls.begin(), cls.end());
  num_classes_ = ncls;
  // Runs of neighbouring symbols in one class: a range is walked run by run, not symbol by symbol.
  run_next_.assign(size_t(nsym), nsym);
  for (Symbol s = nsym - 2; s >= 0; --s)
    run_next_[s] = cls[s + 1] != cls[s] ? s + 1 : run_next_[s + 1];
  // The bytes of each class (CSR), so a walk can visit only the bytes of live classes.
  class_byte_off_.assign(size_t(ncls) + 1, 0);
  for (int b = 0; b < kNumBytes; ++b) ++class_byte_off_[cls[b] + 1];
  for (int32_t c = 0; c < ncls; ++c) class_byte_off_[c + 1] += class_byte_off_[c];
  class_bytes_.assign(kNumBytes, 0);
  std::vector<int32_t> fill(class_byte_off_.begin(), class_byte_off_.end() - 1);
  for (int b = 0; b < kNumBytes; ++b) class_bytes_[fill[cls[b]]++] = uint8_t(b);
}

// Which NFA states are literal links (see Automaton::lit_byte); after compute_costs.
void Automaton::compute_literal_links() {
  const int32_t N = nfa_.num_states();
  lit_.assign(size_t(N), 0);
  auto one_byte = [](const NfaEdge& e) { return e.lo == e.hi && e.lo < kNumBytes; };
  for (int32_t s = 0; s < N; ++s) {
    const Span<NfaEdge> es = nfa_.edges_of(s);
    if (es.empty() || es.size() > 2 || !nfa_.eps_of(s).empty() || !nfa_.calls_of(s).empty() ||
        nfa_.is_final(s) || nfa_cost_[s] >= kInfCost)
      continue;
    // The link's byte leads strictly closer to the end (so a run of links is finite and ends); the
    // other edge, if any, is the side byte (a JSON literal's backslash: the same character escaped).
    size_t k = 0;
    if (es.size() == 2) {
      if (!one_byte(es[0]) || !one_byte(es[1]) || es[0].lo == es[1].lo) continue;
      const uint32_t c0 = nfa_cost_[es[0].to], c1 = nfa_cost_[es[1].to];
      if (c0 == c1) continue;
      k = c0 < c1 ? 0 : 1;
    }
    if (!one_byte(es[k]) || nfa_cost_[es[k].to] >= nfa_cost_[s]) continue;
    lit_[size_t(s)] = uint8_t(es.size() == 1 ? 1 : k == 0 ? 2 : 3);
  }
}

// Fewest symbols from each NFA state to its rule's end (Dijkstra on the reversed graph; a call edge
// costs the callee's shortest length). Called rules are settled first, iterating to a fixpoint over
// their own (usually small) state sets; the top level, never called, is then solved once.
void Automaton::compute_costs() {
  const int32_t N = nfa_.num_states(), C = int32_t(nfa_.call_start.size());
  // Reversed graph in CSR form.
  std::vector<int32_t> off(size_t(N) + 1, 0);
  for (int32_t s = 0; s < N; ++s) {
    for (const auto& e : nfa_.edges_of(s)) ++off[e.to + 1];
    for (int32_t t : nfa_.eps_of(s)) ++off[t + 1];
    for (const auto& c : nfa_.calls_of(s)) ++off[c.ret + 1];
  }
  for (int32_t i = 0; i < N; ++i) off[i + 1] += off[i];
  struct RevEdge { int32_t from; int32_t callee; };  // callee < 0: weight 1 (edge) or 0 (eps: -2)
  std::vector<RevEdge> rev(off[N]);
  {
    std::vector<int32_t> fill(off.begin(), off.end() - 1);
    for (int32_t s = 0; s < N; ++s) {
      for (const auto& e : nfa_.edges_of(s)) rev[fill[e.to]++] = {s, -1};
      for (int32_t t : nfa_.eps_of(s)) rev[fill[t]++] = {s, -2};
      for (const auto& c : nfa_.calls_of(s)) rev[fill[c.ret]++] = {s, c.rule};
    }
  }
  std::vector<uint32_t> minlen(C, kInfCost);
  nfa_cost_.assign(N, kInfCost);
  using QE = std::pair<uint32_t, int32_t>;
  std::vector<QE> heap;
  // States by rule (CSR): members of rule r are mem[moff[r] .. moff[r + 1]).
  std::vector<int32_t> moff(size_t(C) + 1, 0);
  std::vector<int32_t> mem(static_cast<size_t>(N));
  for (int32_t s = 0; s < N; ++s) ++moff[size_t(nfa_.rule_of(s)) + 1];
  for (int32_t r = 0; r < C; ++r) moff[r + 1] += moff[r];
  {
    std::vector<int32_t> fill(moff.begin(), moff.end() - 1);
    for (int32_t s = 0; s < N; ++s) mem[size_t(fill[nfa_.rule_of(s)]++)] = s;
  }
  auto reset = [&](int32_t rule) {
    for (int32_t k = moff[rule]; k < moff[rule + 1]; ++k) nfa_cost_[mem[k]] = kInfCost;
  };
  // Weights are small integers (0 for epsilon, 1 for a symbol, a callee's shortest length for a call):
  // Dial's algorithm (one bucket per distance) instead of a binary heap; a heap only when distances get
  // large (deeply nested calls). Buckets are linked lists in one flat array.
  std::vector<int32_t> head;                     // distance -> first entry (-1: empty)
  std::vector<std::pair<int32_t, int32_t>> ent;  // (state, next entry of its bucket)
  constexpr uint32_t kMaxBuckets = 1u << 16;
  // Relax the predecessors of `s` (settled at distance d): improve(from, new distance) for each one that
  // gets closer; false as soon as improve does.
  auto relax = [&](int32_t s, uint32_t d, auto&& improve) {
    for (int32_t k = off[s]; k < off[s + 1]; ++k) {
      const RevEdge& re = rev[k];
      uint32_t w = re.callee == -1 ? 1 : re.callee == -2 ? 0 : minlen[re.callee];
      if (w >= kInfCost) continue;
      uint32_t nd = std::min<uint32_t>(kInfCost, d + w);
      if (nd < nfa_cost_[re.from] && !improve(re.from, nd)) return false;
    }
    return true;
  };
  auto dial = [&](int32_t rule) {
    int32_t fin = nfa_.call_final[rule];
    nfa_cost_[fin] = 0;
    head.assign(64, -1);
    ent.clear();
    ent.push_back({fin, -1});
    head[0] = 0;
    bool ok = true;
    for (uint32_t d = 0; ok && d < head.size(); ++d) {
      while (ok && head[d] >= 0) {  // weight-0 edges add to bucket d while it is drained
        const auto [s, next] = ent[size_t(head[d])];
        head[d] = next;
        if (nfa_cost_[s] != d) continue;
        ok = relax(s, d, [&](int32_t from, uint32_t nd) {
          if (nd >= kMaxBuckets) return false;
          nfa_cost_[from] = nd;
          if (nd >= head.size()) head.resize(std::max<size_t>(size_t(nd) + 1, head.size() * 2), -1);
          ent.push_back({from, head[nd]});
          head[nd] = int32_t(ent.size() - 1);
          return true;
        });
      }
    }
    return ok;
  };
  auto solve = [&](int32_t rule) {
    // States of one rule are reached only from that rule's final, through its own edges.
    reset(rule);
    if (dial(rule)) return;
    reset(rule);
    int32_t fin = nfa_.call_final[rule];
    heap.clear();
    nfa_cost_[fin] = 0;
    heap.push_back({0, fin});
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<QE>());
      auto [d, s] = heap.back();
      heap.pop_back();
      if (d != nfa_cost_[s]) continue;
      relax(s, d, [&](int32_t from, uint32_t nd) {
        nfa_cost_[from] = nd;
        heap.push_back({nd, from});
        std::push_heap(heap.begin(), heap.end(), std::greater<QE>());
        return true;
      });
    }
  };
  // Called rules: costs only decrease as callee lengths settle.
  for (int32_t iter = 0; iter <= C + 1; ++iter) {
    bool changed = false;
    for (int32_t c = 1; c < C; ++c) {
      solve(c);
      uint32_t v = nfa_cost_[nfa_.call_start[c]];
      if (v != minlen[c]) { minlen[c] = v; changed = true; }
    }
    if (!changed) break;
  }
  solve(0);
  if (nfa_cost_[nfa_.call_start[0]] >= kInfCost)
    throw GrammarError("the grammar accepts no string at all (its language is empty)");
}

void Automaton::closure_locked(std::vector<int32_t>& set) const {
  closure_into_locked(set.data(), set.data() + set.size(), closure_out_);
  set.assign(closure_out_.begin(), closure_out_.end());
}

namespace {
// compute_row's per-class buckets of NFA targets (and closure_into_locked's marks), per thread: their
// capacity carries over from one automaton to the next, so a new grammar does not allocate them again.
// Marks compare with a generation that only grows, so no automaton sees another's marks.
struct RowScratch {
  std::vector<std::vector<int32_t>> targets;  // by class
  std::vector<uint64_t> cls_mark;             // generation that last touched the class
  std::vector<int32_t> edge_mark;             // edge (numbered within the row) that last added to it
  std::vector<int32_t> touched;
  std::vector<std::pair<int32_t, int32_t>> distinct;
  uint64_t gen = 0;
  // closure_into_locked's visited marks by NFA state (any automaton's: marks compare with stamp_gen,
  // which only grows until it wraps and the marks are cleared).
  std::vector<uint32_t> stamp;
  uint32_t stamp_gen = 0;
  void ensure(int32_t classes) {
    if (targets.size() < size_t(classes)) {
      targets.resize(size_t(classes));
      cls_mark.resize(size_t(classes), 0);
      edge_mark.resize(size_t(classes), -1);
    }
  }
};
// Not inlined: the caller keeps the returned pointer, where inlined TLS accesses were each recomputed
// (a __tls_get_addr call per use in a shared library).
__attribute__((noinline)) RowScratch& row_scratch() {
  thread_local RowScratch s;
  return s;
}
}  // namespace

void Automaton::closure_into_locked(const int32_t* begin, const int32_t* end, std::vector<int32_t>& out) const {
  out.clear();
  if (end - begin == 1 && nfa_.eps_of(*begin).empty()) {  // nothing to close (most literal states)
    out.push_back(*begin);
    return;
  }
  RowScratch& rs = row_scratch();
  if (rs.stamp.size() < size_t(nfa_.num_states())) rs.stamp.resize(size_t(nfa_.num_states()), 0);
  if (++rs.stamp_gen == 0) {
    std::fill(rs.stamp.begin(), rs.stamp.end(), 0);
    rs.stamp_gen = 1;
  }
  uint32_t* const stamp = rs.stamp.data();
  const uint32_t gen = rs.stamp_gen;
  std::vector<int32_t>& todo = closure_todo_;
  todo.clear();
  for (const int32_t* p = begin; p != end; ++p)
    if (stamp[*p] != gen) {
      stamp[*p] = gen;
      todo.push_back(*p);
    }
  while (!todo.empty()) {
    int32_t s = todo.back();
    todo.pop_back();
    out.push_back(s);
    for (int32_t t : nfa_.eps_of(s))
      if (stamp[t] != gen) {
        stamp[t] = gen;
        todo.push_back(t);
      }
  }
  std::sort(out.begin(), out.end());
}

void Automaton::grow_intern_locked() const {
  std::vector<int32_t> t(intern_.size() * 2, -1);
  const size_t mask = t.size() - 1;
  for (int32_t id = 0, n = count_.load(std::memory_order_relaxed); id < n; ++id) {
    size_t i = size_t(state(id).hash) & mask;
    while (t[i] >= 0) i = (i + 1) & mask;
    t[i] = id;
  }
  intern_.swap(t);
}

int32_t Automaton::intern_locked(const std::vector<int32_t>& set) const {
  const uint64_t h = hash_set(set);
  const size_t mask = intern_.size() - 1;
  size_t slot = size_t(h) & mask;
  for (int32_t o; (o = intern_[slot]) >= 0; slot = (slot + 1) & mask) {
    const DState& os = state(o);
    if (os.hash == h && os.nfa.size() == set.size() && std::equal(set.begin(), set.end(), os.nfa.begin()))
      return o;
  }
  int32_t id = count_.load(std::memory_order_relaxed);
  if (id >= limits_.max_dfa_states)
    throw LimitError("grammar automaton exceeds " + std::to_string(limits_.max_dfa_states) +
                     " deterministic states");
  int32_t chunk = id >> kChunkBits;
  if (!chunks_[chunk]) chunks_[chunk].reset(new DState[size_t(1) << kChunkBits]);
  DState& st = chunks_[chunk][id & kChunkMask];
  // `set` may be closure scratch: nothing below reads it again
  int32_t* mem = sets_.alloc(set.size());
  std::copy(set.begin(), set.end(), mem);
  st.nfa = {mem, mem + set.size()};
  st.hash = h;
  if (set.size() == 1 && lit_[size_t(set[0])]) st.lit = set[0];
  const Span<int32_t> nfa_set = st.nfa;
  if (!nfa_set.empty()) {
    st.rule = nfa_.rule_of(nfa_set[0]);
    int32_t fin = nfa_.call_final[st.rule];
    uint32_t cost = kInfCost;
    for (int32_t s : nfa_set) {
      if (s == fin) st.final = true;
      cost = std::min(cost, nfa_cost_[s]);
    }
    st.cost = cost;
  }
  intern_[slot] = id;
  count_.store(id + 1, std::memory_order_release);
  if (size_t(id + 1) * 2 > intern_.size()) grow_intern_locked();
  // Calls: group return states by callee.
  std::vector<std::pair<int32_t, int32_t>> calls;  // (callee, ret nfa)
  for (int32_t s : st.nfa)
    for (const auto& c : nfa_.calls_of(s)) calls.push_back({c.rule, c.ret});
  if (!calls.empty()) {
    std::sort(calls.begin(), calls.end());
    std::vector<std::pair<int32_t, int32_t>> grouped;
    for (size_t i = 0; i < calls.size();) {
      size_t j = i;
      std::vector<int32_t> rets;
      while (j < calls.size() && calls[j].first == calls[i].first) rets.push_back(calls[j++].second);
      closure_locked(rets);
      int32_t r = intern_locked(rets);
      grouped.push_back({calls[i].first, r});
      i = j;
    }
    // Re-fetch: intern_locked may have allocated a new chunk but DState addresses are stable.
    chunks_[chunk][id & kChunkMask].calls = std::move(grouped);
  }
  return id;
}

void Automaton::ensure_scratch_locked() const {
  if (single_.empty()) single_.assign(size_t(nfa_.num_states()), -1);
}

int32_t Automaton::closure_state(int32_t s) const {
  std::lock_guard<std::mutex> lock(mu_);
  ensure_scratch_locked();
  return single_[s] >= 0 ? single_[s] : new_closure_state_locked(s);
}

inline int32_t Automaton::new_closure_state_locked(int32_t s) const {
  closure_into_locked(&s, &s + 1, closure_out_);
  return single_[s] = intern_locked(closure_out_);
}

const int32_t* Automaton::compute_row(int32_t d) const {
  std::lock_guard<std::mutex> lock(mu_);
  DState& st = state_mut(d);
  if (const int32_t* r = st.row.load(std::memory_order_acquire)) return r;
  ensure_scratch_locked();
  // A literal state (one edge, over symbols of one class: a key's next byte, a punctuation mark) needs
  // none of the per-class buckets below.
  const NfaEdge* one = nullptr;
  size_t n_edges = 0;
  for (int32_t s : st.nfa) {
    const Span<NfaEdge> es = nfa_.edges_of(s);
    if (!es.empty()) one = es.begin();
    if ((n_edges += es.size()) > 1) break;
  }
  if (n_edges == 1 && run_next_[one->lo] > one->hi) {
    const int32_t c = sym_class_[one->lo];
    int32_t id = single_[one->to];
    if (id < 0) id = new_closure_state_locked(one->to);
    int32_t* row = rows_.alloc(size_t(num_classes_));
    ++num_rows_;
    std::fill(row, row + num_classes_, kDead);
    row[c] = id;
    if (class_bytes(c).size() == 1 && id != kDead) st.only_byte = int16_t(class_bytes(c)[0]);
    st.row.store(row, std::memory_order_release);
    return row;
  }
  RowScratch& rs = row_scratch();
  rs.ensure(num_classes_);
  auto& cls_targets = rs.targets;
  auto& cls_mark = rs.cls_mark;
  auto& edge_mark = rs.edge_mark;
  const uint64_t gen = ++rs.gen;
  rs.touched.clear();
  int32_t edge_id = 0;
  for (int32_t s : st.nfa)
    for (const auto& e : nfa_.edges_of(s)) {
      ++edge_id;
      for (Symbol x = e.lo; x <= e.hi; x = run_next_[x]) {  // one step per run of one class
        int32_t c = sym_class_[x];
        if (edge_mark[c] == edge_id && cls_mark[c] == gen) continue;
        edge_mark[c] = edge_id;
        if (cls_mark[c] != gen) {
          cls_mark[c] = gen;
          cls_targets[c].clear();
          rs.touched.push_back(c);
        }
        cls_targets[c].push_back(e.to);
      }
    }
  int32_t* row = rows_.alloc(size_t(num_classes_));
  ++num_rows_;
  std::fill(row, row + num_classes_, kDead);
  // Many classes lead to the same targets: close and intern each distinct target list once.
  auto& distinct = rs.distinct;  // (class whose list is canonical, DFA state)
  distinct.clear();
  for (int32_t c : rs.touched) {
    auto& t = cls_targets[c];
    if (t.size() > 1) {
      std::sort(t.begin(), t.end());
      t.erase(std::unique(t.begin(), t.end()), t.end());
    }
    int32_t id = -1;
    if (t.size() == 1) {
      id = single_[t[0]];
      if (id < 0) id = new_closure_state_locked(t[0]);
    } else {
      for (const auto& [oc, oid] : distinct)
        if (cls_targets[oc] == t) { id = oid; break; }
      if (id < 0) {
        closure_into_locked(t.data(), t.data() + t.size(), closure_out_);
        id = intern_locked(closure_out_);
        distinct.push_back({c, id});
      }
    }
    row[c] = id;
  }
  if (rs.touched.size() == 1 && class_bytes(rs.touched[0]).size() == 1 && row[rs.touched[0]] != kDead)
    st.only_byte = int16_t(class_bytes(rs.touched[0])[0]);
  st.row.store(row, std::memory_order_release);
  return row;
}

size_t Automaton::memory_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t b = nfa_.memory_bytes();
  int32_t n = count_.load();
  b += size_t((n >> kChunkBits) + 1) * (sizeof(DState) << kChunkBits);
  b += sets_.allocated_bytes() + rows_.allocated_bytes() + intern_.size() * 4;
  b += (nfa_cost_.size() + single_.size()) * 4 + lit_.size();  // per NFA state
  return b;
}

// ---- StackArena / configurations ----------------------------------------------------------------

void StackArena::reset() {
  nodes_.clear();
  index_.clear();
  nodes_.push_back({-1, kDead, 0, 0});
}

int32_t StackArena::push(const Automaton& a, int32_t parent, int32_t ret, uint32_t max_depth) {
  uint64_t key = (uint64_t(uint32_t(parent)) << 32) | uint32_t(ret);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  const Node& p = nodes_[parent];
  if (p.depth + 1 > max_depth) return -1;
  uint32_t cost = std::min<uint32_t>(kInfCost, p.cost + a.state(ret).cost);
  nodes_.push_back({parent, ret, cost, p.depth + 1});
  int32_t id = int32_t(nodes_.size() - 1);
  index_.emplace(key, id);
  return id;
}

void closure(const Automaton& a, StackArena& arena, std::vector<Config>& cfgs, uint32_t max_depth) {
  // Fast path: one configuration with nothing to expand.
  if (cfgs.size() == 1) {
    const DState& st = a.state(cfgs[0].d);
    if (!expands(st, cfgs[0].stack)) return;
  }
  std::vector<Config> todo;
  todo.swap(cfgs);
  while (!todo.empty()) {
    Config c = todo.back();
    todo.pop_back();
    if (c.d == kDead) continue;
    if (std::find(cfgs.begin(), cfgs.end(), c) != cfgs.end()) continue;
    cfgs.push_back(c);
    const DState& st = a.state(c.d);
    for (const auto& [callee, ret] : st.calls) {
      int32_t s = arena.push(a, c.stack, ret, max_depth);
      if (s >= 0) todo.push_back({a.rule_start(callee), s});
    }
    if (st.final && c.stack != 0) {
      const auto& n = arena.node(c.stack);
      todo.push_back({n.ret, n.parent});
    }
  }
}

bool step_configs(const Automaton& a, StackArena& arena, const std::vector<Config>& in, Symbol s,
                  std::vector<Config>& out, uint32_t max_depth) {
  out.clear();
  for (const Config& c : in) {
    int32_t t = a.step(c.d, s);
    if (t != kDead) {
      Config n{t, c.stack};
      if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
  }
  if (out.empty()) return false;
  closure(a, arena, out, max_depth);
  return !out.empty();
}

bool configs_accepting(const Automaton& a, const std::vector<Config>& cfgs) {
  for (const Config& c : cfgs)
    if (c.stack == 0 && a.state(c.d).final) return true;
  return false;
}

uint32_t configs_cost(const Automaton& a, const StackArena& arena, Span<Config> cfgs) {
  uint32_t best = kInfCost;
  for (const Config& c : cfgs)
    best = std::min<uint32_t>(best, a.state(c.d).cost + arena.node(c.stack).cost);
  return best;
}

}  // namespace fcg
