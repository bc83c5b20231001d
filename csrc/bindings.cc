// Python bindings (nanobind): fcgrammar._core. The Python package wraps these in typed classes.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <unordered_map>

// numpy's array struct, read directly for a bitmask (see bitmask_row); no numpy API call is made.
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/ndarraytypes.h>

#include "automaton.h"
#include "bitmask.h"
#include "grammar.h"
#include "matcher.h"
#include "token_index.h"

namespace nb = nanobind;
using namespace nb::literals;
using namespace fcg;

namespace {

// Python IR (nested tuples, see grammar.py) -> GrammarIR. Shared sub-tuples become shared nodes.
struct IrConverter {
  GrammarIR ir;
  std::unordered_map<PyObject*, int32_t> memo;

  int32_t convert(nb::handle h) {
    auto it = memo.find(h.ptr());
    if (it != memo.end()) return it->second;
    if (!nb::isinstance<nb::tuple>(h)) throw GrammarError("grammar node must be a tuple");
    nb::tuple t = nb::borrow<nb::tuple>(h);
    if (t.size() < 2) throw GrammarError("grammar node tuple too short");
    int op = nb::cast<int>(t[0]);
    Expr e;
    e.op = Op(op);
    switch (e.op) {
      case Op::Lit: {
        nb::bytes b = nb::cast<nb::bytes>(t[1]);
        e.bytes.assign(b.c_str(), b.size());
        break;
      }
      case Op::Cp:
      case Op::Byte: {
        for (nb::handle r : nb::borrow<nb::tuple>(t[1])) {
          nb::tuple p = nb::borrow<nb::tuple>(r);
          e.ranges.push_back({nb::cast<uint32_t>(p[0]), nb::cast<uint32_t>(p[1])});
        }
        if (e.op == Op::Cp) e.json = t.size() > 2 && nb::cast<bool>(t[2]);
        break;
      }
      case Op::Seq:
      case Op::Alt: {
        nb::tuple kids = nb::borrow<nb::tuple>(t[1]);
        std::vector<int32_t> ks;
        ks.reserve(kids.size());
        for (nb::handle k : kids) ks.push_back(convert(k));
        e.kids = std::move(ks);
        break;
      }
      case Op::Rep: {
        if (t.size() < 4) throw GrammarError("repetition node needs (REP, expr, lo, hi)");
        e.kids = {convert(t[1])};
        e.lo = nb::cast<int32_t>(t[2]);
        e.hi = nb::cast<int32_t>(t[3]);
        if (e.lo < 0 || (e.hi >= 0 && e.hi < e.lo)) throw GrammarError("bad repetition bounds");
        break;
      }
      case Op::Ref:
      case Op::Tok:
        e.ref = nb::cast<int32_t>(t[1]);
        break;
      case Op::Excl: {
        if (t.size() < 3) throw GrammarError("exclusion node needs (EXCL, names, ranges)");
        for (nb::handle w : nb::borrow<nb::tuple>(t[1])) {
          if (!PyUnicode_Check(w.ptr())) throw GrammarError("an excluded name must be a str");
          const Py_ssize_t n = PyUnicode_GetLength(w.ptr());
          std::vector<uint32_t> cps(static_cast<size_t>(n));
          for (Py_ssize_t i = 0; i < n; ++i) cps[static_cast<size_t>(i)] = uint32_t(PyUnicode_ReadChar(w.ptr(), i));
          e.words.push_back(std::move(cps));
        }
        for (nb::handle r : nb::borrow<nb::tuple>(t[2])) {
          nb::tuple p = nb::borrow<nb::tuple>(r);
          e.ranges.push_back({nb::cast<uint32_t>(p[0]), nb::cast<uint32_t>(p[1])});
        }
        e.json = t.size() < 4 || nb::cast<bool>(t[3]);
        break;
      }
      default:
        throw GrammarError("unknown grammar node kind " + std::to_string(op));
    }
    int32_t id = int32_t(ir.nodes.size());
    ir.nodes.push_back(std::move(e));
    memo.emplace(h.ptr(), id);
    return id;
  }
};

GrammarIR convert_rules(nb::list rules, nb::list names) {
  IrConverter c;
  for (nb::handle r : rules) {
    if (r.is_none()) throw GrammarError("a grammar rule has no body");
    c.ir.rules.push_back(c.convert(r));
  }
  for (nb::handle n : names) c.ir.names.push_back(nb::cast<std::string>(n));
  return std::move(c.ir);
}

Limits make_limits(int64_t max_nfa, int64_t max_dfa, int64_t max_stack) {
  Limits l;
  if (max_nfa > 0) l.max_nfa_states = max_nfa;
  if (max_dfa > 0) l.max_dfa_states = max_dfa;
  if (max_stack > 0) l.max_stack_depth = max_stack;
  return l;
}

using I32Matrix = nb::ndarray<int32_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

using I32Any = nb::ndarray<int32_t, nb::c_contig, nb::device::cpu>;

// A caller's bitmask, held for one call: through the buffer protocol when the object has it (numpy;
// several times cheaper than nanobind's ndarray import, which a per-token call pays every time), else
// as a nanobind ndarray (CPU torch tensors).
struct BitmaskRef {
  Py_buffer view{};
  bool have_view = false;
  I32Any nd;
  BitmaskRef() = default;
  BitmaskRef(const BitmaskRef&) = delete;
  BitmaskRef& operator=(const BitmaskRef&) = delete;
  ~BitmaskRef() {
    if (have_view) PyBuffer_Release(&view);
  }
};

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

bool is_int32_format(const char* f) {
  if (!f) return false;
  if (*f == '@' || *f == '=' || (*f == '<' && kLittleEndian)) ++f;
  return (f[0] == 'i' || (f[0] == 'l' && sizeof(long) == 4)) && f[1] == 0;
}

// numpy.ndarray, set at module import (numpy is the package's one dependency).
PyTypeObject* g_ndarray_type = nullptr;

// A plain numpy int32 array, writable and C-contiguous, read from its struct: the buffer protocol's
// export costs about 0.06 us per call (numpy builds the format string each time), a third of a cached
// fill. False for anything else (subclasses, other dtypes, views it cannot write through), which
// the general path handles or explains.
bool numpy_int32(PyObject* obj, void** data, int64_t* rows, int64_t* words) {
  if (!g_ndarray_type || Py_TYPE(obj) != g_ndarray_type) return false;
  PyArrayObject* a = reinterpret_cast<PyArrayObject*>(obj);
  const int nd = PyArray_NDIM(a);
  const PyArray_Descr* d = PyArray_DESCR(a);
  const bool int32 = (d->type_num == NPY_INT && sizeof(int) == 4) || (d->type_num == NPY_LONG && sizeof(long) == 4);
  const int need = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_WRITEABLE;
  if ((nd != 1 && nd != 2) || !int32 || d->byteorder == '>' || (PyArray_FLAGS(a) & need) != need) return false;
  *data = PyArray_DATA(a);
  *rows = nd == 2 ? int64_t(PyArray_DIMS(a)[0]) : 1;
  *words = int64_t(PyArray_DIMS(a)[nd - 1]);
  return true;
}

// Row `index` of a caller's bitmask (numpy array or CPU torch tensor, int32, C-contiguous, [B, W] or
// [W]). Never converted: a converted copy would be filled and thrown away.
uint32_t* bitmask_row(nb::handle obj, int64_t index, const TokenIndex& idx, BitmaskRef& ref) {
  void* data = nullptr;
  int64_t rows = 0, words = 0;
  if (numpy_int32(obj.ptr(), &data, &rows, &words)) {
    // read from the array itself
  } else if (PyObject_CheckBuffer(obj.ptr()) &&
             PyObject_GetBuffer(obj.ptr(), &ref.view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0) {
    ref.have_view = true;
    if (ref.view.itemsize == 4 && is_int32_format(ref.view.format) && (ref.view.ndim == 1 || ref.view.ndim == 2)) {
      data = ref.view.buf;
      rows = ref.view.ndim == 2 ? int64_t(ref.view.shape[0]) : 1;
      words = int64_t(ref.view.shape[ref.view.ndim - 1]);
    }
  } else if (PyErr_Occurred()) {
    PyErr_Clear();  // not a writable C-contiguous buffer: the ndarray path below decides (and explains)
  }
  if (!data) {
    I32Any& hold = ref.nd;
    if (!nb::try_cast(obj, hold, false) || hold.ndim() < 1 || hold.ndim() > 2) {
      nb::object dev = nb::getattr(obj, "device", nb::none());
      if (!dev.is_none() && nb::hasattr(obj, "numpy")) {
        nb::object kind = nb::getattr(dev, "type", nb::none());
        if (!kind.is_none() && nb::cast<std::string>(nb::str(kind)) != "cpu")
          throw MatcherError("fill the bitmask on the CPU, then move it to the device "
                             "(apply_token_bitmask_inplace does that for you)");
      }
      throw MatcherError("bitmask must be a C-contiguous int32 array (numpy or CPU torch) of shape [batch, ceil(vocab/32)], "
                         "not " + nb::cast<std::string>(nb::str(nb::handle((PyObject*)Py_TYPE(obj.ptr())).attr("__name__"))));
    }
    data = hold.data();
    rows = hold.ndim() == 2 ? int64_t(hold.shape(0)) : 1;
    words = int64_t(hold.shape(hold.ndim() - 1));
  }
  if (words < idx.words())
    throw MatcherError("bitmask has " + std::to_string(words) + " words per row, needs " +
                       std::to_string(idx.words()) + " for a vocabulary of " + std::to_string(idx.vocab_size()));
  if (index < 0 || index >= rows) throw MatcherError("bitmask row " + std::to_string(index) + " out of range");
  return reinterpret_cast<uint32_t*>(data) + index * words;
}

uint32_t* mask_row(I32Matrix& bm, int64_t index, const TokenIndex& idx) {
  if (int64_t(bm.shape(1)) < idx.words())
    throw MatcherError("bitmask has " + std::to_string(bm.shape(1)) + " words per row, needs " +
                       std::to_string(idx.words()) + " for a vocabulary of " + std::to_string(idx.vocab_size()));
  if (index < 0 || index >= int64_t(bm.shape(0)))
    throw MatcherError("bitmask row " + std::to_string(index) + " out of range");
  return reinterpret_cast<uint32_t*>(bm.data()) + index * int64_t(bm.shape(1));
}

void translate(const std::exception_ptr& p, void*) {
  auto raise = [](const char* cls, const char* what) {
    nb::object errors = nb::module_::import_("fcgrammar.errors");
    nb::object c = errors.attr(cls);
    PyErr_SetString(c.ptr(), what);
  };
  try {
    std::rethrow_exception(p);
  } catch (const GrammarError& e) {
    raise("GrammarError", e.what());
  } catch (const LimitError& e) {
    raise("LimitError", e.what());
  } catch (const TokenizerError& e) {
    raise("TokenizerError", e.what());
  } catch (const MatcherError& e) {
    raise("MatcherError", e.what());
  }
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "fcgrammar C++ engine";
  // Token indexes live in a per-process cache until exit by design; do not report them as leaks.
  nb::set_leak_warnings(false);
  nb::register_exception_translator(translate);
  g_ndarray_type = reinterpret_cast<PyTypeObject*>(nb::object(nb::module_::import_("numpy").attr("ndarray")).release().ptr());

  nb::class_<TokenIndex>(m, "TokenIndex")
      .def(
          "__init__",
          [](TokenIndex* self, const std::vector<nb::bytes>& tokens, nb::bytes special, int32_t vocab_size,
             std::vector<int32_t> stop_ids, bool add_prefix_space) {
            std::vector<std::string> toks;
            toks.reserve(tokens.size());
            for (const auto& b : tokens) toks.emplace_back(b.c_str(), b.size());
            std::vector<uint8_t> sp(special.size());
            std::memcpy(sp.data(), special.c_str(), special.size());
            nb::gil_scoped_release rel;
            new (self) TokenIndex(std::move(toks), std::move(sp), vocab_size, std::move(stop_ids), add_prefix_space);
          },
          "tokens"_a, "special"_a, "vocab_size"_a, "stop_ids"_a, "add_prefix_space"_a)
      .def(
          "__init__",
          [](TokenIndex* self, const std::vector<nb::bytes>& tokens, nb::bytes special, int32_t vocab_size,
             std::vector<int32_t> stop_ids, bool add_prefix_space, nb::bytes cache) {
            std::vector<std::string> toks;
            toks.reserve(tokens.size());
            for (const auto& b : tokens) toks.emplace_back(b.c_str(), b.size());
            std::vector<uint8_t> sp(special.size());
            std::memcpy(sp.data(), special.c_str(), special.size());
            std::string blob(cache.c_str(), cache.size());
            nb::gil_scoped_release rel;
            new (self) TokenIndex(std::move(toks), std::move(sp), vocab_size, std::move(stop_ids), add_prefix_space,
                                  blob);
          },
          "tokens"_a, "special"_a, "vocab_size"_a, "stop_ids"_a, "add_prefix_space"_a, "cache"_a)
      .def("serialize",
           [](const TokenIndex& t) {
             std::string s = t.serialize();
             return nb::bytes(s.data(), s.size());
           })
      .def_prop_ro("vocab_size", &TokenIndex::vocab_size)
      .def_prop_ro("n_tokens", &TokenIndex::n_tokens)
      .def_prop_ro("words", &TokenIndex::words)
      .def_prop_ro("trie_nodes", [](const TokenIndex& t) { return t.trie().nodes.size(); })
      .def_prop_ro("memory_bytes", &TokenIndex::memory_bytes)
      .def_prop_ro("stop_ids", &TokenIndex::stop_ids)
      .def("string_lexeme_stats", [](const TokenIndex& t) {
        const auto& s = t.string_lexeme();
        const auto& e = s.entries[s.start];
        size_t inside = 0;
        for (uint32_t w : e.inside) inside += size_t(__builtin_popcount(w));
        nb::dict d;
        d["lexer_states"] = s.entries.size() - 1;
        d["inside"] = inside;
        d["exact_close"] = e.exact_close.size();
        d["suffix_tokens"] = e.suffixes.tok_ids.size();
        d["suffix_nodes"] = e.suffixes.nodes.size();
        return d;
      });

  nb::class_<CompiledGrammar>(m, "CompiledGrammar")
      .def_prop_ro("memory_bytes", &CompiledGrammar::memory_bytes)
      .def_prop_ro("num_states", [](const CompiledGrammar& g) { return g.automaton().num_states(); })
      .def_prop_ro("num_rows", [](const CompiledGrammar& g) { return g.automaton().num_rows(); })
      .def_prop_ro("num_nfa_states", [](const CompiledGrammar& g) { return g.automaton().nfa().num_states(); })
      .def_prop_ro("num_nfa_edges", [](const CompiledGrammar& g) { return g.automaton().nfa().edges.size(); })
      .def_prop_ro("num_nfa_eps", [](const CompiledGrammar& g) { return g.automaton().nfa().eps.size(); })
      .def_prop_ro("num_classes", [](const CompiledGrammar& g) { return g.automaton().num_classes(); })
      .def_prop_ro("stop_ids", &CompiledGrammar::stop_ids);

  m.def(
      "compile",
      [](std::shared_ptr<TokenIndex> index, nb::list rules, nb::list names, std::vector<int32_t> calls,
         int64_t max_nfa, int64_t max_dfa, int64_t max_stack, std::vector<int32_t> stop_ids,
         std::vector<int32_t> open_strings) {
        GrammarIR ir = convert_rules(rules, names);
        for (int32_t c : calls)
          if (c < 0 || c >= int32_t(ir.rules.size())) throw GrammarError("call rule index out of range");
        for (int32_t c : open_strings)
          if (c < 0 || c >= int32_t(ir.rules.size())) throw GrammarError("open string rule index out of range");
        ir.calls = std::move(calls);
        ir.open_strings = std::move(open_strings);
        Limits lim = make_limits(max_nfa, max_dfa, max_stack);
        nb::gil_scoped_release rel;
        auto a = std::make_shared<Automaton>(build_nfa(ir, lim), lim);
        return std::make_shared<CompiledGrammar>(std::move(index), std::move(a), lim, std::move(stop_ids));
      },
      "index"_a.none(), "rules"_a, "names"_a, "calls"_a, "max_nfa_states"_a = 0, "max_dfa_states"_a = 0,
      "max_stack_depth"_a = 0, "stop_ids"_a = std::vector<int32_t>{}, "open_strings"_a = std::vector<int32_t>{});

  nb::class_<Matcher>(m, "Matcher")
      .def(nb::init<std::shared_ptr<const CompiledGrammar>, int64_t>(), "grammar"_a, "max_tokens"_a = -1)
      .def(
          "accept_token",
          [](Matcher& m, int32_t id) {
            // Stepping through rows that exist costs less than a GIL hand-off; computing rows does not.
            if (m.accept_is_cheap(id)) return m.accept_token(id);
            nb::gil_scoped_release rel;
            return m.accept_token(id);
          },
          "token_id"_a, "Advance by one token; False (state unchanged) if the grammar does not allow it.")
      .def("accept_bytes",
           [](Matcher& m, nb::bytes b) {
             std::string s(b.c_str(), b.size());
             nb::gil_scoped_release rel;
             return m.accept_bytes(s);
           })
      .def("accept_tokens",
           [](Matcher& m, const std::vector<int32_t>& ids) {
             nb::gil_scoped_release rel;
             int32_t n = 0;
             for (int32_t t : ids) {
               if (!m.accept_token(t)) break;
               ++n;
             }
             return n;
           })
      .def("validate_tokens",
           [](Matcher& m, const std::vector<int32_t>& ids) {
             nb::gil_scoped_release rel;
             return m.validate_tokens(ids.data(), ids.size());
           })
      .def("fill_next_token_bitmask",
           [](Matcher& m, nb::handle bitmask, int64_t index) {
             const TokenIndex* idx = m.grammar().index();
             if (!idx) throw MatcherError("this grammar was compiled without a vocabulary");
             BitmaskRef hold;
             uint32_t* row = bitmask_row(bitmask, index, *idx, hold);
             // A cached mask is a copy, cheaper than releasing and taking back the GIL; anything to
             // compute (a walk, new automaton states) runs with the GIL released.
             if (!m.fill_mask_cached(row)) {
               nb::gil_scoped_release rel;
               m.fill_mask(row);
             }
             return true;
           },
           "bitmask"_a, "index"_a = 0,
           "Write the allowed tokens into row ``index`` of ``bitmask`` (bit set = allowed). Returns True "
           "(the mask must be applied).")
      .def("rollback", &Matcher::rollback, "num_tokens"_a = 1, "Undo the last ``num_tokens`` accepted tokens.")
      .def("reset", &Matcher::reset, "Back to the start (no tokens accepted).")
      .def("is_accepting", &Matcher::is_accepting, "The output so far is complete (a stop token is allowed).")
      .def("is_terminated", &Matcher::is_terminated, "A stop token was accepted.")
      .def("_assign", [](Matcher& a, const Matcher& b) { a = b; })
      .def("_mask_path", &Matcher::mask_path)
      .def("copy", [](const Matcher& m) { return Matcher(m); })
      .def("forced_bytes", [](const Matcher& m, size_t limit) {
        std::string s = m.forced_bytes(limit);
        return nb::bytes(s.data(), s.size());
      })
      .def_prop_ro("num_tokens", &Matcher::num_tokens)
      .def_prop_ro("max_tokens", &Matcher::max_tokens)
      .def_prop_ro("min_cost_to_finish", &Matcher::min_cost_to_finish);

  m.def(
      "batch_fill",
      [](std::vector<Matcher*> ms, I32Matrix bm, std::vector<int32_t> rows, int32_t threads) {
        if (rows.size() != ms.size()) throw MatcherError("one bitmask row index per matcher is needed");
        for (size_t i = 0; i < ms.size(); ++i) {
          const TokenIndex* idx = ms[i]->grammar().index();
          if (!idx) throw MatcherError("this grammar was compiled without a vocabulary");
          mask_row(bm, rows[i], *idx);
        }
        uint32_t* base = reinterpret_cast<uint32_t*>(bm.data());
        int64_t stride = int64_t(bm.shape(1));
        nb::gil_scoped_release rel;
        batch_fill(ms, base, stride, rows, threads);
      },
      "matchers"_a, "bitmask"_a, "rows"_a, "threads"_a);

  m.def(
      "apply_bitmask_f32",
      [](nb::ndarray<float, nb::ndim<2>, nb::device::cpu> logits, I32Matrix bm, std::vector<int32_t> rows) {
        if (logits.stride(1) != 1) throw MatcherError("logits rows must be contiguous");
        int64_t nrows = rows.empty() ? int64_t(logits.shape(0)) : int64_t(rows.size());
        if (rows.empty() && bm.shape(0) < logits.shape(0)) throw MatcherError("bitmask has fewer rows than logits");
        for (int32_t r : rows)
          if (r < 0 || r >= int64_t(logits.shape(0)) || r >= int64_t(bm.shape(0)))
            throw MatcherError("row index " + std::to_string(r) + " out of range");
        float* l = logits.data();
        int64_t stride = logits.stride(0), vocab = int64_t(logits.shape(1)), words = int64_t(bm.shape(1));
        const uint32_t* b = reinterpret_cast<const uint32_t*>(bm.data());
        nb::gil_scoped_release rel;
        apply_bitmask_f32(l, stride, b, words, rows.empty() ? nullptr : rows.data(), nrows, vocab);
      },
      "logits"_a, "bitmask"_a, "rows"_a);
}
