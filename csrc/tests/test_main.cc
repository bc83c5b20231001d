// C++ unit tests of the engine, run under ASan/UBSan by tests/test_cpp.py (and .ci/run).
// No framework: each CHECK failure prints and the process exits non-zero.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "automaton.h"
#include "bitmask.h"
#include "grammar.h"
#include "matcher.h"
#include "token_index.h"

using namespace fcg;

static int g_failures = 0, g_checks = 0;
#define CHECK(cond)                                                          \
  do {                                                                       \
    ++g_checks;                                                              \
    if (!(cond)) {                                                           \
      ++g_failures;                                                          \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

namespace {

struct IR {
  GrammarIR ir;
  int32_t add(Expr e) {
    ir.nodes.push_back(std::move(e));
    return int32_t(ir.nodes.size() - 1);
  }
  int32_t lit(const std::string& s) {
    Expr e;
    e.op = Op::Lit;
    e.bytes = s;
    return add(e);
  }
  int32_t cp(uint32_t lo, uint32_t hi, bool json) {
    Expr e;
    e.op = Op::Cp;
    e.ranges = {{lo, hi}};
    e.json = json;
    return add(e);
  }
  int32_t seq(std::vector<int32_t> k) {
    Expr e;
    e.op = Op::Seq;
    e.kids = std::move(k);
    return add(e);
  }
  int32_t alt(std::vector<int32_t> k) {
    Expr e;
    e.op = Op::Alt;
    e.kids = std::move(k);
    return add(e);
  }
  int32_t rep(int32_t x, int lo, int hi) {
    Expr e;
    e.op = Op::Rep;
    e.kids = {x};
    e.lo = lo;
    e.hi = hi;
    return add(e);
  }
  int32_t ref(int32_t r) {
    Expr e;
    e.op = Op::Ref;
    e.ref = r;
    return add(e);
  }
  int32_t tok(int32_t id) {
    Expr e;
    e.op = Op::Tok;
    e.ref = id;
    return add(e);
  }
  int32_t excl(std::vector<std::vector<uint32_t>> names, std::vector<std::pair<uint32_t, uint32_t>> ranges) {
    Expr e;
    e.op = Op::Excl;
    e.json = true;  // a JSON string body (false: an identifier)
    e.words = std::move(names);
    e.ranges = std::move(ranges);
    return add(e);
  }
};

std::shared_ptr<CompiledGrammar> compile(const GrammarIR& ir, std::shared_ptr<const TokenIndex> idx = nullptr) {
  Limits lim;
  auto a = std::make_shared<Automaton>(build_nfa(ir, lim), lim);
  return std::make_shared<CompiledGrammar>(std::move(idx), std::move(a), lim);
}

bool accepts(const std::shared_ptr<CompiledGrammar>& g, const std::string& s) {
  Matcher m(g);
  return m.accept_bytes(s) && m.is_accepting();
}

// A small byte-level vocabulary: all 256 bytes plus some multi-byte tokens and two specials.
std::shared_ptr<TokenIndex> small_vocab() {
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, char(b)));
  const char* extra[] = {"\"", "\",", "\"}", "{\"", "name", "\":", "\":\"", "ab", "abc", "\\u00", "\xC3", "\xA9",
                         "\xC3\xA9", "12", "true", "null", "  "};
  for (const char* e : extra) toks.push_back(e);
  toks.push_back("<eos>");   // special, stop
  toks.push_back("<call>");  // special
  std::vector<uint8_t> special(toks.size(), 0);
  special[toks.size() - 1] = special[toks.size() - 2] = 1;
  int32_t eos = int32_t(toks.size() - 2);
  return std::make_shared<TokenIndex>(toks, special, int32_t(toks.size()) + 30, std::vector<int32_t>{eos}, false);
}

// All 256 bytes, then `extra`, then "<eos>" (special, the stop token).
std::shared_ptr<TokenIndex> bytes_vocab(const std::vector<const char*>& extra) {
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, char(b)));
  for (const char* e : extra) toks.push_back(e);
  toks.push_back("<eos>");
  std::vector<uint8_t> special(toks.size(), 0);
  special.back() = 1;
  int32_t eos = int32_t(toks.size() - 1);
  return std::make_shared<TokenIndex>(toks, special, int32_t(toks.size()), std::vector<int32_t>{eos}, false);
}

