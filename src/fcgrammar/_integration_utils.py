"""Helpers shared by the engine integrations (``fcgrammar.hf``, ``fcgrammar.llama_cpp``, ``fcgrammar.sglang``).

Nothing here imports an engine: only numpy and fcgrammar itself.
"""
from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from typing import Any, Dict, Hashable, Iterable, List, Optional, Sequence

import numpy as np

from .compiler import CompiledGrammar, Compiler

# ------------------------------------------------------------------------------------------------ caches
_COMPILERS: Dict[str, Compiler] = {}
_COMPILERS_LOCK = threading.Lock()


def compiler_for(vocab) -> Compiler:
    """One :class:`Compiler` per vocabulary (keyed by its hash) and per process."""
    key = vocab.hash()
    with _COMPILERS_LOCK:
        c = _COMPILERS.get(key)
        if c is None:
            c = _COMPILERS[key] = Compiler(vocab)
        return c


class LRU:
    """A small thread-safe LRU cache for compiled grammars."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._d: "OrderedDict[Hashable, Any]" = OrderedDict()
        self._lock = threading.Lock()

    def get_or_create(self, key: Hashable, make):
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
                return v
        v = make()  # outside the lock: compiling may take milliseconds
        with self._lock:
            self._d[key] = v
            self._d.move_to_end(key)
            while len(self._d) > self.capacity:
                self._d.popitem(last=False)
        return v

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


_GRAMMARS = LRU(128)


def canonical_json(obj: Any) -> str:
    """A stable cache key for JSON-like values (tools lists, schemas, tool_choice)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _compile_tools_api(compiler: Compiler):
    fn = getattr(compiler, "compile_tools", None)
    if fn is None:
        raise NotImplementedError(
            "this fcgrammar build has no Compiler.compile_tools (tool-call formats, issue 3); "
            "compile a grammar yourself (e.g. compiler.compile_json_schema) and pass it instead")
    return fn


def compile_tools_cached(vocab, tools: Sequence[dict], *, format: Optional[str], tool_choice: Any = "auto",
                         parallel_tool_calls: bool = True, **schema_options) -> CompiledGrammar:
    """``Compiler.compile_tools`` memoised on (vocabulary, tools, format, tool_choice, options)."""
    compiler = compiler_for(vocab)
    key = (vocab.hash(), canonical_json(list(tools or [])), format, canonical_json(tool_choice),
           bool(parallel_tool_calls), canonical_json(schema_options))
    fn = _compile_tools_api(compiler)
    return _GRAMMARS.get_or_create(key, lambda: fn(list(tools or []), format=format, tool_choice=tool_choice,
                                                  parallel_tool_calls=parallel_tool_calls, **schema_options))


def compile_json_schema_cached(vocab, schema: Any, **options) -> CompiledGrammar:
    compiler = compiler_for(vocab)
    key = (vocab.hash(), "json", canonical_json(schema), canonical_json(options))
    return _GRAMMARS.get_or_create(key, lambda: compiler.compile_json_schema(schema, **options))


def detect_format(chat_template: Optional[str], explicit: Optional[str] = None) -> Optional[str]:
    """The tool format: ``explicit`` if given, else detected from the chat template (None when unknown)."""
    if explicit:
        return explicit
    if not chat_template:
        return None
    try:
        # the function, from its module (the package attribute ``formats.detect`` is shadowed by the
        # submodule of the same name once that is imported)
        from .formats.detect import detect
    except ImportError:
        return None
    return detect(chat_template)


def require_format(chat_template: Optional[str], explicit: Optional[str], where: str) -> str:
    fmt = detect_format(chat_template, explicit)
    if fmt is None:
        known = ""
        try:
            from . import formats

            known = ", ".join(formats.names())
        except Exception:
            pass
        raise ValueError(
            f"{where}: cannot detect the tool-call format from the chat template; pass format=... "
            + (f"(one of: {known})" if known else ""))
    return fmt


def parse_output(grammar: CompiledGrammar, token_ids: Sequence[int]) -> dict:
    """``fcgrammar.parse`` of the generated tokens (the OpenAI assistant message)."""
    import fcgrammar

    parse = getattr(fcgrammar, "parse", None)
    if parse is None:
        raise NotImplementedError("this fcgrammar build has no fcgrammar.parse (tool-call formats, issue 3)")
    return parse(grammar, [int(t) for t in token_ids])


# ------------------------------------------------------------------------------------------------ masks
def set_only(row: np.ndarray, token_ids: Iterable[int]) -> None:
    """Make a bitmask row allow exactly ``token_ids``."""
    row[:] = 0
    u = row.view(np.uint32)
    for t in token_ids:
        t = int(t)
        if 0 <= t < row.shape[0] * 32:
            u[t >> 5] |= np.uint32(1 << (t & 31))


# ------------------------------------------------------------------------------------------------ vocabularies
_VOCABS: "weakref.WeakKeyDictionary[Any, Dict[Any, Any]]" = weakref.WeakKeyDictionary()
_VOCABS_LOCK = threading.Lock()


def cached_per_object(obj: Any, key: Hashable, make):
    """Memoise ``make()`` on ``obj`` (weakly: the cache dies with the object) under ``key``."""
    try:
        with _VOCABS_LOCK:
            per = _VOCABS.get(obj)
            if per is not None and key in per:
                return per[key]
    except TypeError:  # not weak-referenceable
        return make()
    v = make()
    with _VOCABS_LOCK:
        _VOCABS.setdefault(obj, {})[key] = v
    return v


def tool_names(tools: Optional[Sequence[dict]]) -> List[str]:
    out = []
    for t in tools or []:
        f = t.get("function", t) if isinstance(t, dict) else {}
        if isinstance(f, dict) and "name" in f:
            out.append(str(f["name"]))
    return out
