"""Engine adapters for the fcgrammar benchmarks.

Every adapter has the same interface:

    eng.build_tokenizer(tokenizer_json_path)   # once; timed by the caller
    state = eng.compile(schema_str)            # schema as a JSON string
    eng.fill_mask(state)                       # writes eng.bitmask (numpy int32 [1, ceil(V/32)])
    ok = eng.accept(state, token_id)           # False when the engine rejects the token
    eng.is_accepting(state)                    # not timed: may the output stop here?
    eng.memory_bytes(state)                    # engine-reported size of the compiled grammar, or None
    eng.allowed(token_id)                      # bit test on eng.bitmask (not timed)

Compile failures raise ``EngineError``; the harness catches every exception
per engine and per case, so one engine failing never stops the others.
Only the installed packages are used; every import is lazy so that a missing
engine is reported and skipped.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import numpy as np

from workload import LLAMA31_EOS_ID


class EngineError(RuntimeError):
    """The engine refused the schema or failed at run time."""


class SharedTokenizer:
    """Tokenizer material shared by the adapters (loaded once, outside the
    per-engine timings): the tokenizer.json text, the transformers fast
    tokenizer, and the byte string of every regular token."""

    def __init__(self, tokenizer_json_path: str, eos_id: int = LLAMA31_EOS_ID):
        self.path = tokenizer_json_path
        self.eos_id = eos_id
        with open(tokenizer_json_path, encoding="utf-8") as f:
            self.json_text = f.read()
        tj = json.loads(self.json_text)
        self.model_vocab: Dict[str, int] = tj["model"]["vocab"]
        self.added = {t["id"]: t["content"] for t in tj.get("added_tokens", [])}
        ids = list(self.model_vocab.values()) + list(self.added)
        self.vocab_size = max(ids) + 1          # 128,256 for Llama 3.1
        self.n_regular = len(self.model_vocab)  # 128,000
        self._hf = None
        self._token_bytes: Optional[List[Optional[bytes]]] = None

    @property
    def hf(self):
        if self._hf is None:
            from transformers import PreTrainedTokenizerFast  # type: ignore
            self._hf = PreTrainedTokenizerFast(
                tokenizer_file=self.path,
                bos_token=self.added.get(128000, None),
                eos_token=self.added.get(self.eos_id, None),
            )
        return self._hf

    @property
    def token_bytes(self) -> List[Optional[bytes]]:
        """Raw bytes of each regular token (byte-level BPE decoding); None for
        special/added tokens."""
        if self._token_bytes is None:
            bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
                + list(range(ord("®"), ord("ÿ") + 1))
            cs = bs[:]
            n = 0
            for b in range(256):
                if b not in bs:
                    bs.append(b)
                    cs.append(256 + n)
                    n += 1
            u2b = {chr(c): b for b, c in zip(bs, cs)}
            out: List[Optional[bytes]] = [None] * self.vocab_size
            for s, i in self.model_vocab.items():
                out[i] = bytes(u2b[ch] for ch in s)
            self._token_bytes = out
        return self._token_bytes


def new_bitmask(vocab_size: int) -> np.ndarray:
    return np.full((1, (vocab_size + 31) // 32), -1, dtype=np.int32)


class Engine:
    name = "engine"
    display = "engine"
    notes: List[str]

    def __init__(self, shared: SharedTokenizer):
        self.shared = shared
        self.vocab_size = shared.vocab_size
        self.bitmask = new_bitmask(self.vocab_size)
        self.notes = []

    @staticmethod
    def available() -> Optional[str]:
        """None when importable, else the reason it is not."""
        return None

    def version(self) -> str:
        return "?"

    def build_tokenizer(self, tokenizer_json_path: str) -> None:
        raise NotImplementedError

    def compile(self, schema_str: str) -> Any:
        raise NotImplementedError

    def fill_mask(self, state: Any) -> None:
        raise NotImplementedError

    def accept(self, state: Any, token_id: int) -> bool:
        raise NotImplementedError

    def is_accepting(self, state: Any) -> bool:
        return True

    def memory_bytes(self, state: Any) -> Optional[int]:
        return None

    def allowed(self, token_id: int) -> bool:
        if token_id < 0 or (token_id >> 5) >= self.bitmask.shape[1]:
            return False
        return bool((int(self.bitmask[0, token_id >> 5]) >> (token_id & 31)) & 1)


def _pkg_version(dist: str) -> str:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return "?"


# --------------------------------------------------------------------------
# fcgrammar (the system under test)
# --------------------------------------------------------------------------

class FcgrammarEngine(Engine):
    name = "fcgrammar"
    display = "fcgrammar"
    # keyword arguments for Compiler.compile_json_schema; the harness's
    # --fcg-options JSON is merged in (e.g. a whitespace-style option)
    options: Dict[str, Any] = {"compat": "bfcl"}

    @staticmethod
    def available() -> Optional[str]:
        try:
            import fcgrammar  # noqa: F401
            for attr in ("Vocabulary", "Compiler", "Matcher", "allocate_token_bitmask"):
                if not hasattr(fcgrammar, attr):
                    return "fcgrammar has no %s yet" % attr
            return None
        except Exception as ex:
            return "not importable (%s: %s)" % (type(ex).__name__, ex)

    def version(self) -> str:
        import fcgrammar as fcg
        return getattr(fcg, "__version__", _pkg_version("fcgrammar"))

    def build_tokenizer(self, tokenizer_json_path: str) -> None:
        # timed: reading tokenizer.json + building the token index (Compiler)
        import fcgrammar as fcg
        self.fcg = fcg
        self.vocab = fcg.Vocabulary.from_tokenizer_json(tokenizer_json_path)
        self.compiler = fcg.Compiler(self.vocab)
        self.vocab_size = int(self.vocab.size)
        self.bitmask = np.ascontiguousarray(fcg.allocate_token_bitmask(1, self.vocab_size))
        self.notes.append("Vocabulary.from_tokenizer_json; Compiler(vocab); "
                          "compile_json_schema(schema_str, **%r); Matcher(grammar)" % (self.options,))

    def compile(self, schema_str: str) -> Any:
        try:
            grammar = self.compiler.compile_json_schema(schema_str, **self.options)
        except TypeError as ex:
            if "compat" not in str(ex) or "compat" not in self.options:
                raise
            # an fcgrammar without the compat option: the schema is standard anyway
            self.options = {k: v for k, v in self.options.items() if k != "compat"}
            self.notes.append("compat='bfcl' not accepted (%s); compiled without it" % ex)
            grammar = self.compiler.compile_json_schema(schema_str, **self.options)
        m = self.fcg.Matcher(grammar)
        return (grammar, m)

    def fill_mask(self, state: Any) -> None:
        state[1].fill_next_token_bitmask(self.bitmask, 0)

    def accept(self, state: Any, token_id: int) -> bool:
        return bool(state[1].accept_token(token_id))

    def is_accepting(self, state: Any) -> bool:
        return bool(state[1].is_accepting())

    def memory_bytes(self, state: Any) -> Optional[int]:
        v = getattr(state[0], "memory_size_bytes", None)
        if callable(v):
            v = v()
        return int(v) if v is not None else None


# --------------------------------------------------------------------------
# xgrammar
# --------------------------------------------------------------------------

class XgrammarEngine(Engine):
    name = "xgrammar"
    display = "xgrammar"

    @staticmethod
    def available() -> Optional[str]:
        try:
            import xgrammar  # noqa: F401
            return None
        except Exception as ex:
            return "not importable (%s: %s)" % (type(ex).__name__, ex)

    def version(self) -> str:
        return _pkg_version("xgrammar")

    def build_tokenizer(self, tokenizer_json_path: str) -> None:
        import xgrammar as xgr
        self.xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(
            self.shared.hf, vocab_size=self.vocab_size, stop_token_ids=[self.shared.eos_id])
        # one thread; no compile cache, so every case is a cold compile
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.notes.append("GrammarCompiler(max_threads=1, cache_enabled=False); "
                          "compile_json_schema(any_whitespace=False, separators=(',', ':'))")

    def compile(self, schema_str: str) -> Any:
        cg = self.compiler.compile_json_schema(
            schema_str, any_whitespace=False, separators=(",", ":"))
        return (cg, self.xgr.GrammarMatcher(cg))

    def fill_mask(self, state: Any) -> None:
        state[1].fill_next_token_bitmask(self.bitmask, 0)

    def accept(self, state: Any, token_id: int) -> bool:
        return bool(state[1].accept_token(token_id))

    def is_accepting(self, state: Any) -> bool:
        return bool(state[1].is_completed())

    def memory_bytes(self, state: Any) -> Optional[int]:
        return int(state[0].memory_size_bytes)


# --------------------------------------------------------------------------
# llguidance
# --------------------------------------------------------------------------

class LlguidanceEngine(Engine):
    name = "llguidance"
    display = "llguidance"
    # JSON compile options; the harness adds json_allow_general_unicode_escapes
    # with --llg-unicode-escapes (off by default, as in llguidance)
    options: Dict[str, Any] = {"whitespace_flexible": False}

    @staticmethod
    def available() -> Optional[str]:
        try:
            import llguidance  # noqa: F401
            import llguidance.numpy  # noqa: F401
            return None
        except Exception as ex:
            return "not importable (%s: %s)" % (type(ex).__name__, ex)

    def version(self) -> str:
        return _pkg_version("llguidance")

    def build_tokenizer(self, tokenizer_json_path: str) -> None:
        import llguidance
        import llguidance.numpy as llnp
        self.llg = llguidance
        self.llnp = llnp
        # LLTokenizer takes the tokenizer.json text itself (this is what
        # llguidance.hf.from_tokenizer passes); default slices.
        self.tok = llguidance.LLTokenizer(self.shared.json_text, n_vocab=self.vocab_size,
                                          eos_token=self.shared.eos_id)
        self.notes.append("LLTokenizer(tokenizer.json text, default slices); "
                          "grammar_from_json_schema(defaults=%r)" % (self.options,))

    def compile(self, schema_str: str) -> Any:
        LLMatcher = self.llg.LLMatcher
        grammar = LLMatcher.grammar_from_json_schema(schema_str, defaults=self.options)
        m = LLMatcher(self.tok, grammar, log_level=0)
        if m.is_error():
            raise EngineError(m.get_error())
        return m

    def fill_mask(self, m: Any) -> None:
        self.llnp.fill_next_token_bitmask(m, self.bitmask, 0)

    def accept(self, m: Any, token_id: int) -> bool:
        return bool(m.consume_token(token_id)) and not m.is_error()

    def is_accepting(self, m: Any) -> bool:
        return bool(m.is_accepting())

    def check_error(self, m: Any) -> Optional[str]:
        return m.get_error() if m.is_error() else None


# --------------------------------------------------------------------------
# outlines-core
# --------------------------------------------------------------------------

class OutlinesEngine(Engine):
    name = "outlines"
    display = "outlines-core"

    @staticmethod
    def available() -> Optional[str]:
        try:
            import outlines_core  # noqa: F401
            return None
        except Exception as ex:
            return "not importable (%s: %s)" % (type(ex).__name__, ex)

    def version(self) -> str:
        return _pkg_version("outlines_core")

    def build_tokenizer(self, tokenizer_json_path: str) -> None:
        import outlines_core as oc
        from outlines_core.json_schema import build_regex_from_schema
        self.oc = oc
        self.build_regex = build_regex_from_schema
        eos = self.shared.eos_id
        m: Dict[bytes, List[int]] = {}
        for i, b in enumerate(self.shared.token_bytes):
            if b is None or i == eos:
                continue
            m.setdefault(b, []).append(i)
        self.vocab = oc.Vocabulary(eos, m)
        self.notes.append("Vocabulary(eos, {token bytes: ids}) over the 128,000 regular tokens; "
                          "build_regex_from_schema(whitespace_pattern=''); Index(regex, vocab); Guide")

    def compile(self, schema_str: str) -> Any:
        regex = self.build_regex(schema_str, "")
        index = self.oc.Index(regex, self.vocab)
        return (index, self.oc.Guide(index))

    def fill_mask(self, state: Any) -> None:
        bm = self.bitmask
        state[1].write_mask_into(bm.ctypes.data, bm.size, 4)

    def accept(self, state: Any, token_id: int) -> bool:
        try:
            state[1].advance(token_id, False)
            return True
        except Exception:
            return False

    def is_accepting(self, state: Any) -> bool:
        return bool(state[1].is_finished())


# --------------------------------------------------------------------------
# lm-format-enforcer
# --------------------------------------------------------------------------

def build_lmfe_tokenizer_data(tokenizer: Any, vocab_size: int) -> Any:
    """Same as lmformatenforcer.integrations.transformers.build_token_enforcer_tokenizer_data
    (use_bitmask=False).  lm-format-enforcer 0.11.x imports
    ``transformers.tokenization_utils.PreTrainedTokenizerBase``, which
    transformers 5 removed, so its integration module cannot be imported; this
    is its code, unchanged in substance."""
    import functools
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData
    try:
        from lmformatenforcer.integrations.transformers import \
            build_token_enforcer_tokenizer_data  # type: ignore
        return build_token_enforcer_tokenizer_data(tokenizer, use_bitmask=False,
                                                   vocab_size=vocab_size)
    except ImportError:
        pass
    token_0 = tokenizer.encode("0", add_special_tokens=False)[-1]
    special = set(tokenizer.all_special_ids)
    regular_tokens = []
    for token_idx in range(vocab_size):
        if token_idx in special:
            continue
        decoded_after_0 = tokenizer.decode([token_0, token_idx])[1:]
        decoded_regular = tokenizer.decode([token_idx])
        is_word_start_token = len(decoded_after_0) > len(decoded_regular)
        regular_tokens.append((token_idx, decoded_after_0, is_word_start_token))

    def _decode_function(tok: Any, tokens: List[int]) -> str:
        return tok.decode(tokens).rstrip("\ufffd")

    decode_fn = functools.partial(_decode_function, tokenizer)
    return TokenEnforcerTokenizerData(regular_tokens, decode_fn, tokenizer.eos_token_id,
                                      False, vocab_size)


class LmfeEngine(Engine):
    """lm-format-enforcer has no separate accept step: TokenEnforcer.get_allowed_tokens
    takes the whole generated sequence and advances its character-level parser
    by the last token, then walks the token trie.  fill_mask = that call plus
    packing the returned id list into the int32 bitmask (numpy); accept = a bit
    test plus appending the token to the sequence."""

    name = "lmfe"
    display = "lm-format-enforcer"

    @staticmethod
    def available() -> Optional[str]:
        try:
            import lmformatenforcer  # noqa: F401
            from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData  # noqa: F401
            import transformers  # noqa: F401
            return None
        except Exception as ex:
            return "not importable (%s: %s)" % (type(ex).__name__, ex)

    def version(self) -> str:
        return _pkg_version("lm-format-enforcer")

    def build_tokenizer(self, tokenizer_json_path: str) -> None:
        import lmformatenforcer as lmfe
        self.lmfe = lmfe
        # regular tokens only (ids < 128,000); EOS is added by the enforcer
        self.tokdata = build_lmfe_tokenizer_data(self.shared.hf, self.shared.n_regular)
        self._bits = np.zeros(self.bitmask.shape[1] * 32, dtype=np.bool_)
        self.notes.append("build_token_enforcer_tokenizer_data(use_bitmask=False); "
                          "JsonSchemaParser (its default whitespace rules); TokenEnforcer")

    def compile(self, schema_str: str) -> Any:
        from lmformatenforcer import JsonSchemaParser, TokenEnforcer
        parser = JsonSchemaParser(json.loads(schema_str))
        enforcer = TokenEnforcer(self.tokdata, parser)
        return {"enf": enforcer, "seq": []}

    def fill_mask(self, state: Any) -> None:
        allowed = state["enf"].get_allowed_tokens(state["seq"])
        ids = allowed.allowed_tokens if hasattr(allowed, "allowed_tokens") else allowed
        bits = self._bits
        bits[:] = False
        if len(ids):
            bits[np.asarray(ids, dtype=np.int64)] = True
        self.bitmask[0, :] = np.packbits(bits, bitorder="little").view(np.int32)

    def accept(self, state: Any, token_id: int) -> bool:
        if not self.allowed(token_id):
            return False
        state["seq"].append(token_id)
        return True

    def is_accepting(self, state: Any) -> bool:
        st = state["enf"].prefix_states.get(tuple(state["seq"]))
        return bool(st is not None and st.parser.can_end())


ENGINES = {
    "fcgrammar": FcgrammarEngine,
    "xgrammar": XgrammarEngine,
    "llguidance": LlguidanceEngine,
    "outlines": OutlinesEngine,
    "lmfe": LmfeEngine,
}