std::vector<int32_t> allowed(Matcher& m, const TokenIndex& idx) {
  std::vector<uint32_t> mask(idx.words(), 0xDEADBEEF);
  m.fill_mask(mask.data());
  std::vector<int32_t> out;
  for (int32_t i = 0; i < idx.vocab_size(); ++i)
    if ((mask[i >> 5] >> (i & 31)) & 1u) out.push_back(i);
  return out;
}

// The reference mask: the tokens (not special) that `m` accepts, each tried on a copy.
std::vector<int32_t> accepted(const Matcher& m, const TokenIndex& idx) {
  std::vector<int32_t> out;
  for (int32_t t = 0; t < idx.n_tokens(); ++t) {
    Matcher probe(m);
    if (!idx.is_special(t) && probe.accept_bytes(idx.token(t))) out.push_back(t);
  }
  return out;
}

void test_literals_and_json_strings() {
  IR b;
  int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
  int32_t root = b.seq({b.lit("\""), body, b.lit("\"")});
  b.ir.rules = {root};
  auto g = compile(b.ir);
  CHECK(accepts(g, "\"abc\""));
  CHECK(accepts(g, "\"\""));
  CHECK(accepts(g, "\"\\u00E9\\n\\\"\""));
  CHECK(accepts(g, "\"\\ud83d\\ude00\""));
  CHECK(accepts(g, "\"\xF0\x9F\x98\x80\""));
  CHECK(!accepts(g, "\"a"));
  CHECK(!accepts(g, "\"\x01\""));
  CHECK(!accepts(g, "\"\\x\""));
  CHECK(!accepts(g, "\"\xC3\""));     // truncated UTF-8
  CHECK(!accepts(g, "\"\xED\xA0\x80\""));  // encoded surrogate
}

void test_codepoint_ranges() {
  IR b;
  int32_t root = b.rep(b.cp(0x61, 0x7A, true), 1, 3);  // [a-z]{1,3} inside a JSON string
  b.ir.rules = {root};
  auto g = compile(b.ir);
  CHECK(accepts(g, "abc"));
  CHECK(accepts(g, "\\u0061"));
  CHECK(accepts(g, "\\u007A"));
  CHECK(!accepts(g, "\\u007b"));
  CHECK(!accepts(g, "abcd"));
  CHECK(!accepts(g, ""));
  IR c;
  c.ir.rules = {c.cp(0x1F600, 0x1F64F, true)};
  auto g2 = compile(c.ir);
  CHECK(accepts(g2, "\\ud83d\\ude00"));
  CHECK(accepts(g2, "\xF0\x9F\x98\x80"));
  CHECK(!accepts(g2, "\\ud83d\\ude50"));
}

void test_recursion_and_left_recursion() {
  IR b;
  // rule 0: value ::= "1" | "[" (value ("," value)*)? "]"
  int32_t v = b.ref(0);
  int32_t items = b.seq({v, b.rep(b.seq({b.lit(","), b.ref(0)}), 0, -1)});
  int32_t root = b.alt({b.lit("1"), b.seq({b.lit("["), b.rep(items, 0, 1), b.lit("]")})});
  b.ir.rules = {root};
  auto g = compile(b.ir);
  CHECK(accepts(g, "[1,[1,[]],[[1]]]"));
  CHECK(!accepts(g, "[1,]"));
  CHECK(!accepts(g, "[[1]"));
  IR l;
  l.ir.rules = {l.alt({l.lit("x"), l.seq({l.ref(0), l.lit("y")})})};
  bool threw = false;
  try {
    compile(l.ir);
  } catch (const GrammarError&) {
    threw = true;
  }
  CHECK(threw);
}

