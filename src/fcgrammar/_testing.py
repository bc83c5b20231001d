"""Test helpers: byte-level checks of a grammar without a tokenizer (uses the C++ engine)."""
from __future__ import annotations

from . import _core
from .grammar import Grammar


def compile_bytes(grammar: Grammar):
    """A compiled grammar without vocabulary: only byte-level matching is available."""
    grammar.check()
    return _core.compile(None, list(grammar.rules), list(grammar.names), sorted(grammar.calls),
                         open_strings=sorted(grammar.open_strings))


def compile_bytes_or_none(grammar: Grammar):
    """compile_bytes, or None when the grammar's language is empty (a schema no instance satisfies)."""
    from .errors import GrammarError
    try:
        return compile_bytes(grammar)
    except GrammarError as e:
        if "empty" in str(e):
            return None
        raise


def accepts(grammar, data) -> bool:
    """True iff ``data`` (bytes or str) is a complete sentence of ``grammar`` (a Grammar or compile_bytes result)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    g = compile_bytes(grammar) if isinstance(grammar, Grammar) else grammar
    m = _core.Matcher(g, -1)
    return bool(m.accept_bytes(bytes(data)) and m.is_accepting())


def prefix_ok(grammar, data) -> bool:
    """True iff ``data`` can be extended to a sentence of ``grammar``."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    g = compile_bytes(grammar) if isinstance(grammar, Grammar) else grammar
    m = _core.Matcher(g, -1)
    return bool(m.accept_bytes(bytes(data)))
