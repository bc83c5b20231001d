"""Compiler: grammars (and the front ends that produce them) to CompiledGrammar over a vocabulary."""
from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import _core, _gc
from .grammar import Grammar

# Per-process cache of token indexes, keyed by the vocabulary's hash (built once per tokenizer).
_INDEX_CACHE: Dict[str, Any] = {}
_INDEX_LOCK = threading.Lock()


_CACHE_MAGIC = b"FCGIDX01"


def _cache_dir(cache_dir) -> Optional[Path]:
    d = cache_dir if cache_dir is not None else os.environ.get("FCGRAMMAR_CACHE_DIR")
    return Path(d).expanduser() if d else None


def _load_cached(path: Path, key: str, args: tuple):
    """The cached index, or None when absent, stale or corrupt (never trusted: header, hash and checksum)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_CACHE_MAGIC) + 64 + 32
    if len(data) < head or not data.startswith(_CACHE_MAGIC):
        return None
    if data[len(_CACHE_MAGIC):len(_CACHE_MAGIC) + 64] != key.encode("ascii"):
        return None
    digest, payload = data[len(_CACHE_MAGIC) + 64:head], data[head:]
    if hashlib.sha256(payload).digest() != digest:
        return None
    try:
        return _core.TokenIndex(*args, payload)
    except Exception:  # a structurally inconsistent cache: rebuild
        return None


def _store_cached(path: Path, key: str, idx) -> None:
    payload = idx.serialize()
    blob = _CACHE_MAGIC + key.encode("ascii") + hashlib.sha256(payload).digest() + payload
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(blob)
        os.replace(tmp, path)  # atomic: readers never see a half-written file
    except OSError:
        pass  # a cache is an optimisation; an unwritable directory is not an error


def token_index(vocab, cache_dir=None) -> Any:
    """The C++ token index (trie + precomputed lexical masks) of ``vocab``, built once per process.

    With ``cache_dir`` (or ``$FCGRAMMAR_CACHE_DIR``) it is also kept on disk, keyed by the vocabulary's
    hash; a stale or corrupt file is detected (hash, checksum, structural checks) and rebuilt.
    """
    key = vocab.hash()
    with _INDEX_LOCK:
        idx = _INDEX_CACHE.get(key)
        if idx is not None:
            return idx
        special = bytearray(len(vocab.tokens))
        for i in vocab.special_ids:
            if 0 <= i < len(special):
                special[i] = 1
        args = (list(vocab.tokens), bytes(special), int(vocab.size), [int(s) for s in vocab.stop_ids],
                bool(vocab.add_prefix_space))
        cdir = _cache_dir(cache_dir)
        path = cdir / f"token-index-{key}.bin" if cdir else None
        if path is not None:
            idx = _load_cached(path, key, args)
            if idx is not None:
                _INDEX_CACHE[key] = idx
                return idx
        done = threading.Event()

        def _progress() -> None:  # only speaks up when the build is slow
            if not done.wait(1.0):
                print(f"fcgrammar: indexing {len(vocab.tokens)} tokens of {vocab.name or 'vocabulary'}...",
                      file=sys.stderr, flush=True)

        t = threading.Thread(target=_progress, daemon=True)
        t.start()
        t0 = time.perf_counter()
        try:
            idx = _core.TokenIndex(*args)
        finally:
            done.set()
        elapsed = time.perf_counter() - t0
        if elapsed > 1.0:
            print(f"fcgrammar: token index built in {elapsed:.1f} s", file=sys.stderr, flush=True)
        if path is not None:
            _store_cached(path, key, idx)
        _INDEX_CACHE[key] = idx
        return idx


class CompiledGrammar:
    """A grammar compiled against a vocabulary. Reusable and thread-safe: many matchers share one."""

    __slots__ = ("_core", "vocab", "grammar", "tool_turn", "__weakref__")

    def __init__(self, core, vocab, grammar: Grammar, tool_turn=None):
        self._core = core
        self.vocab = vocab
        self.grammar = grammar
        self.tool_turn = tool_turn  # set for grammars from compile_tools (format, tools, tool_choice)

    @property
    def tool_format(self):
        """The ToolFormat of a grammar from compile_tools (None otherwise)."""
        return self.tool_turn.format if self.tool_turn is not None else None

    @property
    def memory_size_bytes(self) -> int:
        """Bytes held by the automaton and its mask caches (grows as states are visited)."""
        return int(self._core.memory_bytes)

    @property
    def stop_ids(self) -> List[int]:
        """Tokens that end this grammar's output; a matcher allows them exactly when the output is complete."""
        return list(self._core.stop_ids)

    @property
    def num_states(self) -> int:
        return int(self._core.num_states)

    def __repr__(self) -> str:
        return (f"CompiledGrammar(rules={len(self.grammar.rules)}, nfa_states={self._core.num_nfa_states}, "
                f"dfa_states={self._core.num_states}, vocab={self.vocab.size if self.vocab else None})")