void test_masks_stop_and_specials() {
  auto idx = small_vocab();
  int32_t eos = idx->stop_ids()[0], call = eos + 1;
  IR b;
  // "ab" <call> | "abc"
  int32_t root = b.alt({b.seq({b.lit("ab"), b.tok(call)}), b.lit("abc")});
  b.ir.rules = {root};
  auto g = compile(b.ir, idx);
  Matcher m(g);
  auto a = allowed(m, *idx);
  // 'a', "ab", "abc" tokens allowed; nothing else.
  CHECK(a.size() == 3);
  CHECK(m.accept_token('a'));
  CHECK(!m.accept_token(eos));
  CHECK(m.accept_token('b'));
  a = allowed(m, *idx);
  CHECK(std::find(a.begin(), a.end(), call) != a.end());
  CHECK(std::find(a.begin(), a.end(), int32_t('c')) != a.end());
  CHECK(std::find(a.begin(), a.end(), eos) == a.end());
  CHECK(m.accept_token(call));
  CHECK(m.is_accepting());
  a = allowed(m, *idx);
  CHECK(a.size() == 1 && a[0] == eos);
  CHECK(m.accept_token(eos));
  CHECK(m.is_terminated());
  CHECK(!m.accept_token('a'));
  m.rollback(2);
  CHECK(!m.is_terminated());
  CHECK(m.accept_token('c'));
  CHECK(m.is_accepting());
  // padding ids beyond the tokenizer are never allowed
  CHECK(!m.accept_token(idx->n_tokens() + 3));
}

void test_string_lexeme_mask_matches_walk() {
  // A string body followed by "}" : the precomputed fast path must give exactly the tokens a plain
  // byte-by-byte check accepts.
  auto idx = small_vocab();
  IR b;
  int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
  b.ir.rules = {b.seq({b.lit("\""), body, b.lit("\"}")})};
  auto g = compile(b.ir, idx);
  const char* prefixes[] = {"\"", "\"ab", "\"\\", "\"\\u00", "\"\xC3"};
  for (const char* p : prefixes) {
    Matcher m(g);
    CHECK(m.accept_bytes(p));
    auto a = allowed(m, *idx);
    std::vector<int32_t> expect = accepted(m, *idx);
    CHECK(a == expect);
  }
}

