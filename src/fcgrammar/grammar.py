"""Grammar IR: the language every front end (JSON schema, regex, tool-call formats) lowers to.

A :class:`Grammar` is a list of rules; rule 0 is the root. Each rule's body is an expression made of
plain tuples (cheap to build, hashable, and walked directly by the C++ automaton builder):

====================  ==========================================================================
``lit(b"...")``       exactly these bytes
``cp(ranges)``        one Unicode code point from ``ranges`` (inclusive ``(lo, hi)`` pairs), UTF-8
``cp(ranges, json=True)``  one code point *inside a JSON string*: its raw UTF-8 where JSON allows it
                      raw (not ``"``, ``\\`` or a control character) or any of its JSON escapes
                      (``\\n``, ``\\"``, ``\\u00e9``, surrogate pairs, any hex case)
``byte(ranges)``      one raw byte in ``ranges``
``seq(a, b, ...)``    concatenation (``seq()`` is the empty string)
``alt(a, b, ...)``    alternation (``alt()`` is the empty language)
``rep(x, lo, hi)``    ``x`` repeated ``lo``..``hi`` times, ``hi=-1`` for unbounded
``ref(i)``            the body of rule ``i`` (recursion allowed, left recursion is not)
``tok(id)``           one special token, matched by token id (never by its text)
``excluding(names, ranges)``  the *inside* of a JSON string (no quotes) over the code points ``ranges``,
                      JSON-encoded, whose decoded value is none of ``names`` ("any key but these"):
                      a trie with one small decoder per character, where the equivalent regular
                      expression takes about five times the states. ``ranges`` holds every surrogate
                      (then no name leaves the BMP) or none. :func:`fcgrammar.json_schema.expand_excluding`
                      writes the same language with the nodes above, for rewriters of string syntax.
``excluding_identifier(names)``  an ASCII identifier ``[A-Za-z_][A-Za-z0-9_]*`` that is none of ``names``
                      (the same node kind, built as a trie of bytes)
====================  ==========================================================================

The C++ side (``csrc/grammar.cc``) turns this into a byte-level automaton: rules that are not recursive
are inlined, recursive ones become calls on a stack. Expressions are structural: equal tuples mean equal
languages, which front ends use to share work.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

# Node kinds (first element of each tuple). Kept in sync with csrc/grammar.h (enum class Op).
LIT, CP, BYTE, SEQ, ALT, REP, REF, TOK, EXCL = range(9)

Expr = tuple
Ranges = Tuple[Tuple[int, int], ...]

MAX_CODEPOINT = 0x10FFFF
ANY_CODEPOINT: Ranges = ((0, MAX_CODEPOINT),)

EMPTY: Expr = (SEQ, ())
NOTHING: Expr = (ALT, ())


def lit(data) -> Expr:
    """Exactly these bytes (``str`` is UTF-8 encoded)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return (LIT, bytes(data))


def _norm_ranges(ranges: Iterable[Sequence[int]], top: int) -> Ranges:
    rs = sorted((int(lo), int(hi)) for lo, hi in ranges)
    out: List[Tuple[int, int]] = []
    for lo, hi in rs:
        if lo > hi or lo < 0 or hi > top:
            raise ValueError(f"bad range ({lo}, {hi}) (must satisfy 0 <= lo <= hi <= {top})")
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def cp(ranges: Iterable[Sequence[int]] = ANY_CODEPOINT, json: bool = False) -> Expr:
    """One code point from ``ranges``; with ``json=True``, JSON-string encoded (raw or escaped)."""
    return (CP, _norm_ranges(ranges, MAX_CODEPOINT), bool(json))


def byte(ranges: Iterable[Sequence[int]]) -> Expr:
    """One raw byte from ``ranges``."""
    return (BYTE, _norm_ranges(ranges, 255))


def seq(*items: Expr) -> Expr:
    flat: List[Expr] = []
    for it in items:
        if it[0] == SEQ:
            flat.extend(it[1])
        elif it == NOTHING:
            return NOTHING
        else:
            flat.append(it)
    # merge adjacent literals
    merged: List[Expr] = []
    for it in flat:
        if it[0] == LIT and merged and merged[-1][0] == LIT:
            merged[-1] = (LIT, merged[-1][1] + it[1])
        else:
            merged.append(it)
    if len(merged) == 1:
        return merged[0]
    return (SEQ, tuple(merged))


def alt(*items: Expr) -> Expr:
    flat: List[Expr] = []
    seen = set()
    for it in items:
        parts = it[1] if it[0] == ALT else (it,)
        for p in parts:
            if p not in seen:
                seen.add(p)
                flat.append(p)
    if len(flat) == 1:
        return flat[0]
    return (ALT, tuple(flat))


def rep(x: Expr, lo: int, hi: int = -1) -> Expr:
    if lo < 0 or (hi != -1 and hi < lo):
        raise ValueError(f"bad repetition bounds {{{lo},{hi}}}")
    if hi == 0:
        return EMPTY
    if lo == 1 and hi == 1:
        return x
    return (REP, x, int(lo), int(hi))