class Compiler:
    """Compiles JSON schemas and grammars for one vocabulary.

    Limits ``max_nfa_states``, ``max_dfa_states``, ``max_stack_depth`` (0 keeps the defaults) turn runaway
    grammars into :class:`~fcgrammar.errors.LimitError`. ``cache_dir`` keeps the token index on disk
    (default ``$FCGRAMMAR_CACHE_DIR``, unset: memory only).
    """

    def __init__(self, vocab, *, max_nfa_states: int = 0, max_dfa_states: int = 0, max_stack_depth: int = 0,
                 cache_dir=None):
        self.vocab = vocab
        self._limits = (int(max_nfa_states), int(max_dfa_states), int(max_stack_depth))
        self._index = token_index(vocab, cache_dir) if vocab is not None else None

    def compile_grammar(self, grammar: Grammar, *, stop_ids=None) -> CompiledGrammar:
        """Compile a grammar. ``stop_ids``: the tokens that end its output (allowed exactly when it is
        complete); default the vocabulary's stop tokens."""
        grammar.check()
        stops = [int(s) for s in stop_ids] if stop_ids else []
        core = _core.compile(self._index, list(grammar.rules), list(grammar.names), sorted(grammar.calls),
                             *self._limits, stops, sorted(grammar.open_strings))
        return CompiledGrammar(core, self.vocab, grammar)

    def compile_tools(self, tools=None, format=None, tool_choice=None, parallel_tool_calls: bool = True, *,
                      functions=None, function_call=None, allow_preamble: bool = False, reasoning=None,
                      **options) -> CompiledGrammar:
        """One grammar for a whole assistant turn in a model family's tool-call syntax.

        tools: OpenAI ``tools`` (also bare function dicts, Python callables, Pydantic models); the legacy
        ``functions``/``function_call`` pair is accepted too. format: a preset name (``fcgrammar.formats.list()``)
        or a ToolFormat. tool_choice: ``"auto"`` | ``"none"`` | ``"required"`` | a named function |
        ``{"type": "allowed_tools", ...}`` (OpenAI semantics; default ``auto`` with tools, ``none`` without).
        parallel_tool_calls: False allows at most one call. allow_preamble: with ``required``/named, let text
        precede the calls where the family allows it. reasoning: None (the family's reasoning block is
        optional), True (required) or False (not allowed). Other options go to the arguments' JSON Schema
        compiler (``compat="bfcl"``, ``whitespace=``, ``separators=``, ``any_order=``...).

        The result's stop tokens are the format's end-of-turn tokens; :func:`fcgrammar.parse` reads its output.
        """
        from .formats import get as get_format
        from .tool_grammar import build_turn
        from .tool_schema import normalize_tool_choice, normalize_tools, tool_name

        if format is None:
            raise ValueError("compile_tools needs format= (a preset name from fcgrammar.formats.names(), "
                             "or fcgrammar.formats.detect(chat_template))")
        fmt = get_format(format)
        norm = normalize_tools(tools, functions)
        mode, allowed = normalize_tool_choice(tool_choice, function_call, tools=[tool_name(t) for t in norm])
        with _gc.paused():  # the whole turn's expression trees, not only each tool's schema
            grammar, turn, stops = build_turn(norm, fmt, self.vocab, mode, allowed, parallel_tool_calls,
                                              allow_preamble=allow_preamble, json_options=options,
                                              reasoning=reasoning)
        grammar.check()
        core = _core.compile(self._index, list(grammar.rules), list(grammar.names), sorted(grammar.calls),
                             *self._limits, [int(x) for x in stops], sorted(grammar.open_strings))
        return CompiledGrammar(core, self.vocab, grammar, turn)

    def compile_json_schema(self, schema, **options) -> CompiledGrammar:
        """Compile a JSON schema (dict, JSON text or bool). Options: see :func:`fcgrammar.json_schema.schema_to_grammar`."""
        from .json_schema import schema_to_grammar

        return self.compile_grammar(schema_to_grammar(schema, **options))