// Every DFA state reachable by the given byte prefixes (and one byte further from each).
std::vector<int32_t> reachable_states(const std::shared_ptr<CompiledGrammar>& g, const std::vector<std::string>& prefixes) {
  const Automaton& a = g->automaton();
  std::vector<int32_t> out;
  for (const auto& p : prefixes) {
    int32_t d = a.start();
    for (unsigned char c : p) {
      if (d == kDead) break;
      d = a.step_byte(d, c);
    }
    if (d == kDead) continue;
    out.push_back(d);
    for (int b = 0; b < 256; ++b) {
      int32_t q = a.step_byte(d, uint8_t(b));
      if (q != kDead) out.push_back(q);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void test_structural_string_body_matches_bisimulation() {
  // The structural recognition of string bodies (no rows) must agree with the bisimulation walk, and
  // must not fire where the body is not followed by exactly the closing quote.
  auto idx = small_vocab();
  struct Case {
    const char* name;
    GrammarIR ir;
    std::vector<std::string> prefixes;
    bool expect_structural;
  };
  std::vector<Case> cases;
  {
    IR b;  // {"a":"<string>","b":<string with minLength 1>}
    int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
    int32_t body1 = b.rep(b.cp(0, 0x10FFFF, true), 1, -1);
    b.ir.rules = {b.seq({b.lit("{\"a\":\""), body, b.lit("\",\"b\":\""), body1, b.lit("\"}")})};
    cases.push_back({"object", b.ir, {"{\"a\":\"", "{\"a\":\"x", "{\"a\":\"\\", "{\"a\":\"\\u00", "{\"a\":\"\xC3",
                                      "{\"a\":\"\xF0\x9F", "{\"a\":\"\",\"b\":\"", "{\"a\":\"\",\"b\":\"x"},
                     true});
  }
  {
    IR b;  // a string or the literal "ab": not a plain string body until the literal is left behind
    int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
    b.ir.rules = {b.seq({b.lit("\""), b.alt({b.seq({body, b.lit("\"")}), b.lit("ab\"")}), b.lit("!")})};
    cases.push_back({"alternative", b.ir, {"\"", "\"a", "\"x", "\"ab", "\"x\\"}, true});
  }
  {
    IR b;  // key-exclusion shape: (name | other code point) then a shared tail
    int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
    int32_t dev = b.alt({b.cp(0, 0x60, true), b.cp(0x62, 0x10FFFF, true), b.seq({b.lit("a"), b.cp(0x63, 0x10FFFF, true)})});
    b.ir.rules = {b.seq({b.lit("\""), dev, body, b.lit("\":1")})};
    cases.push_back({"exclusion", b.ir, {"\"", "\"x", "\"xy", "\"a", "\"ad", "\"ad\\"}, true});
  }
  {
    IR b;  // body followed by something other than a quote, and a body that ends the grammar
    int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
    int32_t body2 = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
    b.ir.rules = {b.alt({b.seq({b.lit("x"), body, b.lit("y")}), b.seq({b.lit("z"), body2})})};
    cases.push_back({"not-quote", b.ir, {"x", "xa", "z", "za"}, false});
  }
  for (auto& c : cases) {
    auto g = compile(c.ir, idx);
    int structural = 0;
    for (int32_t d : reachable_states(g, c.prefixes)) {
      int32_t l1 = 0, l2 = 0;
      int32_t x1 = g->structural_string_body(d, &l1);
      int32_t x2 = g->string_body_bisim(d, &l2);
      if (x1) {
        ++structural;
        CHECK(x1 == x2);
        // The lexer automaton need not be minimal: equal behaviour is what counts.
        const auto& e1 = idx->string_lexeme().entries[l1];
        const auto& e2 = idx->string_lexeme().entries[l2];
        CHECK(l1 == l2 || (e1.inside == e2.inside && e1.exact_close == e2.exact_close &&
                           std::memcmp(e1.live, e2.live, 32) == 0 && e1.cost == e2.cost &&
                           e1.suffixes.tok_ids == e2.suffixes.tok_ids));
      }
      int32_t l3 = 0;
      int32_t x3 = g->string_body(d, &l3);  // cached answer (structural or bisimulation)
      CHECK(x3 == x2 || (x3 == x1 && x1));
      if (!x1 && x2) CHECK(x3 == x2 && l3 == l2);
    }
    if (c.expect_structural) CHECK(structural > 0);
    else CHECK(structural == 0);
    // Masks from the fast path equal a brute-force check of every token.
    for (const auto& p : c.prefixes) {
      Matcher m(g);
      if (!m.accept_bytes(p)) continue;
      auto a = allowed(m, *idx);
      std::vector<int32_t> expect = accepted(m, *idx);
      if (m.is_accepting()) expect.push_back(idx->stop_ids()[0]);
      std::sort(expect.begin(), expect.end());
      CHECK(a == expect);
      if (a != expect) std::fprintf(stderr, "  case %s prefix %s\n", c.name, p.c_str());
    }
  }
}

// After bytes `p`: the mask equals the tokens accepted, and with budgets below `max_budget` every
// allowed token is accepted (it keeps a completion within the budget).
void check_masks_after(const std::shared_ptr<CompiledGrammar>& g, const TokenIndex& idx, const char* p,
                       int max_budget) {
  Matcher m(g);
  CHECK(m.accept_bytes(p));
  auto got = allowed(m, idx);
  std::vector<int32_t> expect = accepted(m, idx);
  CHECK(got == expect);
  if (got != expect) std::fprintf(stderr, "  prefix %s\n", p);
  for (int budget = 1; budget < max_budget; ++budget) {
    Matcher mb(g, budget);
    mb.accept_bytes(p);
    for (int32_t t : allowed(mb, idx)) {
      Matcher probe(g, budget);
      probe.accept_bytes(p);
      CHECK(probe.accept_token(t));
    }
  }
}

void test_digit_runs_match_walk() {
  // Digit-run shortcut: masks at integer and number positions equal a brute-force check of every token,
  // including tokens that leave the digits (frontier) and a state whose digits do not all loop.
  auto idx = bytes_vocab({"12", "345", "00", "07", "5,", "9}", "1.5", "10\"", "12,\"", "8e", "99", "0}", "3a"});
  IR b;
  auto digits = [&](int lo) { return b.rep(b.cp('0', '9', false), lo, -1); };
  int32_t integer = b.seq({b.rep(b.lit("-"), 0, 1), b.alt({b.lit("0"), b.seq({b.cp('1', '9', false), digits(0)})})});
  int32_t number = b.seq({integer, b.rep(b.seq({b.lit("."), digits(1)}), 0, 1)});
  int32_t bounded = b.rep(b.cp('0', '9', false), 1, 2);  // no loop: walked as usual
  b.ir.rules = {b.seq({b.lit("{\"n\":"), integer, b.lit(",\"x\":"), number, b.lit(",\"b\":"), bounded, b.lit("}")})};
  auto g = compile(b.ir, idx);
  const char* prefixes[] = {"{\"n\":", "{\"n\":1", "{\"n\":12", "{\"n\":0", "{\"n\":-", "{\"n\":-3",
                            "{\"n\":1,\"x\":", "{\"n\":1,\"x\":2.", "{\"n\":1,\"x\":2.5", "{\"n\":1,\"x\":2,\"b\":",
                            "{\"n\":1,\"x\":2,\"b\":4"};
  for (const char* p : prefixes) {
    check_masks_after(g, *idx, p, 8);
  }
}

void test_string_states_have_a_probe_byte() {
  // CompiledGrammar::string_body rejects states where none of these bytes is alive: every state of the
  // canonical string automaton must allow one of them. It also rejects literal links (one byte, and at
  // most a side byte, the backslash): every state allows more, so none is a string body state.
  auto idx = small_vocab();
  const auto& str = idx->string_lexeme();
  const uint8_t probes[] = {'0', '"', 0x80, 0x90, 0xA0, 0xBF};
  int checked = 0;
  for (const auto& e : str.entries) {
    if (e.inside.empty()) continue;
    bool any = false;
    int live = 0;
    for (uint8_t b : probes) any = any || (e.live[b >> 3] >> (b & 7)) & 1;
    for (int b = 0; b < 256; ++b) live += b != '\\' && ((e.live[b >> 3] >> (b & 7)) & 1);
    CHECK(any);
    CHECK(live > 1);
    ++checked;
  }
  CHECK(checked > 10);
}

void test_budget() {
  auto idx = small_vocab();
  IR b;
  int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
  b.ir.rules = {b.seq({b.lit("\""), body, b.lit("\"")})};
  auto g = compile(b.ir, idx);
  // With a budget of 4 tokens, a random walk must end complete.
  for (int seed = 0; seed < 50; ++seed) {
    Matcher m(g, 4);
    unsigned r = unsigned(seed) * 2654435761u + 1;
    while (!m.is_terminated() && m.remaining() > 0) {
      auto a = allowed(m, *idx);
      CHECK(!a.empty());
      if (a.empty()) break;
      r = r * 1103515245u + 12345u;
      CHECK(m.accept_token(a[(r >> 8) % a.size()]));
    }
    CHECK(m.is_accepting());
  }
}

void test_threads() {
  auto idx = small_vocab();
  IR b;
  int32_t body = b.rep(b.cp(0, 0x10FFFF, true), 0, -1);
  int32_t val = b.alt({b.seq({b.lit("\""), body, b.lit("\"")}), b.lit("12"), b.lit("true")});
  b.ir.rules = {b.seq({b.lit("{\"name\":"), val, b.lit("}")})};
  auto g = compile(b.ir, idx);
  std::vector<std::unique_ptr<Matcher>> ms;
  for (int i = 0; i < 16; ++i) ms.push_back(std::make_unique<Matcher>(g));
  std::vector<Matcher*> ptrs;
  std::vector<int32_t> rows;
  for (int i = 0; i < 16; ++i) {
    ptrs.push_back(ms[i].get());
    rows.push_back(i);
  }
  std::vector<uint32_t> mask(size_t(16) * idx->words());
  batch_fill(ptrs, mask.data(), idx->words(), rows, 4);
  for (int i = 1; i < 16; ++i)
    CHECK(std::memcmp(mask.data(), mask.data() + size_t(i) * idx->words(), size_t(idx->words()) * 4) == 0);
}

void test_apply_bitmask() {
  std::vector<float> logits(70, 1.0f);
  std::vector<uint32_t> mask(3, 0);
  mask[0] = 1u << 3;
  mask[1] = 1u << 1;
  apply_bitmask_f32(logits.data(), 70, mask.data(), 2, nullptr, 1, 70);
  CHECK(logits[3] == 1.0f && logits[33] == 1.0f);
  CHECK(logits[0] < -1e30f && logits[69] < -1e30f);
}

}  // namespace

void test_open_string_masks_match_walk() {
  // "any key but \"ab\"" as an open string, then :1} ; also inlined beside the literal key "ab".
  // The open-string path (inside sets + closers walk) must give exactly what accepting allows.
  auto idx = small_vocab();
  IR b;
  const uint32_t A = 'a', B = 'b';
  auto any = [&]() { return b.cp(0, 0x10FFFF, true); };
  auto not1 = [&](uint32_t c) {
    Expr e;
    e.op = Op::Cp;
    e.json = true;
    e.ranges = {{0, c - 1}, {c + 1, 0x10FFFF}};
    return b.add(e);
  };
  auto one = [&](uint32_t c) { return b.cp(c, c, true); };
  // FIN: "" or "a"; DEV: [^a] | a [^b] | ab any; then any*
  int32_t fin = b.alt({b.seq({}), one(A)});
  int32_t dev = b.alt({not1(A), b.seq({one(A), not1(B)}), b.seq({one(A), one(B), any()})});
  int32_t key = b.seq({b.lit("\""), b.alt({fin, b.seq({dev, b.rep(any(), 0, -1)})}), b.lit("\"")});
  int32_t root = b.seq({b.lit("{"), b.alt({b.seq({b.lit("\"ab\":true")}), b.seq({b.ref(1), b.lit(":1")})}),
                        b.lit("}")});
  b.ir.rules = {root, key};
  b.ir.open_strings = {1};
  auto g = compile(b.ir, idx);
  CHECK(g->automaton().nfa().open_strings.size() == 1);
  const char* prefixes[] = {"{\"", "{\"a", "{\"ab", "{\"abc", "{\"x", "{\"\\", "{\"\\u00", "{\"\\u0061",
                            "{\"\xC3", "{\"a\xC3\xA9", "{\"\\uD83D"};
  int open = 0;
  for (const char* p : prefixes) {
    Matcher m(g);
    CHECK(m.accept_bytes(p));
    open += m.mask_path().find("open string") != std::string::npos;
    auto a = allowed(m, *idx);
    CHECK(a == accepted(m, *idx));
  }
  CHECK(open == int(sizeof(prefixes) / sizeof(prefixes[0])));
  // A rule flagged open that is no JSON string is ignored (its labels disagree with the lexer).
  IR c;
  c.ir.rules = {c.seq({c.lit("["), c.ref(1), c.lit("]")}), c.lit("12")};
  c.ir.open_strings = {1};
  auto g2 = compile(c.ir, idx);
  Matcher m2(g2);
  CHECK(m2.accept_bytes("["));
  CHECK(m2.mask_path() == "walk");
  CHECK(m2.accept_bytes("1"));
  CHECK(m2.mask_path() == "walk");
}

void test_key_exclusion() {
  // "any key but ab, a, \u00e9x" as an Excl node: byte-level acceptance over escapes, and as an open
  // string, masks equal to what accepting each token allows (and taken from the open-string path).
  auto idx = small_vocab();
  IR b;
  int32_t key = b.seq({b.lit("\""), b.excl({{'a', 'b'}, {'a'}, {0xE9, 'x'}}, {{0, 0x10FFFF}}), b.lit("\"")});
  int32_t root = b.seq({b.lit("{"), b.ref(1), b.lit(":1}")});
  b.ir.rules = {root, key};
  b.ir.open_strings = {1};
  auto g = compile(b.ir, idx);
  const char* ok[] = {"{\"\":1}", "{\"abc\":1}", "{\"\\u0062\":1}", "{\"\xC3\xA9\":1}", "{\"\xC3\xA9xy\":1}",
                      "{\"\\uD83D\":1}", "{\"x\":1}", "{\"\\n\":1}"};
  const char* bad[] = {"{\"ab\":1}", "{\"a\":1}", "{\"\\u0061\":1}", "{\"\\u0061\\u0062\":1}",
                       "{\"a\\u0062\":1}", "{\"\\u00E9x\":1}", "{\"\xC3\xA9x\":1}", "{\"\\x\":1}", "{\"\n\":1}"};
  for (const char* s : ok) CHECK(accepts(g, s));
  for (const char* s : bad) CHECK(!accepts(g, s));
  CHECK(accepts(g, "{\"\\u0061\\u0063\":1}"));  // "ac"
  CHECK(accepts(g, "{\"\\u0061\\u0042\":1}"));  // "aB"
  const char* prefixes[] = {"{\"", "{\"a", "{\"ab", "{\"x", "{\"\\", "{\"\\u00", "{\"\\u0061", "{\"\xC3", "{\"\xC3\xA9"};
  int open = 0;
  for (const char* p : prefixes) {
    Matcher m(g);
    CHECK(m.accept_bytes(p));
    open += m.mask_path().find("open string") != std::string::npos;
    CHECK(allowed(m, *idx) == accepted(m, *idx));
  }
  CHECK(open == int(sizeof(prefixes) / sizeof(prefixes[0])));
  // Names outside the BMP: code points without surrogates, pairs spell them.
  IR c;
  c.ir.rules = {c.seq({c.lit("\""), c.excl({{0x1F600}}, {{0, 0xD7FF}, {0xE000, 0x10FFFF}}), c.lit("\"")})};
  auto g2 = compile(c.ir, idx);
  CHECK(!accepts(g2, "\"\xF0\x9F\x98\x80\""));
  CHECK(!accepts(g2, "\"\\ud83d\\uDE00\""));
  CHECK(accepts(g2, "\"\\ud83d\\ude01\""));
  CHECK(!accepts(g2, "\"\\ud83d\""));
  // The identifier kind (keyword-argument names): ASCII identifiers that are none of the words.
  IR k;
  int32_t id = k.excl({{'i', 'f'}, {'i', 'n'}, {'x'}, {'1'}}, {});
  k.ir.nodes[size_t(id)].json = false;
  k.ir.rules = {k.seq({k.lit("("), id, k.lit(")")})};
  auto g3 = compile(k.ir, idx);
  for (const char* s : {"(i)", "(ifx)", "(y)", "(_)", "(x1)", "(In)"}) CHECK(accepts(g3, s));
  for (const char* s : {"(if)", "(in)", "(x)", "()", "(1a)", "(a-b)"}) CHECK(!accepts(g3, s));
  // Some surrogates but not all, or a supplementary name over lone surrogates: refused.
  IR d;
  d.ir.rules = {d.excl({{'a'}}, {{0, 0xD900}})};
  bool threw = false;
  try { compile(d.ir); } catch (const GrammarError&) { threw = true; }
  CHECK(threw);
  IR f;
  f.ir.rules = {f.excl({{0x1F600}}, {{0, 0x10FFFF}})};
  threw = false;
  try { compile(f.ir); } catch (const GrammarError&) { threw = true; }
  CHECK(threw);
}

void test_literal_links_match_walk() {
  // Keys read through runs of literal links (Automaton::lit_byte): each character also comes escaped as
  // \uXXXX (the side byte), tokens mix plain and escaped characters and run past the key. Masks equal
  // what accepting allows at every position, with and without a budget, and the key's bytes build no
  // DFA state each.
  auto idx = bytes_vocab({"lo", "location", "\\u006c", "\\u00", "l\\u006f", "loc\\", "ation\":", "\":", "\":1",
                          "\\u0022", "on\"", "\\\\", "{\"lo", "{\"", "\"}", "22}"});
  IR b;
  std::vector<int32_t> key;
  for (char c : std::string("location")) key.push_back(b.cp(uint8_t(c), uint8_t(c), true));
  b.ir.rules = {b.seq({b.lit("{\""), b.seq(key), b.lit("\":"), b.alt({b.lit("1"), b.lit("22")}), b.lit("}")})};
  auto g = compile(b.ir, idx);
  const Automaton& a = g->automaton();
  int links = 0;
  for (int32_t s = 0; s < a.nfa().num_states(); ++s) links += a.lit_byte(s) >= 0 && a.lit_side(s) == '\\';
  CHECK(links >= 8);  // one per character of the key
  const char* prefixes[] = {"{", "{\"", "{\"l", "{\"lo", "{\"\\u006c", "{\"\\u006", "{\"loc", "{\"l\\u006fc",
                            "{\"location", "{\"location\"", "{\"location\":", "{\"location\":2"};
  for (const char* p : prefixes) {
    check_masks_after(g, *idx, p, 10);
  }
  // Through the key by tokens, masks on the way: of the key's 8 links, only those where a token ended
  // ({l} after "{\"", {c} after "lo") have a DFA state, and {o}, after the escaped l ("\\u006c") that
  // the walk reads through rows (the escape's last hex digit, c or C, is not a link).
  auto g2 = compile(b.ir, idx);
  Matcher m(g2);
  for (const char* t : {"{\"", "lo", "cation", "\":", "1", "}"}) {
    int32_t id = 0;
    while (id < idx->n_tokens() && idx->token(id) != t) ++id;
    allowed(m, *idx);
    CHECK(id < idx->n_tokens() ? m.accept_token(id) : m.accept_bytes(t));
  }
  CHECK(m.is_accepting());
  const Automaton& a2 = g2->automaton();
  int key_states = 0;
  for (int32_t d = 1; d < a2.num_states(); ++d) {
    const int32_t s = a2.state(d).lit;
    key_states += s >= 0 && a2.lit_side(s) == '\\';
  }
  CHECK(key_states == 3);
}

void test_loop_skip_matches_walk() {
  // Free text without '<', then "<end>": the text state loops on nearly every byte, so the walk takes
  // whole subtrees without visiting them. Masks must equal what accepting allows, in and out of text.
  auto idx = small_vocab();
  IR b;
  Expr t;
  t.op = Op::Cp;
  t.ranges = {{0, '<' - 1}, {'<' + 1, 0x10FFFF}};
  int32_t text = b.rep(b.add(t), 0, -1);
  b.ir.rules = {b.seq({b.lit("{"), text, b.lit("<end>")})};
  auto g = compile(b.ir, idx);
  const char* prefixes[] = {"{", "{ab", "{\xC3", "{\xC3\xA9", "{<", "{<e", "{a<en"};
  for (const char* p : prefixes) {
    Matcher m(g);
    CHECK(m.accept_bytes(p));
    auto a = allowed(m, *idx);
    CHECK(a == accepted(m, *idx));
  }
  // The trie records the bytes below each node.
  const Trie& tr = idx->trie();
  int32_t a_node = tr.root_child[uint8_t('a')];
  CHECK(a_node > 0);
  CHECK((tr.below[2 * size_t(a_node) + 1] >> ('b' - 64)) & 1);   // "ab", "abc" below 'a'
  CHECK(!((tr.below[2 * size_t(a_node) + 1] >> ('z' - 64)) & 1));
  // ... and whether everything below a node is a valid UTF-8 prefix (read from a character boundary).
  Trie u({{"a\xC3\xA9", 0}, {"a\xC3", 1}, {"b\xC3(", 2}, {std::string("c\0", 2), 3}, {"d\xF0\x9F\x98\x80", 4},
          {"e\xED\x9F\xBF", 5}, {"f\xED\xA0\x80", 6}, {"g\xE0\x80", 7}, {"h\xF4\x90", 8}});
  auto ok = [&](char c) { return u.utf8_ok[size_t(u.root_child[uint8_t(c)])] != 0; };
  CHECK(ok('a') && ok('d') && ok('e'));                           // whole and cut characters
  CHECK(!ok('b') && !ok('c'));                                    // a broken sequence; NUL
  CHECK(!ok('f') && !ok('g') && !ok('h'));                        // surrogate, overlong, above U+10FFFF
  CHECK(!u.utf8_ok[0]);
}

int main() {
  test_literals_and_json_strings();
  test_codepoint_ranges();
  test_recursion_and_left_recursion();
  test_masks_stop_and_specials();
  test_string_lexeme_mask_matches_walk();
  test_string_states_have_a_probe_byte();
  test_structural_string_body_matches_bisimulation();
  test_digit_runs_match_walk();
  test_open_string_masks_match_walk();
  test_key_exclusion();
  test_loop_skip_matches_walk();
  test_literal_links_match_walk();
  test_budget();
  test_threads();
  test_apply_bitmask();
  std::printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
  return g_failures ? 1 : 0;
}