def opt(x: Expr) -> Expr:
    return rep(x, 0, 1)


def star(x: Expr) -> Expr:
    return rep(x, 0, -1)


def plus(x: Expr) -> Expr:
    return rep(x, 1, -1)


def ref(rule: int) -> Expr:
    return (REF, int(rule))


def tok(token_id: int) -> Expr:
    return (TOK, int(token_id))


def excluding(names: Iterable[str], ranges: Iterable[Sequence[int]] = ANY_CODEPOINT) -> Expr:
    """A JSON string body whose decoded value is none of ``names`` (see the table above)."""
    rs = _norm_ranges(ranges, MAX_CODEPOINT)
    names = tuple(sorted(set(str(n) for n in names)))
    sur = [lo <= 0xDFFF and hi >= 0xD800 for lo, hi in rs]
    if any(sur) and not any(lo <= 0xD800 and hi >= 0xDFFF for lo, hi in rs):
        raise ValueError("excluding(): the code points must hold every surrogate or none")
    if any(sur) and any(ord(c) > 0xFFFF for n in names for c in n):
        raise ValueError("excluding(): names outside the BMP need code points without surrogates")
    return (EXCL, names, rs, True)


def excluding_identifier(names: Iterable[str]) -> Expr:
    """An ASCII identifier ``[A-Za-z_][A-Za-z0-9_]*`` that is none of ``names`` (others cannot occur)."""
    return (EXCL, tuple(sorted(set(str(n) for n in names))), (), False)


def char_set(chars: str) -> Ranges:
    """Ranges for the code points of ``chars``."""
    return _norm_ranges(((ord(c), ord(c)) for c in chars), MAX_CODEPOINT)


class Grammar:
    """A list of named rules; rule 0 is the start rule."""

    __slots__ = ("rules", "names", "calls", "open_strings")

    def __init__(self) -> None:
        self.rules: List[Optional[Expr]] = []
        self.names: List[str] = []
        self.calls: set = set()
        self.open_strings: set = set()

    def add_rule(self, name: str, body: Optional[Expr] = None, *, call: bool = False,
                 open_string: bool = False) -> int:
        """Reserve a rule (body may be set later, for recursion) and return its index.

        Rules are inlined at every use unless they are recursive; ``call=True`` makes the engine build the
        rule once and call it (with a return stack) instead, for large subexpressions used from many places.

        ``open_string=True`` declares the rule an *open string*: a JSON string, quotes included, in which
        every valid prefix of the body can still be completed to a member ("any key but these names").
        The engine then takes the tokens that stay inside the string from a precomputed set instead of
        walking the vocabulary. The caller vouches for the property; the engine checks the rest and
        ignores the flag where the rule's automaton is not a JSON string.
        """
        self.rules.append(body)
        self.names.append(name)
        if call:
            self.calls.add(len(self.rules) - 1)
        if open_string:
            self.open_strings.add(len(self.rules) - 1)
        return len(self.rules) - 1

    def set_rule(self, index: int, body: Expr) -> None:
        self.rules[index] = body

    def check(self) -> None:
        for i, body in enumerate(self.rules):
            if body is None:
                raise ValueError(f"rule {self.names[i]!r} (#{i}) has no body")

    def __repr__(self) -> str:
        lines = [f"{n} ::= {to_text(b)}" for n, b in zip(self.names, self.rules)]
        return "Grammar(\n  " + "\n  ".join(lines) + "\n)"


def _fmt_cp(c: int) -> str:
    ch = chr(c)
    if ch.isprintable() and ch not in "\\]-^":
        return ch
    return f"\\u{{{c:x}}}"


def to_text(e: Optional[Expr], names: Optional[Sequence[str]] = None) -> str:
    """A readable EBNF-like rendering, for error messages and debugging."""
    if e is None:
        return "<unset>"
    k = e[0]
    if k == LIT:
        return repr(e[1].decode("utf-8", "backslashreplace"))
    if k in (CP, BYTE):
        body = "".join(_fmt_cp(lo) if lo == hi else f"{_fmt_cp(lo)}-{_fmt_cp(hi)}" for lo, hi in e[1])
        tag = "json" if k == CP and e[2] else ("byte" if k == BYTE else "")
        return f"[{body}]{tag}"
    if k == SEQ:
        return "(" + " ".join(to_text(x, names) for x in e[1]) + ")" if e[1] else "ε"
    if k == ALT:
        return "(" + " | ".join(to_text(x, names) for x in e[1]) + ")" if e[1] else "∅"
    if k == REP:
        hi = "" if e[3] == -1 else str(e[3])
        return f"{to_text(e[1], names)}{{{e[2]},{hi}}}"
    if k == REF:
        return names[e[1]] if names else f"<rule {e[1]}>"
    if k == TOK:
        return f"<[{e[1]}]>"
    if k == EXCL:
        kind = "json-string-body" if len(e) < 4 or e[3] else "identifier"
        return f"{kind}-except(" + ", ".join(repr(n) for n in e[1]) + ")"
    raise ValueError(f"unknown grammar node {e!r}")
