"""JSON Schema -> grammar IR.

``schema_to_grammar(schema)`` returns a :class:`~fcgrammar.grammar.Grammar` whose rule 0 matches exactly the
JSON texts (in the chosen whitespace style) of the instances valid under ``schema``. Keywords the compiler
cannot honour exactly raise :class:`~fcgrammar.errors.SchemaError` naming the keyword and JSON pointer
(``lenient=True`` ignores them instead, with one warning). See docs/json-schema.md for the full table.

How it works, briefly:

* every (sub)schema is *normalized* into a :class:`_Node`: a type bitmask plus per-type constraints.
  ``allOf`` and ``$ref``-with-siblings are merged into one node (intersection), so sibling keywords,
  ``allOf`` and ``$ref`` combine exactly. Subschemas of properties/items stay *lazy* as "conjunctions"
  (tuples of ``(schema, pointer)``) until emitted, which is what keeps recursive schemas finite.
* a node is *emitted* as IR: one alternative per allowed JSON type. ``anyOf``/``oneOf`` with siblings are
  distributed (``A ∧ (B ∨ C) = (A∧B) ∨ (A∧C)``); ``enum``/``const`` are emitted as the literal forms of the
  values that pass every other constraint (checked by a small validator over Python values).
* ``$ref`` targets get a grammar rule each (``Grammar.add_rule`` + ``ref``), reserved before their body is
  built, so recursion works; recursion that consumes no input is a SchemaError.
"""
from __future__ import annotations

import itertools
import json as _json
import keyword as _keyword
import math
import re
import unicodedata as _unicodedata
import warnings
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote, urljoin

from . import _gc, regex as _rx
from .errors import LimitError, SchemaError
from .string_formats import FORMAT_REGEXES, UNSUPPORTED_FORMATS, format_body
from .grammar import (ALT, ANY_CODEPOINT, BYTE, CP, EMPTY, EXCL, LIT, NOTHING, REF, REP, SEQ, Expr, Grammar, alt,
                      excluding, excluding_identifier, lit, ref, rep, seq)

__all__ = ["schema_to_grammar", "SchemaWarning", "ANY_ORDER_MAX_PROPERTIES"]


class SchemaWarning(UserWarning):
    """Emitted once per compilation with ``lenient=True``, listing every keyword that was ignored."""


#: ``any_order=True`` tracks which properties were seen (2**n states); objects with more declared
#: properties than this raise LimitError.
ANY_ORDER_MAX_PROPERTIES = 10
#: anyOf/oneOf distributed over siblings multiply; more alternatives than this raise LimitError.
MAX_DISTRIBUTED_ALTERNATIVES = 1024
#: subexpressions used more than once whose estimated automaton size exceeds this become called rules
#: (the engine inlines rules that are not recursive at every use, so nesting would multiply sizes).
SHARE_THRESHOLD = 1500
#: enumerate integer multiples (multipleOf with bounds) up to this many values.
MAX_ENUMERATED_MULTIPLES = 2000

# ------------------------------------------------------------------------------------ type bits
T_NULL, T_BOOL, T_OBJ, T_ARR, T_STR, T_INT, T_FRAC = 1, 2, 4, 8, 16, 32, 64
T_NUM = T_INT | T_FRAC
T_ALL = 127
_TYPE_BITS = {"null": T_NULL, "boolean": T_BOOL, "object": T_OBJ, "array": T_ARR, "string": T_STR,
              "integer": T_INT, "number": T_NUM}
# compat="bfcl": BFCL's type names (after bfcl_eval's GORILLA_TO_OPENAPI, except "any" = any JSON value).
_BFCL_TYPES = {
    "dict": "object", "float": "number", "tuple": "array", "list": "array", "str": "string", "int": "integer",
    "bool": "boolean", "any": None, "Any": None, "byte": "integer", "short": "integer", "long": "integer",
    "double": "number", "char": "string", "ArrayList": "array", "Array": "array", "HashMap": "object",
    "Hashtable": "object", "Queue": "array", "Stack": "array", "String": "string", "Boolean": "boolean",
    "": None, "Bigint": "integer", "Integer": "integer", "Long": "integer", "Double": "number", "Float": "number",
}

# keywords that never constrain an instance
_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "example", "$schema", "$id", "id", "$anchor",
    "$dynamicAnchor", "$recursiveAnchor", "$comment", "$vocabulary", "deprecated", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding", "contentSchema", "$defs", "definitions", "discriminator", "xml",
    "externalDocs", "optional",
})
# keywords of some JSON Schema draft that constrain instances and that we do not implement
_UNSUPPORTED = frozenset({
    "not", "if", "then", "else", "uniqueItems", "contains", "minContains", "maxContains", "dependentRequired",
    "dependentSchemas", "dependencies", "patternProperties", "propertyNames", "unevaluatedProperties",
    "unevaluatedItems", "$dynamicRef", "$recursiveRef", "disallow", "extends", "divisibleBy",
})
# in-place applicators (they evaluate properties/items for unevaluated*)
_APPLICATORS = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
                "dependentSchemas", "dependencies", "patternProperties", "contains")
# format values that are annotations only (OpenAPI's numeric formats, password, and binary: "any sequence of
# octets", which says nothing of a JSON string): accepted and ignored
_IGNORED_FORMATS = frozenset({"int32", "int64", "float", "double", "password", "binary"})

# ----------------------------------------------------------------------------------- IR constants
_Q = (LIT, b'"')
_DIG = (BYTE, ((0x30, 0x39),))
_D19 = (BYTE, ((0x31, 0x39),))
_ZERO = (LIT, b"0")
_MINUS = (LIT, b"-")
_DOT = (LIT, b".")
_DIGITS = (REP, _DIG, 0, -1)
_DIGITS1 = (REP, _DIG, 1, -1)
_ZEROS = (REP, _ZERO, 0, -1)
_ZEROS1 = (REP, _ZERO, 1, -1)
_UINT = (ALT, (_ZERO, (SEQ, (_D19, _DIGITS))))
_EXP = (SEQ, ((BYTE, ((0x45, 0x45), (0x65, 0x65))), (REP, (BYTE, ((0x2B, 0x2B), (0x2D, 0x2D))), 0, 1), _DIGITS1))
# exponent whose negative form has at most 2 digits: a strict bound at 0 must not see 1e-999 (0.0 as a double)
_EXP_SAFE = (SEQ, ((BYTE, ((0x45, 0x45), (0x65, 0x65))),
                   (ALT, ((SEQ, ((REP, (LIT, b"+"), 0, 1), _DIGITS1)),
                          (SEQ, ((LIT, b"-"), (REP, _DIG, 1, 2)))))))
_DOT_ZEROS = (SEQ, (_DOT, _ZEROS1))
_OPT_DOT_ZEROS = (REP, _DOT_ZEROS, 0, 1)
NUMBER_ANY: Expr = (SEQ, ((REP, _MINUS, 0, 1), _UINT, (REP, (SEQ, (_DOT, _DIGITS1)), 0, 1), (REP, _EXP, 0, 1)))
NONINT_ANY: Expr = (SEQ, ((REP, _MINUS, 0, 1), _UINT, _DOT, _DIGITS, _D19, _DIGITS))
# no exponent: "1e3" is an integer to JSON Schema, but "1e400" parses as inf in Python (and json.dumps never
# writes an int with one); documented departure
INTEGER_ANY: Expr = (SEQ, ((REP, _MINUS, 0, 1), _UINT, _OPT_DOT_ZEROS))
# drafts 3 and 4 define an integer as a number without a fraction or exponent part: 1.0 is not one
INTEGER_PLAIN: Expr = (SEQ, ((REP, _MINUS, 0, 1), _UINT))
_OLD_DRAFT = re.compile(r"json-schema\.org/draft-0[34]/schema")
_CPJ_ANY = (CP, ANY_CODEPOINT, True)
STRING_BODY_ANY: Expr = (REP, _CPJ_ANY, 0, -1)
STRING_ANY: Expr = (SEQ, (_Q, STRING_BODY_ANY, _Q))
_CPJ_U = (CP, _rx.UNIVERSE, True)
_NULL = (LIT, b"null")
_BOOL = (ALT, ((LIT, b"true"), (LIT, b"false")))

_CPJ_CACHE: Dict[int, Expr] = {}
_KEY_CACHE: Dict[str, Expr] = {}


def _cpj(c: int) -> Expr:
    e = _CPJ_CACHE.get(c)
    if e is None:
        e = _CPJ_CACHE[c] = (CP, ((c, c),), True)
    return e


def json_string_literal(s: str) -> Expr:
    """A JSON string whose decoded value is exactly ``s`` (any escaping accepted)."""
    e = _KEY_CACHE.get(s)
    if e is None:
        e = (SEQ, (_Q,) + tuple(_cpj(ord(c)) for c in s) + (_Q,))
        if len(_KEY_CACHE) < 100_000:
            _KEY_CACHE[s] = _known_size(e, 3 + 12 * len(s))
    return e


def _mkseq(items) -> Expr:
    """seq() without literal merging: flattens nothing, drops ε, collapses on the empty language."""
    out = []
    for x in items:
        k = x[0]
        if k == SEQ:
            if not x[1]:
                continue
        elif k == ALT and not x[1]:
            return NOTHING
        out.append(x)
    if len(out) == 1:
        return out[0]
    if not out:
        return EMPTY
    return (SEQ, tuple(out))


def _alt(*items) -> Expr:
    """alt() without structural dedupe (which hashes whole subtrees): flattens, drops the empty language."""
    flat = []
    for it in items:
        if it[0] == ALT:
            flat.extend(it[1])
        else:
            flat.append(it)
    if len(flat) == 1:
        return flat[0]
    return (ALT, tuple(flat))


def _alt_distinct(*items) -> Expr:
    """_alt() without repeats of one object (the compiler's caches give equal branches the same object);
    alt()'s structural dedupe hashes whole subtrees, 10% of compiling an anyOf over 128 tools."""
    e = _alt(*items)
    if e[0] != ALT:
        return e
    parts = tuple({id(p): p for p in e[1]}.values())
    return parts[0] if len(parts) == 1 else (ALT, parts)


_MISSING = object()  # a keyword that is absent (None is a JSON value)
_STR_TYPE = frozenset((str,))

# Keys are compared as decoded strings. Names made of BMP characters only are excluded over every code
# point, lone surrogate escapes included, exactly as a plain string accepts them: then the tail after the
# deviation is the plain string body, and every prefix of a key can still be completed (an open string).
# A name with a supplementary character (or a surrogate) would be written as a surrogate pair that must
# not read as two lone escapes, so those exclusions keep to the code points outside the surrogates.
_ASCII = ((0, 0x7F),)
_ASCII_RUN = (REP, (CP, _ASCII, True), 0, -1)
_NON_ASCII = (CP, ((0x80, 0x10FFFF),), True)
_EXCL1: Dict[int, Expr] = {}
_EXCL_CACHE: Dict[tuple, Expr] = {}


def _known_size(e: Expr, n: int) -> Expr:
    """record the size estimate of a module-cached expression (saves walking it later)"""
    if len(_SIZE_CACHE) > 300_000:
        _SIZE_CACHE.clear()
    _SIZE_CACHE[id(e)] = (n, e)
    return e


def _size_of(e: Expr, memo: Optional[dict] = None) -> int:
    hit = _SIZE_CACHE.get(id(e))
    if hit is not None:
        return hit[0]
    return _expr_size(e, {} if memo is None else memo)


def _cp_size(e: Expr) -> int:
    """states of one code point set: UTF-8 sequences, and for JSON \\u escapes and surrogate pairs"""
    rs = e[1]
    n = 2 + 3 * len(rs)
    if rs and rs[-1][1] >= 0x80:
        n += 12  # multi-byte UTF-8
    if e[2]:
        n += 6 + 4 * len(rs)
        if rs and rs[-1][1] >= 0x10000:
            n += 24  # surrogate-pair escapes
    return n


def _expr_size(e: Expr, memo: dict) -> int:
    """Rough size of e once the engine has inlined it (states). `memo` (id -> (size, expr)) is the
    caller's; sizes of module-cached expressions come from _SIZE_CACHE."""
    hit = memo.get(id(e)) or _SIZE_CACHE.get(id(e))
    if hit is not None:
        return hit[0]
    k = e[0]
    if k == LIT:
        n = len(e[1])
    elif k == CP:
        n = _cp_size(e)
    elif k == SEQ or k == ALT:
        n = 1
        for x in e[1]:
            n += _expr_size(x, memo)
    elif k == REP:
        n = _expr_size(e[1], memo) * max(1, e[2] + 1 if e[3] == -1 else e[3])
    elif k == EXCL:
        n = _excl_size(e[1])
    else:
        n = 1
    memo[id(e)] = (n, e)  # holding e keeps its id valid
    return n


def _excl_one(c: int, u: tuple) -> Expr:
    """one code point of the universe `u` other than c"""
    e = _EXCL1.get((c, u))
    if e is None:
        cp_ = (CP, _rx.complement(((c, c),), u), True)
        e = _EXCL1[(c, u)] = _known_size(cp_, _cp_size(cp_))
    return e


_EXCL_SUFFIX: Dict[tuple, Expr] = {}


def _excl_fin(names: List[str], i: int) -> Expr:
    """the *proper* prefixes of names (beyond names[*][:i]) that are no name: the keys that stop early"""
    if len(names) == 1:
        sfx = names[0][i:]
        key = ("f", sfx)
        e = _EXCL_SUFFIX.get(key)
        if e is None:
            if not sfx:
                e = NOTHING
            elif len(sfx) == 1:
                e = EMPTY
            else:
                nxt = _excl_fin(names, i + 1)
                e = (ALT, (EMPTY, (SEQ, (_cpj(ord(sfx[0])), nxt))))
                e = _known_size(e, 15 + _size_of(nxt))
            _EXCL_SUFFIX[key] = e
        return e
    groups: Dict[int, List[str]] = {}
    ended = False
    for nm in names:
        if len(nm) == i:
            ended = True
        else:
            groups.setdefault(ord(nm[i]), []).append(nm)
    parts = [] if ended else [EMPTY]
    size = 2
    for c, grp in groups.items():
        sub = _excl_fin(grp, i + 1)
        if sub != NOTHING:
            parts.append((SEQ, (_cpj(c), sub)))
            size += 14 + _size_of(sub)
    if not parts:
        return NOTHING
    return _known_size(parts[0] if len(parts) == 1 else (ALT, tuple(parts)), size)


def _excl_dev(names: List[str], i: int, u: tuple) -> Expr:
    """the shortest strings (beyond names[*][:i]) that leave every name: a prefix, then a code point of
    the universe `u` no name continues with. Anything may follow them."""
    if len(names) == 1:
        sfx = names[0][i:]
        key = ("d", sfx, u)
        e = _EXCL_SUFFIX.get(key)
        if e is None:
            if not sfx:
                e = (CP, u, True)
            else:
                c = ord(sfx[0])
                nxt = _excl_dev(names, i + 1, u)
                e = (ALT, (_excl_one(c, u), (SEQ, (_cpj(c), nxt))))
                e = _known_size(e, 2 + _size_of(e[1][0]) + 13 + _size_of(nxt))
            if len(_EXCL_SUFFIX) > 200_000:
                _EXCL_SUFFIX.clear()
            _EXCL_SUFFIX[key] = e
        return e
    groups: Dict[int, List[str]] = {}
    for nm in names:
        if len(nm) > i:
            groups.setdefault(ord(nm[i]), []).append(nm)
    parts = []
    others = _rx.complement(tuple((c, c) for c in groups), u)
    size = 2
    if others:
        cp_ = (CP, others, True)
        parts.append(cp_)
        size += _cp_size(cp_)
    for c, grp in groups.items():
        sub = _excl_dev(grp, i + 1, u)
        parts.append((SEQ, (_cpj(c), sub)))
        size += 14 + _size_of(sub)
    return _known_size(parts[0] if len(parts) == 1 else (ALT, tuple(parts)), size)


def open_key_names(names) -> bool:
    """Whether key_excluding(names) is an open string: every prefix of a key can still be completed."""
    text = "".join(names)
    return text.isascii() or all(ord(ch) < 0xD800 or 0xE000 <= ord(ch) <= 0xFFFF for ch in text)


def _excl_size(names) -> int:
    """states of an exclusion node: the deviated tail and a string body, ~6 per trie character"""
    return 60 + 6 * sum(len(n) for n in names)


def key_excluding(names) -> Expr:
    """A JSON string (key) whose decoded value is none of `names` (decided on code points, so every
    escaped spelling of a name is excluded too): one :func:`~fcgrammar.grammar.excluding` node, which the
    engine builds as a trie (see :func:`expand_excluding` for the same language as a regular expression)."""
    if not names:
        return STRING_ANY
    key = tuple(names)
    e = _EXCL_CACHE.get(key)
    if e is None:
        srt = sorted(set(names))
        body = excluding(srt, ANY_CODEPOINT if open_key_names(srt) else _rx.UNIVERSE)
        e = _known_size((SEQ, (_Q, body, _Q)), 2 + _excl_size(srt))
        if len(_EXCL_CACHE) > 4096:
            _EXCL_CACHE.clear()
        _EXCL_CACHE[key] = e
    return e


def expand_excluding(e: Expr) -> Expr:
    """An :func:`~fcgrammar.grammar.excluding` node's language written with regular-expression nodes,
    ``FIN | DEV Σ*`` with one shared tail, for the rewriters that change how strings are spelled (Python
    literals, JSON inside a JSON string); the engine builds the node itself, about five times smaller."""
    if len(e) > 3 and not e[3]:  # an identifier
        return _id_excl(tuple(sorted(n for n in e[1] if n.isascii() and n.isidentifier())), True)
    u = e[2]
    full = u == ANY_CODEPOINT
    srt = sorted(n for n in e[1] if all(any(lo <= ord(c) <= hi for lo, hi in u) for c in n))
    rest = STRING_BODY_ANY if full else (REP, (CP, u, True), 0, -1)
    if not srt:
        return rest
    fin = _excl_fin(srt, 0)
    if full and all(ch < "\x80" for nm in srt for ch in nm):
        # ASCII names: a deviation by a non-ASCII character can happen after any ASCII text (if that
        # text is no name prefix, it deviated earlier), so one shared "ASCII* non-ASCII" replaces a
        # non-ASCII complement at every trie node.
        dev = _alt(_excl_dev(srt, 0, _ASCII), (SEQ, (_ASCII_RUN, _NON_ASCII)))
    else:
        dev = _excl_dev(srt, 0, u)
    tail = (SEQ, (dev, rest))
    return _alt(fin, tail) if fin != NOTHING else tail


def _ptr(base: str, *tokens) -> str:
    """JSON pointer of ``base`` extended by ``tokens`` (RFC 6901 escapes). Called for every schema node."""
    for t in tokens:
        if t.__class__ is not str:
            t = str(t)
        elif "~" in t or "/" in t:
            t = t.replace("~", "~0").replace("/", "~1")
        base = base + "/" + t
    return base


def _canon(v):
    """Hashable key implementing JSON Schema equality (1 == 1.0, True != 1, objects unordered)."""
    if v is None or isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        try:
            return ("n", _dec(v))
        except (InvalidOperation, ValueError):
            return ("x", repr(v))
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, list):
        return ("a", tuple(_canon(x) for x in v))
    if isinstance(v, dict):
        return ("o", frozenset((k, _canon(x)) for k, x in v.items()))
    return ("x", repr(v))


def _dec(v) -> Decimal:
    if isinstance(v, bool):
        raise ValueError("boolean is not a number")
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("non-finite number")
        return Decimal(repr(v))
    raise ValueError(f"not a number: {v!r}")


def _type_bit(v) -> int:
    if v is None:
        return T_NULL
    if isinstance(v, bool):
        return T_BOOL
    if isinstance(v, int):
        return T_INT
    if isinstance(v, float):
        return T_INT if math.isfinite(v) and v.is_integer() else T_FRAC
    if isinstance(v, str):
        return T_STR
    if isinstance(v, list):
        return T_ARR
    if isinstance(v, dict):
        return T_OBJ
    return 0


# =========================================================================================== nodes

_TRUE_CONJ: tuple = ()


class _Node:
    """Normalized constraints of one (merged) schema. Fields left at their defaults do not constrain."""

    __slots__ = ("ptr", "types", "c", "enum", "enum_keys", "min_len", "max_len", "patterns", "formats",
                 "lo", "lo_x", "hi", "hi_x", "mult", "prefix", "items", "min_items", "max_items", "unique",
                 "props", "required", "additional", "min_props", "max_props", "obj_kw", "prop_names", "contains",
                 "pattern_props", "pp_conflict", "anyofs", "oneofs")

    def __init__(self, ptr: str = "#") -> None:
        self.ptr = ptr
        self.types = T_ALL
        self.c = False  # any constraint besides `types`?
        self.enum: Optional[tuple] = None
        self.enum_keys: Optional[frozenset] = None
        self.min_len = 0
        self.max_len: Optional[int] = None
        self.patterns: tuple = ()
        self.formats: tuple = ()
        self.lo: Optional[Decimal] = None
        self.lo_x = False
        self.hi: Optional[Decimal] = None
        self.hi_x = False
        self.mult: tuple = ()
        self.prefix: tuple = ()
        self.items: tuple = _TRUE_CONJ
        self.min_items = 0
        self.max_items: Optional[int] = None
        self.unique: Optional[str] = None  # pointer of a uniqueItems: true
        self.props: Dict[str, tuple] = {}
        self.required: tuple = ()
        self.additional: Optional[tuple] = None  # None = not specified
        self.min_props = 0
        self.max_props: Optional[int] = None
        self.obj_kw = False  # some object keyword was present (for additional_properties_default=False)
        self.prop_names: tuple = _TRUE_CONJ  # propertyNames conj
        self.contains: tuple = ()  # ((conj, minContains, maxContains or None, pointer), ...)
        self.pattern_props: tuple = ()  # ((pattern, conj, pointer), ...)
        self.pp_conflict: Optional[str] = None  # pointer: patternProperties merged with other object rules
        self.anyofs: tuple = ()
        self.oneofs: tuple = ()

    def copy(self) -> "_Node":
        n = _Node.__new__(_Node)
        for s in _Node.__slots__:
            setattr(n, s, getattr(self, s))
        return n


_NODE_TRUE = _Node()
_NODE_FALSE = _Node()
_NODE_FALSE.types = 0


def _cat(a: tuple, b: tuple) -> tuple:
    if not a:
        return b
    if not b or a == b:
        return a
    ids = {id(s) for s, _ in a}
    return a + tuple(x for x in b if id(x[0]) not in ids)


def _merge_into(d: _Node, s: _Node) -> None:
    """d := d ∧ s (d is owned and mutable, s is shared)."""
    if s is _NODE_TRUE:
        return
    d.types &= s.types
    if not s.c:
        return
    d.c = True
    if s.enum is not None:
        if d.enum is None:
            d.enum, d.enum_keys = s.enum, s.enum_keys
        else:
            keep = tuple(v for v in d.enum if _canon(v) in s.enum_keys)
            d.enum, d.enum_keys = keep, frozenset(_canon(v) for v in keep)
    if s.min_len > d.min_len:
        d.min_len = s.min_len
    if s.max_len is not None and (d.max_len is None or s.max_len < d.max_len):
        d.max_len = s.max_len
    if s.patterns:
        d.patterns = d.patterns + tuple(p for p in s.patterns if p[0] not in {q[0] for q in d.patterns})
    if s.formats:
        d.formats = d.formats + tuple(p for p in s.formats if p[0] not in {q[0] for q in d.formats})
    if s.lo is not None and (d.lo is None or s.lo > d.lo or (s.lo == d.lo and s.lo_x)):
        d.lo, d.lo_x = s.lo, s.lo_x
    if s.hi is not None and (d.hi is None or s.hi < d.hi or (s.hi == d.hi and s.hi_x)):
        d.hi, d.hi_x = s.hi, s.hi_x
    if s.mult:
        d.mult = d.mult + tuple(m for m in s.mult if m not in d.mult)
    # arrays
    if s.prefix or d.prefix or s.items or d.items:
        if s.prefix or d.prefix:
            n = max(len(s.prefix), len(d.prefix))
            d.prefix = tuple(
                _cat(d.prefix[i] if i < len(d.prefix) else d.items, s.prefix[i] if i < len(s.prefix) else s.items)
                for i in range(n))
        d.items = _cat(d.items, s.items)
    if s.min_items > d.min_items:
        d.min_items = s.min_items
    if s.max_items is not None and (d.max_items is None or s.max_items < d.max_items):
        d.max_items = s.max_items
    if s.unique and not d.unique:
        d.unique = s.unique
    if s.contains:
        d.contains = d.contains + tuple(x for x in s.contains if x not in d.contains)
    # objects
    if s.obj_kw:
        d.obj_kw = True
    if s.props or d.props or s.additional is not None or d.additional is not None:
        dadd = d.additional or _TRUE_CONJ
        sadd = s.additional or _TRUE_CONJ
        props = {}
        for name, cj in d.props.items():
            props[name] = _cat(cj, s.props.get(name, sadd))
        for name, cj in s.props.items():
            if name not in props:
                props[name] = _cat(dadd, cj)
        d.props = props
        if d.additional is None and s.additional is None:
            d.additional = None
        else:
            d.additional = _cat(dadd, sadd)
    if s.required:
        d.required = d.required + tuple(r for r in s.required if r not in d.required)
    if s.prop_names:
        d.prop_names = _cat(d.prop_names, s.prop_names)
    if s.pattern_props or d.pattern_props:
        # patternProperties decide which keys the *same* schema's additionalProperties sees; merged with
        # another schema's object rules that is not a plain union any more
        if (s.pattern_props and (d.props or d.additional is not None or d.pattern_props)) or \
                (d.pattern_props and (s.props or s.additional is not None)):
            d.pp_conflict = d.pp_conflict or (s.pattern_props or d.pattern_props)[0][2]
        d.pattern_props = d.pattern_props + s.pattern_props
    if s.pp_conflict and not d.pp_conflict:
        d.pp_conflict = s.pp_conflict
    if s.min_props > d.min_props:
        d.min_props = s.min_props
    if s.max_props is not None and (d.max_props is None or s.max_props < d.max_props):
        d.max_props = s.max_props
    if s.anyofs:
        d.anyofs = d.anyofs + s.anyofs
    if s.oneofs:
        d.oneofs = d.oneofs + s.oneofs


def _is_blank(n: _Node) -> bool:
    """no constraint at all (any JSON value)"""
    return (n.types == T_ALL and n.enum is None and not n.min_len and n.max_len is None and not n.patterns
            and not n.formats and n.lo is None and n.hi is None and not n.mult and not n.prefix and not n.items
            and not n.min_items and n.max_items is None and not n.unique and not n.props and not n.required
            and n.additional is None and not n.min_props and n.max_props is None and not n.obj_kw
            and not n.prop_names and not n.contains and not n.pattern_props and not n.anyofs and not n.oneofs)


def _only_types(n: _Node) -> bool:
    """n constrains nothing but the JSON type"""
    if n.types == 0 or not n.c:
        return True
    m = n.copy()
    m.types = T_ALL
    return _is_blank(m)


# ====================================================================================== numbers


def _split_dec(d: Decimal) -> Tuple[int, str]:
    """non-negative decimal -> (integer part, fractional digits without trailing zeros)"""
    s = format(d, "f")
    if "." in s:
        i, f = s.split(".")
        return int(i), f.rstrip("0")
    return int(s), ""


def _fixed_range(a: str, b: str) -> Expr:
    """Digit strings of equal length n with a <= s <= b (lexicographic == numeric)."""
    if not a:
        return EMPTY
    if a == b:
        return (LIT, a.encode())
    if a[0] == b[0]:
        return seq((LIT, a[0].encode()), _fixed_range(a[1:], b[1:]))
    rest = len(a) - 1
    parts = []
    lo_first = int(a[0])
    if a[1:] != "0" * rest:
        parts.append(seq((LIT, a[0].encode()), _fixed_range(a[1:], "9" * rest)))
        lo_first += 1
    hi_last = int(b[0])
    high = None
    if b[1:] != "9" * rest:
        high = seq((LIT, b[0].encode()), _fixed_range("0" * rest, b[1:]))
        hi_last -= 1
    if lo_first <= hi_last:
        parts.append(seq((BYTE, ((0x30 + lo_first, 0x30 + hi_last),)), rep(_DIG, rest, rest)))
    if high is not None:
        parts.append(high)
    return alt(*parts)


def _uint_range(lo: int, hi: Optional[int]) -> Expr:
    """Canonical decimal strings (no leading zeros) of the integers lo..hi (hi None = unbounded), lo >= 0."""
    if hi is not None and lo > hi:
        return NOTHING
    parts = []
    if lo == 0:
        parts.append(_ZERO)
        if hi == 0:
            return _ZERO
        lo = 1
    ls = str(lo)
    if hi is None:
        parts.append(_fixed_range(ls, "9" * len(ls)))
        parts.append(seq(_D19, rep(_DIG, len(ls), -1)))
    else:
        hs = str(hi)
        for n in range(len(ls), len(hs) + 1):
            a = ls if n == len(ls) else "1" + "0" * (n - 1)
            b = hs if n == len(hs) else "9" * n
            parts.append(_fixed_range(a, b))
    return alt(*parts)


def _free_frac(cap: Optional[int], nonempty: bool) -> Expr:
    """Any fraction digits (nonzero ones only within the first `cap` positions)."""
    if cap is None:
        return _DIGITS1 if nonempty else _DIGITS
    if cap == 0:
        return _ZEROS1 if nonempty else _ZEROS
    return alt(seq(rep(_DIG, 1, cap), _ZEROS), EMPTY) if not nonempty else seq(rep(_DIG, 1, cap), _ZEROS)


class _FracBuilder:
    """Fraction digit strings F (0.F compared with reference fractions), memoized.

    lower: None | (digits, strict)  -- 0.F >= 0.digits (> if strict); digits has no trailing zeros
    upper: None | (digits, strict)  -- 0.F <= 0.digits (< if strict)
    cap: None | k  -- only the first k digits may be nonzero (multipleOf 10**-k)
    """

    def __init__(self) -> None:
        self.memo: Dict[tuple, Expr] = {}

    @staticmethod
    def _nl(lw):
        return None if lw is not None and lw[0] == "" and not lw[1] else lw

    @staticmethod
    def end_ok(lw, up) -> bool:
        """may the digits stop here (the rest of the fraction is 0)?"""
        return lw is None and up != ("", True)

    def ne(self, lw, up, cap) -> Expr:
        """nonempty digit strings satisfying the constraints"""
        lw = self._nl(lw)
        if up == ("", True):
            return NOTHING
        key = (lw, up, cap)
        e = self.memo.get(key)
        if e is not None:
            return e
        if lw is None and up is None:
            e = _free_frac(cap, True)
        elif lw is None and up == ("", False):
            e = _ZEROS1
        elif lw == ("", True) and up is None:
            if cap is None:
                e = seq(_ZEROS, _D19, _DIGITS)
            elif cap > 0:
                e = alt(*[seq(rep(_ZERO, z, z), _D19, rep(_DIG, 0, cap - 1 - z), _ZEROS) for z in range(cap)])
            else:
                e = NOTHING
        elif lw == ("", True) and up == ("", False):
            e = NOTHING
        elif cap == 0:
            e = _ZEROS1 if self.end_ok(lw, up) else NOTHING
        else:
            groups: Dict[tuple, List[int]] = {}
            for d in range(10):
                if lw is None:
                    nl = None
                else:
                    r0 = int(lw[0][0]) if lw[0] else 0
                    if d < r0:
                        continue
                    nl = None if d > r0 else (lw[0][1:], lw[1])
                if up is None:
                    nu = None
                else:
                    u0 = int(up[0][0]) if up[0] else 0
                    if d > u0:
                        continue
                    nu = None if d < u0 else (up[0][1:], up[1])
                groups.setdefault((nl, nu), []).append(d)
            nc = None if cap is None else cap - 1
            alts = []
            for (nl, nu), ds in groups.items():
                rest = self.any(nl, nu, nc)
                if rest == NOTHING:
                    continue
                rs = _rx.norm((0x30 + d, 0x30 + d) for d in ds)
                alts.append(seq((BYTE, rs), rest))
            e = alt(*alts) if alts else NOTHING
        self.memo[key] = e
        return e

    def any(self, lw, up, cap) -> Expr:
        """possibly empty digit strings satisfying the constraints"""
        lw = self._nl(lw)
        ne = self.ne(lw, up, cap)
        return alt(EMPTY, ne) if self.end_ok(lw, up) else ne

    def part(self, lw, up, cap) -> Expr:
        """the optional '.F' part of a number"""
        lw = self._nl(lw)
        dotted = seq(_DOT, self.ne(lw, up, cap))
        return alt(EMPTY, dotted) if self.end_ok(lw, up) else dotted


def _mag_range(fb: _FracBuilder, a: Decimal, a_x: bool, b: Optional[Decimal], b_x: bool,
               cap: Optional[int]) -> Expr:
    """Unsigned decimal texts I(.F)? with a <= value <= b (strict per flags), a >= 0."""
    if b is not None and (a > b or (a == b and (a_x or b_x))):
        return NOTHING
    ai, af = _split_dec(a)
    lw = (af, a_x)
    if b is None:
        return alt(seq((LIT, str(ai).encode()), fb.part(lw, None, cap)),
                   seq(_uint_range(ai + 1, None), fb.part(None, None, cap)))
    bi, bf = _split_dec(b)
    up = (bf, b_x)
    if ai == bi:
        return seq((LIT, str(ai).encode()), fb.part(lw, up, cap))
    parts = [seq((LIT, str(ai).encode()), fb.part(lw, None, cap))]
    if ai + 1 <= bi - 1:
        parts.append(seq(_uint_range(ai + 1, bi - 1), fb.part(None, None, cap)))
    parts.append(seq((LIT, str(bi).encode()), fb.part(None, up, cap)))
    return alt(*parts)


def _number_range(lo, lo_x, hi, hi_x, cap) -> Expr:
    """Signed decimal texts (no exponent) with value in the range."""
    fb = _FracBuilder()
    zero = Decimal(0)
    parts = []
    # non-negative texts: magnitude m in [lo, hi] ∩ [0, ∞)
    if hi is None or hi > 0 or (hi == 0 and not hi_x):
        if lo is None or lo < 0:
            a, a_x = zero, False
        else:
            a, a_x = lo, lo_x
        parts.append(_mag_range(fb, a, a_x, hi, hi_x, cap))
    # negative texts "-m": -m in [lo, hi]  <=>  m in [-hi, -lo]
    if lo is None or lo < 0 or (lo == 0 and not lo_x):
        if hi is None or hi > 0:
            a, a_x = zero, False
        else:
            a, a_x = -hi, hi_x
        b = None if lo is None else -lo
        m = _mag_range(fb, a, a_x, b, lo_x, cap)
        if m != NOTHING:
            parts.append(seq(_MINUS, m))
    return alt(*parts) if parts else NOTHING


_ZERO_MANT = (SEQ, (_ZERO, (REP, _DOT_ZEROS, 0, 1)))
_NONZERO_MANT = (ALT, ((SEQ, (_D19, _DIGITS, (REP, (SEQ, (_DOT, _DIGITS1)), 0, 1))),
                       (SEQ, (_ZERO, _DOT, _DIGITS, _D19, _DIGITS))))
_OPT_EXP = (REP, _EXP, 0, 1)
_OPT_EXP_SAFE = (REP, _EXP_SAFE, 0, 1)


def _signed_around_zero(has_lo: bool, lo_x: bool, has_hi: bool, hi_x: bool) -> Expr:
    """Numbers (exponents allowed) whose only bounds are at 0: the sign of the mantissa decides."""
    parts = []
    zero_ok = not (has_lo and lo_x) and not (has_hi and hi_x)
    exp = _OPT_EXP if zero_ok else _OPT_EXP_SAFE
    if zero_ok:
        parts.append(seq((REP, _MINUS, 0, 1), _ZERO_MANT, _OPT_EXP))
    if not has_hi:  # positive numbers
        parts.append(seq(_NONZERO_MANT, exp))
    if not has_lo:  # negative numbers
        parts.append(seq(_MINUS, _NONZERO_MANT, exp))
    return alt(*parts) if parts else NOTHING


def _int_bounds(n: _Node) -> Tuple[Optional[int], Optional[int]]:
    lo = hi = None
    if n.lo is not None:
        f = math.floor(n.lo)
        lo = f + 1 if (n.lo_x and f == n.lo) or f < n.lo else f
    if n.hi is not None:
        c = math.ceil(n.hi)
        hi = c - 1 if (n.hi_x and c == n.hi) or c > n.hi else c
    return lo, hi


def _int_range(lo: Optional[int], hi: Optional[int]) -> Expr:
    """Integer texts (canonical digits, optional '-', '-0' allowed when 0 is in range), no fraction."""
    if lo is not None and hi is not None and lo > hi:
        return NOTHING
    parts = []
    if hi is None or hi >= 0:
        parts.append(_uint_range(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo <= 0:
        m = _uint_range(max(-hi, 0) if hi is not None else 0, None if lo is None else -lo)
        if m != NOTHING:
            parts.append(seq(_MINUS, m))
    return alt(*parts) if parts else NOTHING


def _int_literal(v) -> Expr:
    """The integral number v written as digits only (draft 3/4 integers), '-0' as well for 0."""
    i = int(v)
    return _alt((LIT, b"0"), (LIT, b"-0")) if i == 0 else (LIT, str(i).encode())


def _number_literal(v) -> Expr:
    """Every plain-decimal spelling of the number v (trailing zeros, '-0'), plus Python's json.dumps form."""
    d = _dec(v)
    neg = d.is_signed()
    i, f = _split_dec(abs(d))
    core = seq((LIT, str(i).encode()), seq((LIT, ("." + f).encode()), _ZEROS) if f else _OPT_DOT_ZEROS)
    if d == 0:
        e = alt(core, seq(_MINUS, core))
    else:
        e = seq(_MINUS, core) if neg else core
    dumped = _json.dumps(v)
    if "e" in dumped or "E" in dumped:
        e = alt(e, (LIT, dumped.encode()))
    return e


# ======================================================================================= document


class _Doc:
    """$id / $anchor index for $ref resolution (built on the first $ref)."""

    _MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
    _LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
    _ONE = ("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
            "unevaluatedProperties", "unevaluatedItems", "additionalItems", "contentSchema")
    DEFAULT_BASE = "file:///fcgrammar-root.json"

    def __init__(self, root) -> None:
        self.root = root
        self.ids: Dict[str, Tuple[Any, str]] = {}
        self.anchors: Dict[str, Tuple[Any, str]] = {}
        self.base_of: Dict[int, str] = {}
        base = self.DEFAULT_BASE
        self.ids[base] = (root, "#")
        self._walk(root, "#", base)

    def _walk(self, s, ptr: str, base: str) -> None:
        if not isinstance(s, dict):
            return
        sid = s.get("$id")
        if isinstance(sid, str):
            full = urljoin(base, sid) if not sid.startswith("#") else base.split("#")[0] + sid
            nofrag, _, frag = full.partition("#")
            if frag and not sid.startswith("#/"):
                self.anchors[nofrag + "#" + frag] = (s, ptr)
                if sid.startswith("#"):
                    nofrag = base.split("#")[0]
            if not sid.startswith("#"):
                base = nofrag
                self.ids[nofrag] = (s, ptr)
        for key in ("$anchor", "$dynamicAnchor"):
            a = s.get(key)
            if isinstance(a, str):
                self.anchors.setdefault(base + "#" + a, (s, ptr))
        self.base_of[id(s)] = base
        for k, v in s.items():
            if k in self._MAPS and isinstance(v, dict):
                for name, sub in v.items():
                    self._walk(sub, _ptr(ptr, k, name), base)
            elif k in self._LISTS and isinstance(v, list):
                for i, sub in enumerate(v):
                    self._walk(sub, _ptr(ptr, k, i), base)
            elif k == "items":
                if isinstance(v, list):
                    for i, sub in enumerate(v):
                        self._walk(sub, _ptr(ptr, k, i), base)
                else:
                    self._walk(v, _ptr(ptr, k), base)
            elif k in self._ONE:
                self._walk(v, _ptr(ptr, k), base)
            elif k == "dependencies" and isinstance(v, dict):
                for name, sub in v.items():
                    self._walk(sub, _ptr(ptr, k, name), base)

    def resolve(self, refstr: str, holder, ptr: str) -> Tuple[Any, str]:
        base = self.base_of.get(id(holder), self.DEFAULT_BASE)
        if refstr.startswith("#"):
            uri, frag = base, refstr[1:]
        else:
            full = urljoin(base, refstr)
            uri, _, frag = full.partition("#")
        res = self.ids.get(uri)
        if res is None:
            raise SchemaError(f"remote $ref {refstr!r} is not supported (only references into this document)",
                              ptr, "$ref")
        frag = unquote(frag)
        if not frag:
            return res
        if frag.startswith("/"):
            node, p = res
            for tok in frag[1:].split("/"):
                tok = tok.replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict) and tok in node:
                    node = node[tok]
                elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                    node = node[int(tok)]
                else:
                    raise SchemaError(f"$ref {refstr!r} points to nothing", ptr, "$ref")
                p = _ptr(p, tok)
            return node, p
        hit = self.anchors.get(uri + "#" + frag)
        if hit is None:
            raise SchemaError(f"$ref {refstr!r}: anchor {frag!r} not found", ptr, "$ref")
        return hit


_WS_CACHE: Dict[tuple, tuple] = {}
_SIZE_CACHE: Dict[int, tuple] = {}  # module-cached exprs: id -> (size, expr); holding expr keeps the id valid
_ANY_CACHE: Dict[tuple, tuple] = {}
_PRIMITIVES = {"string": STRING_ANY, "integer": INTEGER_ANY, "number": NUMBER_ANY, "boolean": _BOOL,
               "null": _NULL}


class _Active:
    __slots__ = ("depth", "rule", "ptr")

    def __init__(self, depth: int, rule: Optional[int], ptr: str) -> None:
        self.depth = depth
        self.rule = rule
        self.ptr = ptr


# ======================================================================================= compiler


class _Compiler:
    def __init__(self, schema, *, any_order, whitespace, max_whitespace, separators, compat, lenient,
                 coerce_one_of, strict, additional_properties_default, max_repetition, syntax="json",
                 kwargs=False, kwargs_separators=None, grammar: Optional[Grammar] = None,
                 shared: Optional[Dict[Any, Any]] = None) -> None:
        self.root = schema
        self.any_order = bool(any_order)
        self.compat = compat
        self.lenient = bool(lenient)
        self.coerce_one_of = bool(coerce_one_of)
        self.strict = bool(strict)
        self.add_default_false = bool(strict) or not additional_properties_default
        self.max_rep = int(max_repetition)
        # "integer" with an optional zero fraction (1.0), as in draft 6 and later, unless the root declares
        # draft 3 or 4 in "$schema"
        sch = schema.get("$schema") if isinstance(schema, dict) else None
        self.int_fraction = not (isinstance(sch, str) and _OLD_DRAFT.search(sch))
        # The grammar the rules go to (a fresh one, or a caller's that holds other schemas' rules: this
        # compilation's rules start at self._base), and what schemas compiled into it may share.
        self.g = grammar if grammar is not None else Grammar()
        self._base = len(self.g.rules)
        self._shared = shared if shared is not None else {}
        self.ignored: List[Tuple[str, str]] = []
        self._doc: Optional[_Doc] = None
        self._norm: Dict[int, _Node] = {}
        self._normalizing: set = set()
        self._conj_nodes: Dict[tuple, _Node] = {}
        self._emitted: Dict[tuple, Expr] = {}
        self._active: Dict[tuple, _Active] = {}
        self._ref_names: Dict[int, str] = {}
        self._depth = 0
        self._dist_depth = 0
        self._any_rule: Optional[int] = None
        self._any_obj: Optional[Expr] = None
        self._any_arr: Optional[Expr] = None
        self._keep: List[Any] = []  # synthetic schemas (kept alive: their id() is used as a key)
        self._sizes: Dict[int, tuple] = {}  # size estimates of this compilation's expressions
        self._open_keys: Dict[tuple, Expr] = {}  # declared names -> ref of the "any other key" rule
        if syntax not in ("json", "python"):
            raise ValueError(f"syntax must be 'json' or 'python', not {syntax!r}")
        if kwargs and syntax != "python":
            raise ValueError("kwargs=True needs syntax='python'")
        if kwargs_separators is not None and not kwargs:
            raise ValueError("kwargs_separators needs kwargs=True")
        self.syntax = syntax
        self.kwargs = bool(kwargs)
        self._kw = False  # emitting the root object as keyword arguments (kwargs=True, root level only)
        if syntax == "python" and separators is None:
            separators = (", ", ": ")  # repr() style
        self._setup_ws(whitespace, max_whitespace, separators)
        if self.kwargs:
            self._setup_kwargs(whitespace, max_whitespace, separators, kwargs_separators)

    # ------------------------------------------------------------------------------ whitespace
    def _setup_ws(self, whitespace, max_ws, separators) -> None:
        key = (whitespace, max_ws, separators if separators is None else tuple(separators))
        self._ws_key = key
        hit = _WS_CACHE.get(key)
        if hit is not None:
            (self.ws, self.comma, self.colon, self.obj_open, self.obj_close, self.arr_open, self.arr_close,
             self.empty_obj, self.empty_arr) = hit
            return
        if whitespace not in ("compact", "flexible"):
            raise ValueError(f"whitespace must be 'compact' or 'flexible', not {whitespace!r}")
        item_sep, key_sep = ",", ":"
        if separators is not None:
            try:
                item_sep, key_sep = separators
            except (TypeError, ValueError):
                raise ValueError("separators must be a pair (item_separator, key_separator)") from None
            for s, core in ((item_sep, ","), (key_sep, ":")):
                if not isinstance(s, str) or s.strip(" \t\n\r") != core:
                    raise ValueError(f"separator {s!r} must be {core!r} surrounded by JSON whitespace only")
        if whitespace == "flexible":
            if max_ws < 0:
                raise ValueError("max_whitespace must be >= 0")
            ws = rep((BYTE, ((9, 10), (13, 13), (32, 32))), 0, int(max_ws))
            item_sep, key_sep = ",", ":"
        else:
            ws = EMPTY
        self.ws = ws
        self.comma = _mkseq([ws, lit(item_sep), ws])
        self.colon = _mkseq([ws, lit(key_sep), ws])
        self.obj_open = _mkseq([(LIT, b"{"), ws])
        self.obj_close = _mkseq([ws, (LIT, b"}")])
        self.arr_open = _mkseq([(LIT, b"["), ws])
        self.arr_close = _mkseq([ws, (LIT, b"]")])
        self.empty_obj = _mkseq([(LIT, b"{"), ws, (LIT, b"}")])
        self.empty_arr = _mkseq([(LIT, b"["), ws, (LIT, b"]")])
        _WS_CACHE[key] = (self.ws, self.comma, self.colon, self.obj_open, self.obj_close, self.arr_open,
                          self.arr_close, self.empty_obj, self.empty_arr)

    def _setup_kwargs(self, whitespace, max_ws, separators, kwargs_separators) -> None:
        """kwargs=True: `name=value` pairs joined by the argument separator, no braces."""
        if whitespace == "flexible":
            ws = self.ws
            self.kw_comma = _mkseq([ws, (LIT, b","), ws])
            self.kw_eq = _mkseq([ws, (LIT, b"="), ws])
            return
        if kwargs_separators is None:
            kwargs_separators = (separators[0] if separators is not None else ", ", "=")
        try:
            arg_sep, eq_sep = kwargs_separators
        except (TypeError, ValueError):
            raise ValueError("kwargs_separators must be a pair (argument_separator, '=' separator)") from None
        for sep, core in ((arg_sep, ","), (eq_sep, "=")):
            if not isinstance(sep, str) or sep.strip(" \t\n\r") != core:
                raise ValueError(f"kwargs separator {sep!r} must be {core!r} surrounded by whitespace only")
        self.kw_comma = lit(arg_sep)
        self.kw_eq = lit(eq_sep)

    def _obj_tokens(self) -> tuple:
        """(colon, comma, open, close, empty) of the object being emitted (JSON/Python dict or kwargs)"""
        if self._kw:
            return self.kw_eq, self.kw_comma, EMPTY, EMPTY, EMPTY
        return self.colon, self.comma, self.obj_open, self.obj_close, self.empty_obj

    def _key_lit(self, name: str, ptr: str, kw: str = "properties") -> Expr:
        """the key expression of a declared member"""
        if self._kw:
            if not _py_identifier_ok(name):
                raise SchemaError(f"property name {name!r} is not a Python identifier, so it cannot be a keyword "
                                  f"argument (kwargs=True)", ptr, kw)
            return (LIT, name.encode("utf-8"))
        return json_string_literal(name)

    # ---------------------------------------------------------------------------------- errors
    def unsupported(self, kw: str, ptr: str, why: str = "") -> None:
        if self.lenient:
            self.ignored.append((kw, ptr))
            return
        msg = f"unsupported keyword {kw!r}" + (f": {why}" if why else "") + " (pass lenient=True to ignore it)"
        raise SchemaError(msg, ptr, kw)

    # ------------------------------------------------------------------------------ references
    def doc(self) -> _Doc:
        if self._doc is None:
            self._doc = _Doc(self.root)
        return self._doc

    def conj(self, s, ptr: str) -> tuple:
        """A one-schema conjunction; a pure {"$ref": ...} is replaced by its (named) target."""
        if type(s) is dict and "$ref" in s and _is_pure_ref(s):
            seen = set()
            while type(s) is dict and "$ref" in s and _is_pure_ref(s):
                if id(s) in seen:
                    raise SchemaError("$ref cycle that never reaches a schema (recursion without progress)",
                                      ptr, "$ref")
                seen.add(id(s))
                r = s["$ref"]
                if not isinstance(r, str):
                    raise SchemaError("$ref must be a string", ptr, "$ref")
                s, ptr = self.doc().resolve(r, s, ptr)
            self._ref_names.setdefault(id(s), ptr)
        return ((s, ptr),)

    # ---------------------------------------------------------------------------- normalization
    def node(self, s, ptr: str) -> _Node:
        if s is True:
            return _NODE_TRUE
        if s is False:
            return _NODE_FALSE
        if type(s) is _Node:
            return s
        n = self._norm.get(id(s))
        if n is not None:
            return n
        if type(s) is not dict:
            if isinstance(s, dict):
                s = dict(s)
            else:
                raise SchemaError(f"a schema must be an object or a boolean, not {type(s).__name__}", ptr)
        if id(s) in self._normalizing:
            raise SchemaError("schema refers to itself without consuming input (recursion without progress)",
                              ptr, "$ref")
        self._normalizing.add(id(s))
        try:
            n = self._normalize(s, ptr)
        finally:
            self._normalizing.discard(id(s))
        self._norm[id(s)] = n
        return n

    def conj_node(self, cj: tuple) -> _Node:
        if len(cj) == 1:
            s, p = cj[0]
            return self.node(s, p)
        if not cj:
            return _NODE_TRUE
        key = tuple(id(s) for s, _ in cj)
        n = self._conj_nodes.get(key)
        if n is None:
            n = _Node(cj[0][1])
            for s, p in cj:
                _merge_into(n, self.node(s, p))
                if n.types == 0:
                    break
            self._conj_nodes[key] = n
        return n

    def _normalize(self, s: dict, ptr: str) -> _Node:
        n = _Node(ptr)
        merges: List[_Node] = []
        for k, v in s.items():
            h = _HANDLERS.get(k)
            if h is not None:
                h(self, n, v, ptr, s, merges)
            elif k in _ANNOTATIONS:
                continue
            elif k in _UNSUPPORTED:
                self._unsupported_kw(n, k, v, ptr, s, merges)
            # any other keyword is not part of any JSON Schema vocabulary: an annotation, ignored
        if s.get("nullable") is True:
            n.types |= T_NULL
        for m in merges:
            _merge_into(n, m)
        return n

    def synthetic(self, n: _Node, ptr: str) -> tuple:
        """a conj made of an already-normalized node"""
        self._keep.append(n)
        n.ptr = ptr
        return ((n, ptr),)

    def _unsupported_kw(self, n: _Node, k: str, v, ptr: str, s: dict, merges: list) -> None:
        # cases that are exactly no-ops, or expressible anyway
        if k == "uniqueItems":
            if v is True:
                n.unique = ptr
                n.c = True
            return
        if k in ("then", "else"):
            return  # no "if": ignored by the spec; otherwise handled (or reported) with "if"
        if k == "if":
            if "then" not in s and "else" not in s:
                return
            if isinstance(v, bool):
                br = "then" if v else "else"
                if br in s:
                    for sub, p in self.conj(s[br], _ptr(ptr, br)):
                        merges.append(self.node(sub, p))
                return
            cond = self.node(v, _ptr(ptr, "if"))
            if _only_types(cond):  # if {type: T} then A else B  ==  (T ∧ A) ∨ (¬T ∧ B)
                yes = _Node()
                yes.types = cond.types
                no = _Node()
                no.types = T_ALL & ~cond.types
                if "then" in s:
                    _merge_into(yes, self.conj_node(self.conj(s["then"], _ptr(ptr, "then"))))
                if "else" in s:
                    _merge_into(no, self.conj_node(self.conj(s["else"], _ptr(ptr, "else"))))
                n.anyofs += ((self.synthetic(yes, _ptr(ptr, "then")) , self.synthetic(no, _ptr(ptr, "else"))),
                             _ptr(ptr, "if")),
                n.c = True
                return
        if k in ("minContains", "maxContains"):
            return  # read with "contains" (and ignored without it, as the spec says)
        if k == "contains":
            lo = s.get("minContains", 1)
            hi = s.get("maxContains")
            lo = _nonneg_int(lo, ptr, "minContains")
            hi = None if hi is None else _nonneg_int(hi, ptr, "maxContains")
            if lo == 0 and hi is None:
                return
            n.contains += ((self.conj(v, _ptr(ptr, "contains")), lo, hi, ptr),)
            n.c = True
            return
        if k in ("dependentRequired", "dependentSchemas", "dependencies") and isinstance(v, dict):
            # "if `name` is present then ..." == (name absent) ∨ (name present ∧ ...): a case split
            for name, dep in v.items():
                dptr = _ptr(ptr, k, name)
                absent = _Node()
                absent.props = {name: ((False, dptr),)}
                absent.c = True
                present = _Node()
                present.c = True
                if isinstance(dep, list):
                    if not all(isinstance(x, str) for x in dep):
                        raise SchemaError(f"{k} values must be arrays of strings", dptr, k)
                    present.required = (name,) + tuple(x for x in dict.fromkeys(dep) if x != name)
                elif k != "dependentRequired":
                    present.required = (name,)
                    _merge_into(present, self.conj_node(self.conj(dep, dptr)))
                else:
                    raise SchemaError("dependentRequired values must be arrays of strings", dptr, k)
                n.anyofs += ((self.synthetic(absent, dptr), self.synthetic(present, dptr)), dptr),
            n.c = True
            return
        if k in ("patternProperties", "dependentRequired", "dependentSchemas", "dependencies") and v == {}:
            return
        if k == "patternProperties" and isinstance(v, dict):
            pp = _ptr(ptr, k)
            n.pattern_props += tuple((pat, self.conj(sub, _ptr(pp, pat)), ptr) for pat, sub in v.items())
            n.obj_kw = n.c = True
            return
        if k in ("unevaluatedProperties", "unevaluatedItems") and (v is True or v == {}):
            return
        if k == "not":
            inner = self.conj_node(self.conj(v, _ptr(ptr, "not")))
            if _only_types(inner):  # not {type: T}: the other types
                n.types &= T_ALL & ~inner.types
                return
        if k == "propertyNames":
            n.prop_names = _cat(n.prop_names, self.conj(v, _ptr(ptr, "propertyNames")))
            n.obj_kw = n.c = True
            return
        if k in ("unevaluatedProperties", "unevaluatedItems") and not any(a in s for a in _APPLICATORS):
            # without in-place applicators, "evaluated" is just what properties/items cover
            if k == "unevaluatedProperties":
                if "additionalProperties" not in s:
                    n.additional = self.conj(v, _ptr(ptr, k))
                    n.obj_kw = n.c = True
                return
            it = s.get("items")
            if it is not None and (not isinstance(it, list) or "additionalItems" in s):
                return
            n.items = self.conj(v, _ptr(ptr, k))
            n.c = True
            return
        self.unsupported(k, ptr)

    # ----------------------------------------------------------------------------- emission
    def emit_conj(self, cj: tuple) -> Expr:
        if not cj:
            return self.any_value()
        key = (id(cj[0][0]),) if len(cj) == 1 else tuple(id(s) for s, _ in cj)
        if self._kw:
            key += ("kwargs",)
        e = self._emitted.get(key)
        if e is not None:
            return e
        st = self._active.get(key)
        if st is not None:
            if st.depth == self._depth:
                raise SchemaError("recursive $ref without consuming input (left recursion)", cj[0][1], "$ref")
            if st.rule is None:
                st.rule = self.g.add_rule(cj[0][1] + (" (kwargs)" if self._kw else ""))
            return ref(st.rule)
        named = len(cj) == 1 and id(cj[0][0]) in self._ref_names
        st = _Active(self._depth, self.g.add_rule(self._ref_names[id(cj[0][0])] + (" (kwargs)" if self._kw else ""))
                     if named else None, cj[0][1])
        self._active[key] = st
        try:
            e = self.emit_node(self.conj_node(cj))
        finally:
            del self._active[key]
        if st.rule is not None:
            if named and e[0] not in (REF, LIT, BYTE, CP) and self.size(e) > SHARE_THRESHOLD:
                self.g.calls.add(st.rule)  # build once and call, see _call_rule
            self.g.set_rule(st.rule, e)
            e = ref(st.rule)
        self._emitted[key] = e
        return e

    def _quick(self, s) -> Optional[Expr]:
        """Fast path for the leaf schemas tool definitions are made of ({"type": "string", "description":
        ...}, with or without a string "enum"; a string "const", such as a call object's name); None when
        the general path is needed."""
        t = en = None
        cst = _MISSING
        for k, v in s.items():
            if k == "type":
                t = v
            elif k == "enum":
                en = v
            elif k == "const":
                cst = v
            elif k not in _ANNOTATIONS:
                return None
        if cst is not _MISSING:
            if en is None and type(cst) is str and (t is None or t == "string"
                                                     or (t == "str" and self.compat == "bfcl")):
                return json_string_literal(cst)
            return None
        if type(t) is not str:
            return None
        if en is None:
            if t == "integer" and not self.int_fraction:
                return INTEGER_PLAIN
            e = _PRIMITIVES.get(t)
            if e is None and self.compat == "bfcl":
                std = _BFCL_TYPES.get(t, 0)
                e = self.any_value() if std is None else _PRIMITIVES.get(std)
            return e
        if (t == "string" or (t == "str" and self.compat == "bfcl")) and type(en) is list and \
                all(type(x) is str for x in en):
            if not en:
                return NOTHING
            return _alt(*[json_string_literal(x) for x in dict.fromkeys(en)])
        return None

    def emit_child(self, cj: tuple) -> Expr:
        if len(cj) == 1 and type(cj[0][0]) is dict:
            e = self._quick(cj[0][0])
            if e is not None:
                return e
        self._depth += 1
        kw, self._kw = self._kw, False
        try:
            return self.emit_conj(cj)
        finally:
            self._depth -= 1
            self._kw = kw

    def emit_node(self, n: _Node) -> Expr:
        t = n.types
        if t == 0:
            return NOTHING
        if self._kw:
            return self._kw_node(n)
        if not n.c:
            if t == T_ALL:
                return self.any_value()
        elif n.enum is not None:
            return self._enum(n)
        elif n.anyofs or n.oneofs:
            return self._distribute(n)
        parts = []
        if t & T_NULL:
            parts.append(_NULL)
        if t & T_BOOL:
            parts.append(_BOOL)
        if t & T_NUM:
            parts.append(self._number(n))
        if t & T_STR:
            parts.append(self._string(n))
        if t & T_ARR:
            parts.append(self._array(n))
        if t & T_OBJ:
            parts.append(self._object(n))
        return _alt(*parts)

    def _kw_node(self, n: _Node) -> Expr:
        """the root object as keyword arguments: only its object instances can be written that way"""
        if not n.types & T_OBJ:
            return NOTHING
        if n.types != T_OBJ:
            n = n.copy()
            n.types = T_OBJ
            n.c = True
        if n.enum is not None:
            return self._enum(n)
        if n.anyofs or n.oneofs:
            return self._distribute(n)
        return self._object(n)

    # ------------------------------------------------------------------------------ any value
    def any_value(self) -> Expr:
        """ref to the shared recursive rule for any JSON value (created once per grammar)"""
        if self._any_rule is None:
            skey = ("any_value", self._ws_key, self.syntax)
            hit = self._shared.get(skey)
            if hit is not None:  # another schema compiled into the same grammar made it
                self._any_rule, self._any_obj, self._any_arr = hit
                return (REF, self._any_rule)
            r = self._any_rule = self.g.add_rule("any_value")
            key = (self._ws_key, r)
            hit = _ANY_CACHE.get(key)
            if hit is None:
                v = (REF, r)
                pair = _mkseq([STRING_ANY, self.colon, v])
                obj = _alt(self.empty_obj, _mkseq([self.obj_open, pair, (REP, _mkseq([self.comma, pair]), 0, -1),
                                                   self.obj_close]))
                arr = _alt(self.empty_arr, _mkseq([self.arr_open, v, (REP, _mkseq([self.comma, v]), 0, -1),
                                                   self.arr_close]))
                body = _alt(obj, arr, STRING_ANY, NUMBER_ANY, _NULL, _BOOL)
                hit = _ANY_CACHE[key] = (obj, arr, body)
            self._any_obj, self._any_arr, body = hit
            self.g.set_rule(r, body)
            self._shared[skey] = (r, self._any_obj, self._any_arr)
        return (REF, self._any_rule)

    def _any_object(self) -> Expr:
        if self._any_obj is None:
            self.any_value()
        return self._any_obj

    def _any_array(self) -> Expr:
        if self._any_arr is None:
            self.any_value()
        return self._any_arr

    # ---------------------------------------------------------------------------- enum/const
    def _enum(self, n: _Node) -> Expr:
        vals = [v for v in n.enum if self.accepts(n, v)]
        if not vals:
            return NOTHING
        if not self.int_fraction and not n.types & T_FRAC:  # draft 3/4 integers: digits only
            return _alt(*[_int_literal(v) if _type_bit(v) == T_INT else self.value_literal(v) for v in vals])
        return _alt(*[self.value_literal(v) for v in vals])

    def value_literal(self, v) -> Expr:
        if v is None:
            return _NULL
        if v is True:
            return (LIT, b"true")
        if v is False:
            return (LIT, b"false")
        if isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                return NOTHING
            return _number_literal(v)
        if isinstance(v, str):
            return json_string_literal(v)
        if isinstance(v, list):
            if not v:
                return self.empty_arr
            items = [self.value_literal(x) for x in v]
            body = [self.arr_open, items[0]]
            for x in items[1:]:
                body += [self.comma, x]
            body.append(self.arr_close)
            return _mkseq(body)
        if isinstance(v, dict):
            if self._kw:
                if not all(isinstance(k, str) and _py_identifier_ok(k) for k in v):
                    return NOTHING  # no keyword-argument spelling
                self._kw = False
                try:
                    vals = [self.value_literal(x) for x in v.values()]
                finally:
                    self._kw = True
                items = [(k, (LIT, k.encode("utf-8")), x, True) for k, x in zip(v, vals)]
            else:
                items = [(k, json_string_literal(k), self.value_literal(x), True) for k, x in v.items()]
            any_order = self.any_order and len(items) <= ANY_ORDER_MAX_PROPERTIES
            return self._object_expr(items, None, any_order)
        raise SchemaError(f"enum/const value {v!r} is not JSON", "#", "enum")

    # ---------------------------------------------------------------------------- composition
    def _distribute(self, n: _Node) -> Expr:
        base = n.copy()
        base.anyofs = ()
        base.oneofs = ()
        groups: List[Sequence[tuple]] = [g for g, _p in n.anyofs]
        for g, p in n.oneofs:
            groups.append(self._oneof_group(g, base, p))
        if any(not g for g in groups):
            return NOTHING
        if _is_blank(base) and len(groups) == 1:
            return _alt_distinct(*[self.emit_conj(c) for c in groups[0]])
        total = 1
        for g in groups:
            total *= max(len(g), 1)
        if total > MAX_DISTRIBUTED_ALTERNATIVES:
            raise LimitError(f"anyOf/oneOf combined with sibling keywords expands to {total} alternatives "
                             f"(limit {MAX_DISTRIBUTED_ALTERNATIVES}) at {n.ptr}")
        self._dist_depth += 1
        if self._dist_depth > 32:
            raise SchemaError("anyOf/oneOf/allOf nest through $ref without consuming input", n.ptr, "anyOf")
        try:
            out = []
            for combo in itertools.product(*groups):
                m = base.copy()
                for c in combo:
                    _merge_into(m, self.conj_node(c))
                    if m.types == 0:
                        break
                if m.types:
                    out.append(self.emit_node(m))
            return _alt_distinct(*out) if out else NOTHING
        finally:
            self._dist_depth -= 1

    def _oneof_group(self, grp: tuple, base: _Node, ptr: str) -> tuple:
        if len(grp) <= 1 or self.coerce_one_of:
            return grp
        nodes = []
        live = []
        for c in grp:
            m = base.copy()
            _merge_into(m, self.conj_node(c))
            if m.types:
                nodes.append(m)
                live.append(c)
        grp = tuple(live)
        if len(grp) <= 1:
            return grp
        if all(self.disjoint(a, b) for a, b in itertools.combinations(nodes, 2)):
            return grp
        # all branches finite: keep exactly the values valid in one branch
        if all(m.enum is not None for m in nodes):
            keep = []
            seen = set()
            for m in nodes:
                for v in m.enum:
                    k = _canon(v)
                    if k in seen:
                        continue
                    seen.add(k)
                    if sum(1 for x in nodes if self.accepts(x, v)) == 1:
                        keep.append(v)
            syn = {"enum": keep}
            self._keep.append(syn)
            return (((syn, ptr),),)
        exact = self._oneof_presence(grp, ptr)
        if exact is not None:
            return exact
        if self.lenient:
            self.ignored.append(("oneOf (treated as anyOf)", ptr))
            return grp
        raise SchemaError("oneOf branches are not provably disjoint, so oneOf cannot be enforced exactly; "
                          "pass coerce_one_of=True to treat it as anyOf", ptr, "oneOf")

    def _oneof_presence(self, grp: tuple, ptr: str) -> Optional[tuple]:
        """oneOf whose branches only say which properties are present/absent (``{"required": [...]}``,
        ``{"properties": {"x": false}}``): "exactly branch i" = branch i ∧ (for every other branch, one of
        its literals flipped). Returns an equivalent anyOf group, or None when the shape does not fit."""
        lits = []
        for c in grp:
            b = self.conj_node(c)
            if b.types not in (T_ALL, T_OBJ) or b.enum is not None or b.anyofs or b.oneofs or b.additional \
                    is not None or b.prop_names or b.min_props or b.max_props is not None:
                return None
            m = b.copy()
            m.types, m.props, m.required, m.obj_kw = T_ALL, {}, (), False
            if not _is_blank(m):
                return None
            absent = []
            for name, cj in b.props.items():
                t = self.conj_node(cj).types
                if t == 0:
                    absent.append(name)
                elif not _is_blank(self.conj_node(cj)):
                    return None
            lits.append((set(b.required), set(absent)))
        out = []
        for i, (req_i, abs_i) in enumerate(lits):
            flips = []
            for j, (req_j, abs_j) in enumerate(lits):
                if j != i:
                    flips.append([("absent", p) for p in sorted(req_j)] + [("present", p) for p in sorted(abs_j)])
            total = 1
            for f in flips:
                total *= len(f)
            if total > 256:
                return None
            for combo in itertools.product(*flips):
                req, ab = set(req_i), set(abs_i)
                for kind, p in combo:
                    (ab if kind == "absent" else req).add(p)
                if req & ab:
                    continue
                node = _Node()
                node.types = T_OBJ
                node.c = True
                node.required = tuple(sorted(req))
                node.props = {p: ((False, ptr),) for p in sorted(ab)}
                out.append(self.synthetic(node, ptr))
        return tuple(out)

    def disjoint(self, a: _Node, b: _Node, depth: int = 0) -> bool:
        if not (a.types & b.types):
            return True
        if depth > 16:
            return False
        if a.enum is not None:
            return not any(self.accepts(a, v) and self.accepts(b, v) for v in a.enum)
        if b.enum is not None:
            return not any(self.accepts(b, v) and self.accepts(a, v) for v in b.enum)
        if a.anyofs or a.oneofs or b.anyofs or b.oneofs:
            return False
        shared = a.types & b.types
        if shared & (T_NULL | T_BOOL):
            return False
        if shared & T_STR:
            if not ((a.max_len is not None and a.max_len < b.min_len) or
                    (b.max_len is not None and b.max_len < a.min_len)):
                return False
        if shared & T_NUM:
            if not (_ranges_disjoint(a, b) or _ranges_disjoint(b, a)):
                return False
        if shared & T_ARR:
            ok = (a.max_items is not None and a.max_items < b.min_items) or \
                 (b.max_items is not None and b.max_items < a.min_items)
            if not ok:
                for i in range(min(a.min_items, b.min_items)):
                    ca = a.prefix[i] if i < len(a.prefix) else a.items
                    cb = b.prefix[i] if i < len(b.prefix) else b.items
                    if self.disjoint(self.conj_node(ca), self.conj_node(cb), depth + 1):
                        ok = True
                        break
            if not ok:
                return False
        if shared & T_OBJ:
            ok = False
            for p in self._required(a):
                cb = self._prop_conj(b, p)
                if cb is None or self.disjoint(self.conj_node(self._prop_conj(a, p) or _TRUE_CONJ),
                                               self.conj_node(cb), depth + 1):
                    ok = True
                    break
            if not ok:
                for p in self._required(b):
                    if self._prop_conj(a, p) is None:
                        ok = True
                        break
            if not ok:
                return False
        return True

    # -------------------------------------------------------------------------------- objects
    def _required(self, n: _Node) -> tuple:
        if self.strict:
            return tuple(n.props) + tuple(r for r in n.required if r not in n.props)
        return n.required

    def _additional(self, n: _Node) -> Optional[tuple]:
        """effective additionalProperties conj, or None when no additional property is allowed"""
        a = n.additional
        if a is None:
            if self.add_default_false and n.obj_kw:
                return None
            return _TRUE_CONJ
        if (len(a) == 1 and a[0][0] is False) or self.conj_node(a).types == 0:
            return None
        return a

    def _prop_conj(self, n: _Node, name: str) -> Optional[tuple]:
        """conj for property `name` (None = the property may not appear)"""
        c = n.props.get(name)
        if c is not None:
            return c
        return self._additional(n)

    def _object(self, n: _Node, key_override: Optional[Expr] = None) -> Expr:
        if n.pattern_props:
            pp = self._pattern_props(n)
            if pp is not None:
                return pp
        if not n.props and not n.required and not n.min_props and n.max_props is None and not n.prop_names and (
                n.additional == _TRUE_CONJ or (n.additional is None and not (self.add_default_false and n.obj_kw))) \
                and not self._kw:
            return self._any_object()
        required = self._required(n)
        req_set = set(required)
        add = self._additional(n)
        pn = self.conj_node(n.prop_names) if n.prop_names else None
        items = []
        for name, cj in n.props.items():
            v = self.emit_child(cj) if pn is None or self.accepts(pn, name) else NOTHING
            items.append((name, self._key_lit(name, n.ptr) if v != NOTHING else None, v, name in req_set))
        for name in required:
            if name not in n.props:
                v = self.emit_child(add) if add is not None and (pn is None or self.accepts(pn, name)) else NOTHING
                items.append((name, self._key_lit(name, n.ptr, "required") if v != NOTHING else None, v, True))
        add_pair = None
        if add is not None:
            av = self.emit_child(add)
            if av != NOTHING:
                if key_override is not None:
                    key = key_override
                elif self._kw:
                    key = self._kw_key(pn, [it[0] for it in items], n.ptr)
                elif pn is None:
                    key = self._key_excluding([it[0] for it in items])
                else:
                    key = self._property_name_key(pn, [it[0] for it in items], n.ptr)
                if key != NOTHING:
                    add_pair = (key, av)
        # min/maxProperties
        lo, hi = n.min_props, n.max_props
        add_lo, add_hi = 0, -1
        if lo or hi is not None:
            live = [it for it in items if it[2] != NOTHING]
            nreq = sum(1 for it in items if it[3])
            most = None if add_pair is not None else len(live)
            if lo <= nreq and (hi is None or (most is not None and most <= hi)):
                pass  # always satisfied
            elif hi is not None and hi < nreq or (most is not None and most < lo):
                return NOTHING
            elif all(it[3] for it in items) and not (self.any_order and add_pair is not None and len(items) > 1):
                k = len(items)
                if add_pair is None:
                    if not (lo <= k and (hi is None or k <= hi)):
                        return NOTHING
                else:
                    add_lo = max(0, lo - k)
                    add_hi = -1 if hi is None else hi - k
                    if add_hi > self.max_rep:
                        raise LimitError(f"maxProperties {hi} exceeds max_repetition={self.max_rep}")
            else:
                kw = "minProperties" if lo > nreq else "maxProperties"
                self.unsupported(kw, n.ptr, "only supported when every declared property is required")
        return self._object_expr(items, add_pair, self.any_order, add_lo, add_hi, n.ptr)

    def _pattern_props(self, n: _Node) -> Optional[Expr]:
        """patternProperties in the exact cases: all their schemas unconstrained while additional members
        are allowed (no effect), or additional members forbidden, no declared name matching a pattern, and
        every pattern sharing one schema (a key matching two patterns must satisfy both). Other cases:
        unsupported. Returns the object expression, or None to go on without patternProperties."""
        ptr = n.ptr
        pats = n.pattern_props
        m = n.copy()
        m.pattern_props = ()
        trivial = all(_is_blank(self.conj_node(cj)) for _p, cj, _q in pats)
        add = self._additional(n)
        if n.pp_conflict:
            self.unsupported("patternProperties", n.pp_conflict, "merged (allOf/$ref) with other object rules")
            return self._object(m)
        if trivial and add is not None and n.additional in (None, _TRUE_CONJ):
            return self._object(m)
        why = None
        if add is not None or n.prop_names:
            why = "with additionalProperties other than false (needs the complement of the pattern)"
        elif len({tuple(id(x) for x, _ in cj) for _p, cj, _q in pats}) > 1 and not trivial:
            why = "several patterns with different schemas"
        else:
            for p, _cj, _q in pats:
                try:
                    rx = _rx.python_matcher(p)
                except _rx.RegexUnsupported as e:
                    raise SchemaError(f"unsupported regular expression {p!r}: {e}", ptr, "patternProperties")
                declared = list(n.props) + [r for r in self._required(n) if r not in n.props]
                if any(rx.fullmatch(d) for d in declared):
                    why = "a declared property name matches the pattern (needs set difference)"
                    break
        if why:
            self.unsupported("patternProperties", ptr, why)
            return self._object(m)
        if self._kw:
            self.unsupported("patternProperties", ptr, "on the keyword-argument object (kwargs=True)")
            return self._object(m)
        keys = []
        for p, _cj, q in pats:
            body = _rx.pattern_body(p, pointer=q, keyword="patternProperties", max_repetition=self.max_rep)
            keys.append((SEQ, (_Q, body, _Q)))
        m.additional = pats[0][1]
        m.obj_kw = True
        return self._object(m, key_override=_alt(*keys))

    def _property_name_key(self, pn: _Node, declared: List[str], ptr: str) -> Expr:
        """keys allowed by propertyNames `pn` that are not declared property names"""
        if not pn.types & T_STR:
            return NOTHING
        if pn.enum is not None:
            keys = [v for v in pn.enum if isinstance(v, str) and v not in declared and self.accepts(pn, v)]
            return alt(*[json_string_literal(v) for v in keys]) if keys else NOTHING
        if any(self.accepts(pn, d) for d in declared):
            self.unsupported("propertyNames", ptr, "a property-name schema that admits a declared property "
                                                   "name needs set difference")
        m = pn.copy()
        m.types &= T_STR
        return self.emit_node(m)

    def _key_excluding(self, names: List[str]) -> Expr:
        """Any key but the declared names, as an open-string rule: every prefix of a key can still be
        completed to a key that is none of them (add a character), so the engine takes the tokens that
        stay inside it from its precomputed string sets and walks only the tokens that close it."""
        if not names:
            return key_excluding(names)  # a plain string: the engine knows its states already
        key = tuple(names)
        r = self._open_keys.get(key)
        if r is None:
            body = key_excluding(names)
            label = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            r = ref(self.g.add_rule(f"key not in ({label})", body, open_string=open_key_names(names)))
            self._sizes[id(r)] = (self.size(body), r)
            self._open_keys[key] = r
        return r

    def _kw_key(self, pn: Optional[_Node], declared: List[str], ptr: str) -> Expr:
        """kwargs=True: the names of additional keyword arguments (ASCII identifiers, not declared)"""
        if pn is None:
            return identifier_excluding(declared)
        if not pn.types & T_STR:
            return NOTHING
        if pn.enum is not None:
            keys = [v for v in pn.enum if isinstance(v, str) and v not in declared and _py_identifier_ok(v)
                    and self.accepts(pn, v)]
            return _alt(*[(LIT, v.encode("utf-8")) for v in dict.fromkeys(keys)]) if keys else NOTHING
        self.unsupported("propertyNames", ptr, "other than enum/const on the keyword-argument object (kwargs=True)")
        return identifier_excluding(declared)

    def _object_expr(self, items, add_pair, any_order: bool, add_lo: int = 0, add_hi: int = -1,
                     ptr: str = "#") -> Expr:
        """items: [(name, key_expr, value_expr, required)], add_pair: (key_expr, value_expr) or None.

        add_lo/add_hi bound the number of additional members (minProperties/maxProperties)."""
        colon, comma, obj_open, obj_close, empty_obj = self._obj_tokens()
        names: List[str] = []
        pairs: List[Expr] = []
        reqs: List[bool] = []
        for name, key, v, req in items:
            if v == NOTHING:
                if req:
                    return NOTHING
                continue
            names.append(name)
            pairs.append((SEQ, (key, colon, v)))
            reqs.append(req)
        k = len(pairs)
        if add_pair is None and k and all(reqs) and not (any_order and k > 1):
            # every member required, in schema order (strict tool schemas): one sequence
            body = (SEQ, (pairs[0],) + tuple([(SEQ, (comma, p)) for p in pairs[1:]])) if k > 1 else pairs[0]
            return _mkseq([obj_open, body, obj_close])
        A = _mkseq([add_pair[0], colon, add_pair[1]]) if add_pair is not None else None
        if A is not None:
            if any_order and k > 1:  # the additional member appears in every any_order state
                A = self._call_rule(ptr + " (additional member)", A) if A[0] != REF else A
            else:
                A = self.shared(A, ptr + " (additional member)")
        lead = 0  # optional members before the first required one: each later pair is copied per option
        while lead < k and not reqs[lead]:
            lead += 1
        if lead >= 1 and not (any_order and k > 1):
            pairs = [pairs[0]] + [self.shared(p, f"{ptr} (member {names[i]!r})") for i, p in
                                  enumerate(pairs[1:], 1)]
        if any_order and k > 1:
            if k > ANY_ORDER_MAX_PROPERTIES:
                raise LimitError(f"any_order=True supports at most {ANY_ORDER_MAX_PROPERTIES} properties per "
                                 f"object ({k} at {ptr}); use any_order=False for this schema")
            if k >= 4:  # each member appears in 2**(k-1) states
                pairs = [self.shared(p, f"{ptr} (member {names[i]!r})", SHARE_THRESHOLD // 8)
                         for i, p in enumerate(pairs)]
            return self._any_order_expr(pairs, reqs, A, ptr)
        if k == 0 and A is None:
            return empty_obj
        # Schema order: declared members (each optional one may be skipped), then additional members.
        # `tail[i]` = ", member_i" (optional or not); the first member present has no comma.
        tail: List[Expr] = []
        for i in range(k):
            cp_ = (SEQ, (comma, pairs[i]))
            tail.append(cp_ if reqs[i] else (REP, cp_, 0, 1))
        decl = []
        empty_ok = True
        for i in range(k):
            decl.append((SEQ, (pairs[i],) + tuple(tail[i + 1:])) if i + 1 < k else pairs[i])
            if reqs[i]:
                empty_ok = False
                break
        alts = []
        if A is None:
            alts = decl
        else:
            a_tail = rep(_mkseq([comma, A]), add_lo, add_hi)
            if empty_ok and add_lo == 0 and add_hi == -1:
                # the first member is a declared or an additional one, and additional ones may follow
                # either way: one copy of the additional member and its loop instead of two
                alts.append(_mkseq([_alt(*decl, A), a_tail]))
            else:
                if decl:
                    alts.append(_mkseq([_alt(*decl), a_tail]))
                if empty_ok and (add_hi == -1 or add_hi >= 1):
                    alts.append(_mkseq([A, rep(_mkseq([comma, A]), max(0, add_lo - 1),
                                               -1 if add_hi == -1 else add_hi - 1)]))
            if add_lo > 0 and k == 0:
                empty_ok = False
        body = _alt(*alts) if alts else NOTHING
        full = _mkseq([obj_open, body, obj_close]) if body != NOTHING else NOTHING
        if empty_ok:
            return _alt(empty_obj, full) if full != NOTHING else empty_obj
        return full

    def size(self, e: Expr) -> int:
        return _size_of(e, self._sizes)

    def shared(self, e: Expr, name: str, threshold: int = SHARE_THRESHOLD) -> Expr:
        """e, or a call of a rule holding e when e is big (for expressions used more than once)."""
        if e[0] in (REF, LIT, BYTE, CP) or self.size(e) <= threshold:
            return e
        return self._call_rule(name, e)

    def _call_rule(self, name: str, body: Expr) -> Expr:
        """A rule the engine builds once and *calls* instead of inlining it at every use (a subexpression
        used from many places would otherwise be copied into the automaton once per path)."""
        r = self.g.add_rule(name, body, call=True)
        return ref(r)

    def _any_order_expr(self, pairs: List[Expr], reqs: List[bool], A: Optional[Expr], ptr: str) -> Expr:
        """Members in any order, each declared one at most once, required ones present: one state per set
        of members already written (2**n), each a called rule so the automaton stays O(n * 2**n)."""
        n = len(pairs)
        req_mask = sum(1 << i for i in range(n) if reqs[i])
        _colon, comma, obj_open, obj_close, empty_obj = self._obj_tokens()
        shared = n >= 4
        c_pairs = [_mkseq([comma, p]) for p in pairs]
        a_loop = rep(_mkseq([comma, A]), 0, -1) if A is not None else EMPTY
        memo: Dict[int, Expr] = {}

        def E(S: int) -> Expr:
            e = memo.get(S)
            if e is None:
                opts = []
                if S & req_mask == req_mask:
                    opts.append(EMPTY)
                for i in range(n):
                    if not S & (1 << i):
                        opts.append(_mkseq([c_pairs[i], E(S | (1 << i))]))
                e = _mkseq([a_loop, _alt(*opts)])
                if shared and 0 < S and bin(S).count("1") < n:
                    e = self._call_rule(f"{ptr} (members {S:#x})", e)
                memo[S] = e
            return e

        first = [_mkseq([pairs[i], E(1 << i)]) for i in range(n)]
        if A is not None:
            first.append(_mkseq([A, E(0)]))
        full = _mkseq([obj_open, _alt(*first), obj_close])
        if req_mask == 0:
            return _alt(empty_obj, full)
        return full

    # --------------------------------------------------------------------------------- arrays
    def _array(self, n: _Node) -> Expr:
        if not n.prefix and not n.items and not n.min_items and n.max_items is None and not n.unique \
                and not n.contains:
            return self._any_array()
        if n.contains:
            return self._array_contains(n)
        lo, hi = n.min_items, n.max_items
        if n.unique and not (hi is not None and hi <= 1):
            self.unsupported("uniqueItems", n.unique)
        for b in (lo, hi):
            if b is not None and b > self.max_rep:
                raise LimitError(f"minItems/maxItems {b} exceeds max_repetition={self.max_rep} at {n.ptr}")
        prefix = [self.emit_child(c) for c in n.prefix]
        for i, e in enumerate(prefix):
            if e == NOTHING:
                prefix = prefix[:i]
                hi = i if hi is None else min(hi, i)
                break
        it = self.emit_child(n.items)
        if it != NOTHING:
            it = self.shared(it, n.ptr + " (item)")
        if it == NOTHING:
            hi = len(prefix) if hi is None else min(hi, len(prefix))
        if hi is not None and lo > hi:
            return NOTHING
        comma = self.comma
        P = len(prefix) if hi is None else min(len(prefix), hi)
        # rest: items after the prefix, each preceded by a comma
        if P < len(prefix) or hi == P:
            rest = EMPTY
        else:
            rlo = max(0, lo - P)
            rhi = -1 if hi is None else hi - P
            rest = rep(_mkseq([comma, it]), rlo, rhi) if it != NOTHING else EMPTY
        if P == 0:
            if it == NOTHING or hi == 0:
                return self.empty_arr if lo == 0 else NOTHING
            first = _mkseq([it, rep(_mkseq([comma, it]), max(0, lo - 1), -1 if hi is None else hi - 1)])
        else:
            tail = rest
            for i in range(P - 1, 0, -1):
                t = _mkseq([comma, prefix[i], tail])
                tail = t if i < lo else (REP, t, 0, 1)
            first = _mkseq([prefix[0], tail])
        full = _mkseq([self.arr_open, first, self.arr_close])
        if lo == 0:
            return _alt(self.empty_arr, full)
        return full

    def _array_contains(self, n: _Node) -> Expr:
        """items* (contains ∧ items) items* ... : at least minContains elements match (exact); maxContains
        only where implied by maxItems."""
        cj, lo_c, hi_c, ptr = n.contains[0]
        # lenient=True ignores exactly what is reported: the other contains, maxContains alone, or (with
        # keywords it cannot be combined with) the contains
        for _cj, _lo, _hi, other in n.contains[1:]:
            self.unsupported("contains", other, "several contains constraints on one array")
        why = None
        if n.prefix:
            why = "contains together with prefixItems"
        elif n.unique:
            why = "contains together with uniqueItems"
        if not why and hi_c is not None and not (n.max_items is not None and hi_c >= n.max_items):
            self.unsupported("maxContains", ptr, "maxContains (needs the complement of the contains schema)")
            hi_c = None
        if not why and (n.min_items > lo_c or n.max_items is not None):
            why = "contains together with minItems/maxItems"
        if why:
            self.unsupported("contains", ptr, why)
            m = n.copy()
            m.contains = ()
            return self._array(m)
        if hi_c is not None and hi_c < lo_c:
            return NOTHING
        it = self.emit_child(n.items)
        wit = self.emit_child(_cat(n.items, cj))
        if it == NOTHING or wit == NOTHING:
            return NOTHING
        it = self.shared(it, n.ptr + " (item)")
        wit = self.shared(wit, n.ptr + " (contains)")
        comma = self.comma
        after = rep(_mkseq([comma, it]), 0, -1)
        body = [rep(_mkseq([it, comma]), 0, -1), wit]
        for _ in range(lo_c - 1):
            body += [after, comma, wit]
        body.append(after)
        return _mkseq([self.arr_open] + body + [self.arr_close])

    # -------------------------------------------------------------------------------- strings
    def _string(self, n: _Node) -> Expr:
        lo, hi = n.min_len, n.max_len
        if hi is not None and lo > hi:
            return NOTHING
        for b in (lo, hi):
            if b is not None and b > self.max_rep:
                raise LimitError(f"minLength/maxLength {b} exceeds max_repetition={self.max_rep} at {n.ptr} "
                                 "(a larger max_repetition= allows it: each counted character unrolls about 1 KB "
                                 "of automaton)")
        cons = [("pattern", p, ptr) for p, ptr in n.patterns] + \
               [("format", f, ptr) for f, ptr in n.formats if f in FORMAT_REGEXES]
        if not cons:
            if lo == 0 and hi is None:
                return STRING_ANY
            return (SEQ, (_Q, rep(_CPJ_U, lo, -1 if hi is None else hi), _Q))
        if len(cons) > 1:
            if self.lenient:
                for kw, _v, ptr in cons[1:]:
                    self.ignored.append((kw, ptr))
                cons = cons[:1]
            else:
                what = ", ".join(f"{kw} {v!r}" for kw, v, _p in cons)
                raise SchemaError(f"cannot intersect several patterns/formats exactly ({what})", cons[1][2],
                                  cons[1][0])
        kw, v, ptr = cons[0]
        try:
            body = self._pattern_body(kw, v, ptr, lo, hi)
        except SchemaError as e:
            if not self.lenient or e.keyword not in ("pattern", "format"):
                raise
            if (lo or hi is not None) and "minLength/maxLength" in str(e):
                self.ignored.append(("minLength/maxLength", n.ptr))
                try:
                    body = self._pattern_body(kw, v, ptr, 0, None)
                except SchemaError:
                    self.ignored.append((kw, ptr))
                    body = rep(_CPJ_U, lo, -1 if hi is None else hi)
            else:
                self.ignored.append((kw, ptr))
                body = rep(_CPJ_U, lo, -1 if hi is None else hi) if (lo or hi is not None) else STRING_BODY_ANY
        return (SEQ, (_Q, body, _Q)) if body != NOTHING else NOTHING

    def _pattern_body(self, kw, v, ptr, lo, hi) -> Expr:
        if kw == "format":
            return format_body(v, lo, hi, pointer=ptr, max_repetition=self.max_rep)
        return _rx.pattern_body(v, lo, hi, pointer=ptr, max_repetition=self.max_rep)

    # -------------------------------------------------------------------------------- numbers
    def _number(self, n: _Node) -> Expr:
        int_only = not (n.types & T_FRAC)
        # the optional ".0..." of an integral value; "integer" under draft 3/4 has none (a "number" that
        # multipleOf makes integral keeps it: 1.0 is a number and a multiple of 1)
        dz = _OPT_DOT_ZEROS if self.int_fraction or not int_only else EMPTY
        if not (n.types & T_INT):  # non-integers only (from "not": {"type": "integer"} and the like)
            if n.lo is not None or n.hi is not None or n.mult:
                raise SchemaError("non-integer numbers with bounds or multipleOf are not supported", n.ptr, "not")
            return NONINT_ANY
        if not n.c or (n.lo is None and n.hi is None and not n.mult):
            return (INTEGER_ANY if dz is _OPT_DOT_ZEROS else INTEGER_PLAIN) if int_only else NUMBER_ANY
        cap = None
        div = 1  # integer values must be multiples of div
        if n.mult:
            ms = [(Fraction(m), p) for m, p in n.mult]
            if int_only or any(fr.denominator == 1 for fr, _p in ms):
                int_only = True  # integer multiples only; an integer x is a multiple of p/q iff p | x
                for fr, _p in ms:
                    div = div * fr.numerator // math.gcd(div, fr.numerator)
            elif all(fr.numerator == 1 and _pow10(fr.denominator) is not None for fr, _p in ms):
                cap = min(_pow10(fr.denominator) for fr, _p in ms)
            else:
                self.unsupported("multipleOf", ms[0][1], "for non-integers only powers of ten (0.1, 0.01, ...)")
        if int_only:
            lo, hi = _int_bounds(n)
            if lo is not None and hi is not None and lo > hi:
                return NOTHING
            if div == 1:
                if lo is None and hi is None:
                    return INTEGER_ANY if dz is _OPT_DOT_ZEROS else INTEGER_PLAIN
                return seq(_int_range(lo, hi), dz)
            return self._multiples(div, lo, hi, n, dz)
        if n.lo is None and n.hi is None:
            fb = _FracBuilder()
            return seq((REP, _MINUS, 0, 1), _UINT, fb.part(None, None, cap))
        if cap is None and (n.lo is None or n.lo == 0) and (n.hi is None or n.hi == 0):
            return _signed_around_zero(n.lo is not None, n.lo_x, n.hi is not None, n.hi_x)
        return _number_range(n.lo, n.lo_x, n.hi, n.hi_x, cap)

    def _multiples(self, div: int, lo: Optional[int], hi: Optional[int], n: _Node, dz: Expr) -> Expr:
        if lo is not None and hi is not None:
            first = -(-lo // div) * div
            count = 0 if first > hi else (hi - first) // div + 1
            if count <= MAX_ENUMERATED_MULTIPLES:
                vals = range(first, hi + 1, div)
                if not vals:
                    return NOTHING
                parts = [(LIT, str(v).encode()) for v in vals]
                if 0 in vals:
                    parts.append((LIT, b"-0"))
                return seq(alt(*parts), dz)
        if lo is None and hi is None:
            a = b = 0
            x = div
            while x % 2 == 0:
                x //= 2
                a += 1
            while x % 5 == 0:
                x //= 5
                b += 1
            L = max(a, b)
            if x == 1 and 10 ** L // div <= MAX_ENUMERATED_MULTIPLES:
                small = [(LIT, str(v).encode()) for v in range(0, 10 ** L, div)]
                ends = [(LIT, str(v).zfill(L).encode()) for v in range(0, 10 ** L, div)]
                mag = alt(*small, seq(_D19, _DIGITS, alt(*ends)))
                return seq((REP, _MINUS, 0, 1), mag, dz)
        self.unsupported("multipleOf", n.ptr, f"multiples of {div} need both bounds and at most "
                                              f"{MAX_ENUMERATED_MULTIPLES} values, or a divisor of a power of ten")
        return seq(_int_range(lo, hi), dz)

    # ------------------------------------------------------------------------------ validator
    def accepts(self, n: _Node, v, depth: int = 0) -> bool:
        """Does the JSON value v satisfy the normalized node n? (used for enum/const and oneOf)"""
        if depth > 64:
            raise SchemaError("schema nests too deeply while checking enum/const values", n.ptr)
        t = _type_bit(v)
        if not (n.types & t):
            return False
        if not n.c:
            return True
        if n.enum is not None and _canon(v) not in n.enum_keys:
            return False
        if t & T_NUM:
            d = _dec(v)
            if n.lo is not None and (d < n.lo or (n.lo_x and d == n.lo)):
                return False
            if n.hi is not None and (d > n.hi or (n.hi_x and d == n.hi)):
                return False
            for m, _p in n.mult:
                if (d / Decimal(m)) % 1 != 0:
                    return False
        elif t == T_STR:
            ln = len(v)
            if ln < n.min_len or (n.max_len is not None and ln > n.max_len):
                return False
            for p, ptr in n.patterns:
                try:
                    if _rx.python_matcher(p).fullmatch(v) is None:
                        return False
                except _rx.RegexUnsupported as e:
                    if self.lenient:
                        continue
                    raise SchemaError(f"unsupported regular expression {p!r}: {e}", ptr, "pattern") from None
            for f, _ptr_ in n.formats:
                rx = FORMAT_REGEXES.get(f)
                if rx is not None and _rx.python_matcher(rx, True).fullmatch(v) is None:
                    return False
        elif t == T_ARR:
            if len(v) < n.min_items or (n.max_items is not None and len(v) > n.max_items):
                return False
            if n.unique:
                keys = [_canon(x) for x in v]
                if len(set(keys)) != len(keys):
                    return False
            for i, x in enumerate(v):
                cj = n.prefix[i] if i < len(n.prefix) else n.items
                if cj and not self.accepts(self.conj_node(cj), x, depth + 1):
                    return False
            for cj, lo_c, hi_c, _p in n.contains:
                cn = self.conj_node(cj)
                cnt = sum(1 for x in v if self.accepts(cn, x, depth + 1))
                if cnt < lo_c or (hi_c is not None and cnt > hi_c):
                    return False
        elif t == T_OBJ:
            for r in self._required(n):
                if r not in v:
                    return False
            if len(v) < n.min_props or (n.max_props is not None and len(v) > n.max_props):
                return False
            if n.prop_names:
                pn = self.conj_node(n.prop_names)
                if not all(self.accepts(pn, k, depth + 1) for k in v):
                    return False
            for k, x in v.items():
                if n.pattern_props:
                    hit = [cj for p, cj, _q in n.pattern_props if _rx.python_matcher(p).fullmatch(k)]
                    for cj in hit:
                        if not self.accepts(self.conj_node(cj), x, depth + 1):
                            return False
                    if hit and k not in n.props:
                        continue
                cj = self._prop_conj(n, k)
                if cj is None:
                    return False
                if cj and not self.accepts(self.conj_node(cj), x, depth + 1):
                    return False
        for grp, _p in n.anyofs:
            if not any(self.accepts(self.conj_node(c), v, depth + 1) for c in grp):
                return False
        for grp, _p in n.oneofs:
            if sum(1 for c in grp if self.accepts(self.conj_node(c), v, depth + 1)) != 1:
                return False
        return True

    # --------------------------------------------------------------------------------- driver
    def compile(self) -> Grammar:
        root = self.g.add_rule("root")
        cj = self.conj(self.root, "#")
        if self.kwargs:
            if not self.conj_node(cj).types & T_OBJ:
                raise SchemaError("kwargs=True needs a root schema whose instances are objects", cj[0][1], "type")
            self._kw = True
            try:
                body = self.emit_conj(cj)
            finally:
                self._kw = False
        else:
            body = self.emit_conj(cj)
        self.g.set_rule(root, body)
        if self.syntax == "python":
            _PyRewriter().grammar(self.g, self._base)
        return self.g


def _pow10(q: int) -> Optional[int]:
    k = 0
    while q % 10 == 0:
        q //= 10
        k += 1
    return k if q == 1 else None


def _ranges_disjoint(a: _Node, b: _Node) -> bool:
    """every number allowed by a is below every number allowed by b"""
    if a.hi is None or b.lo is None:
        return False
    return a.hi < b.lo or (a.hi == b.lo and (a.hi_x or b.lo_x))


# ========================================================================================= handlers


def _h_type(c: _Compiler, n: _Node, v, ptr, s, merges) -> None:
    bit = _TYPE_BITS.get(v) if v.__class__ is str else None
    if bit is not None:  # one standard type name
        n.types &= bit
        return
    names = v if isinstance(v, list) else [v]
    mask = 0
    for t in names:
        if not isinstance(t, str):
            raise SchemaError(f"type must be a string or a list of strings, not {t!r}", ptr, "type")
        bit = _TYPE_BITS.get(t)
        if bit is None:
            if c.compat == "bfcl" and t in _BFCL_TYPES:
                std = _BFCL_TYPES[t]
                bit = T_ALL if std is None else _TYPE_BITS[std]
            else:
                hint = ' (BFCL type name: pass compat="bfcl")' if t in _BFCL_TYPES else ""
                raise SchemaError(f"unknown type {t!r}{hint}", ptr, "type")
        mask |= bit
    n.types &= mask


def _h_enum(c: _Compiler, n: _Node, v, ptr, s, merges) -> None:
    if not isinstance(v, list):
        raise SchemaError("enum must be an array", ptr, "enum")
    _set_enum(n, v)


def _h_const(c: _Compiler, n: _Node, v, ptr, s, merges) -> None:
    _set_enum(n, [v])


def _set_enum(n: _Node, vals: list) -> None:
    keys = []
    uniq = []
    for x in vals:
        k = _canon(x)
        if k not in keys:
            keys.append(k)
            uniq.append(x)
    if n.enum is not None:
        uniq = [x for x, k in zip(uniq, keys) if k in n.enum_keys]
        keys = [_canon(x) for x in uniq]
    n.enum, n.enum_keys = tuple(uniq), frozenset(keys)
    n.c = True


def _nonneg_int(v, ptr, kw) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (isinstance(v, float) and not v.is_integer()):
        raise SchemaError(f"{kw} must be a non-negative integer, not {v!r}", ptr, kw)
    return int(v)


def _h_min_len(c, n, v, ptr, s, merges):
    n.min_len = max(n.min_len, _nonneg_int(v, ptr, "minLength"))
    n.c = True


def _h_max_len(c, n, v, ptr, s, merges):
    x = _nonneg_int(v, ptr, "maxLength")
    n.max_len = x if n.max_len is None else min(x, n.max_len)
    n.c = True


def _h_pattern(c, n, v, ptr, s, merges):
    if not isinstance(v, str):
        raise SchemaError("pattern must be a string", ptr, "pattern")
    n.patterns += ((v, ptr),)
    n.c = True


def _h_format(c: _Compiler, n, v, ptr, s, merges):
    if not isinstance(v, str):
        raise SchemaError("format must be a string", ptr, "format")
    if v in FORMAT_REGEXES:
        n.formats += ((v, ptr),)
        n.c = True
    elif v in _IGNORED_FORMATS:
        return
    else:
        why = "not supported" if v in UNSUPPORTED_FORMATS else "unknown"
        c.unsupported("format", ptr, f"format {v!r} is {why} (supported: {', '.join(sorted(FORMAT_REGEXES))})")


def _num(v, ptr, kw) -> Decimal:
    try:
        return _dec(v)
    except (ValueError, InvalidOperation):
        raise SchemaError(f"{kw} must be a number, not {v!r}", ptr, kw) from None


def _h_minimum(c, n, v, ptr, s, merges):
    x = _num(v, ptr, "minimum")
    strict = s.get("exclusiveMinimum") is True
    _lower(n, x, strict)


def _h_maximum(c, n, v, ptr, s, merges):
    x = _num(v, ptr, "maximum")
    strict = s.get("exclusiveMaximum") is True
    _upper(n, x, strict)


def _h_xmin(c, n, v, ptr, s, merges):
    if isinstance(v, bool):  # draft 4 form, read together with "minimum"
        return
    _lower(n, _num(v, ptr, "exclusiveMinimum"), True)


def _h_xmax(c, n, v, ptr, s, merges):
    if isinstance(v, bool):
        return
    _upper(n, _num(v, ptr, "exclusiveMaximum"), True)


def _lower(n: _Node, x: Decimal, strict: bool) -> None:
    if n.lo is None or x > n.lo or (x == n.lo and strict):
        n.lo, n.lo_x = x, strict
    n.c = True


def _upper(n: _Node, x: Decimal, strict: bool) -> None:
    if n.hi is None or x < n.hi or (x == n.hi and strict):
        n.hi, n.hi_x = x, strict
    n.c = True


def _h_multiple(c, n, v, ptr, s, merges):
    x = _num(v, ptr, "multipleOf")
    if x <= 0:
        raise SchemaError("multipleOf must be > 0", ptr, "multipleOf")
    n.mult += ((x, ptr),)
    n.c = True


def _h_items(c: _Compiler, n, v, ptr, s, merges):
    if isinstance(v, list):  # draft <= 2019-09 tuple form; "additionalItems" applies after it
        n.prefix = tuple(c.conj(x, _ptr(ptr, "items", i)) for i, x in enumerate(v))
        if "additionalItems" in s:
            n.items = c.conj(s["additionalItems"], _ptr(ptr, "additionalItems"))
    else:
        n.items = c.conj(v, _ptr(ptr, "items")) if v is not True else _TRUE_CONJ
    n.c = True


def _h_prefix(c: _Compiler, n, v, ptr, s, merges):
    if not isinstance(v, list):
        raise SchemaError("prefixItems must be an array", ptr, "prefixItems")
    n.prefix = tuple(c.conj(x, _ptr(ptr, "prefixItems", i)) for i, x in enumerate(v))
    n.c = True


def _h_additional_items(c, n, v, ptr, s, merges):
    pass  # read by "items" (array form); ignored otherwise, as the spec says


def _h_min_items(c, n, v, ptr, s, merges):
    n.min_items = max(n.min_items, _nonneg_int(v, ptr, "minItems"))
    n.c = True


def _h_max_items(c, n, v, ptr, s, merges):
    x = _nonneg_int(v, ptr, "maxItems")
    n.max_items = x if n.max_items is None else min(x, n.max_items)
    n.c = True


def _h_properties(c: _Compiler, n, v, ptr, s, merges):
    if not isinstance(v, dict):
        raise SchemaError("properties must be an object", ptr, "properties")
    pp = ptr + "/properties"
    props = {}
    for k, x in v.items():  # c.conj() and _ptr() inlined for plain names and schemas (every tool parameter)
        p = pp + "/" + k if k.__class__ is str and "~" not in k and "/" not in k else _ptr(pp, k)
        props[k] = ((x, p),) if x.__class__ is not dict or "$ref" not in x else c.conj(x, p)
    n.props = props
    n.obj_kw = n.c = True


def _h_required(c, n, v, ptr, s, merges):
    if isinstance(v, bool):  # draft 3 style "required": true on a property: not the object's keyword
        if c.compat == "bfcl" or not v:
            return
        raise SchemaError("required must be an array of property names (draft 3 boolean form is not supported)",
                          ptr, "required")
    if not isinstance(v, list) or not (set(map(type, v)) <= _STR_TYPE or all(isinstance(x, str) for x in v)):
        raise SchemaError("required must be an array of strings", ptr, "required")
    n.required = tuple(dict.fromkeys(v))
    n.obj_kw = n.c = True


def _h_additional(c: _Compiler, n, v, ptr, s, merges):
    n.additional = c.conj(v, _ptr(ptr, "additionalProperties")) if v is not True else _TRUE_CONJ
    n.obj_kw = n.c = True


def _h_min_props(c, n, v, ptr, s, merges):
    n.min_props = max(n.min_props, _nonneg_int(v, ptr, "minProperties"))
    n.obj_kw = n.c = True


def _h_max_props(c, n, v, ptr, s, merges):
    x = _nonneg_int(v, ptr, "maxProperties")
    n.max_props = x if n.max_props is None else min(x, n.max_props)
    n.obj_kw = n.c = True


def _h_anyof(c: _Compiler, n, v, ptr, s, merges):
    if not isinstance(v, list) or not v:
        raise SchemaError("anyOf must be a non-empty array", ptr, "anyOf")
    n.anyofs += ((tuple(c.conj(x, _ptr(ptr, "anyOf", i)) for i, x in enumerate(v)), _ptr(ptr, "anyOf")),)
    n.c = True


def _h_oneof(c: _Compiler, n, v, ptr, s, merges):
    if not isinstance(v, list) or not v:
        raise SchemaError("oneOf must be a non-empty array", ptr, "oneOf")
    n.oneofs += ((tuple(c.conj(x, _ptr(ptr, "oneOf", i)) for i, x in enumerate(v)), _ptr(ptr, "oneOf")),)
    n.c = True


def _h_allof(c: _Compiler, n, v, ptr, s, merges):
    if not isinstance(v, list) or not v:
        raise SchemaError("allOf must be a non-empty array", ptr, "allOf")
    for i, x in enumerate(v):
        for sub, p in c.conj(x, _ptr(ptr, "allOf", i)):
            merges.append(c.node(sub, p))


def _h_ref(c: _Compiler, n, v, ptr, s, merges):
    if not isinstance(v, str):
        raise SchemaError("$ref must be a string", ptr, "$ref")
    target, tptr = c.doc().resolve(v, s, ptr)
    for sub, p in c.conj(target, tptr):
        merges.append(c.node(sub, p))


def _h_nullable(c, n, v, ptr, s, merges):
    pass  # applied after "type" (see _normalize)


_HANDLERS = {
    "type": _h_type, "enum": _h_enum, "const": _h_const,
    "minLength": _h_min_len, "maxLength": _h_max_len, "pattern": _h_pattern, "format": _h_format,
    "minimum": _h_minimum, "maximum": _h_maximum, "exclusiveMinimum": _h_xmin, "exclusiveMaximum": _h_xmax,
    "multipleOf": _h_multiple,
    "items": _h_items, "prefixItems": _h_prefix, "additionalItems": _h_additional_items,
    "minItems": _h_min_items, "maxItems": _h_max_items,
    "properties": _h_properties, "required": _h_required, "additionalProperties": _h_additional,
    "minProperties": _h_min_props, "maxProperties": _h_max_props,
    "anyOf": _h_anyof, "oneOf": _h_oneof, "allOf": _h_allof, "$ref": _h_ref, "nullable": _h_nullable,
}
_CONSTRAINING = frozenset(_HANDLERS) - {"additionalItems", "nullable"} | _UNSUPPORTED
_CONSTRAINING_NOREF = _CONSTRAINING - {"$ref"}


def _is_pure_ref(s: dict) -> bool:
    for k in s:
        if k in _CONSTRAINING_NOREF:
            return False
    return True


# ================================================================================ Python literal syntax
# syntax="python": the compiler emits the JSON grammar, then _PyRewriter maps it to Python literal syntax:
# true/false/null -> True/False/None, every JSON string ("..." around cp(json=True) code points) -> a
# single- or double-quoted Python string whose code points are raw or Python-escaped. Numbers, lists and
# dicts are spelled alike (the separators are set up by the compiler). kwargs=True renders the root object
# as keyword arguments (see _Compiler._kw_*).

_PY_SQ = (LIT, b"'")
_PY_DQ = (LIT, b'"')
_PY_BS = (LIT, b"\\")
_PY_WORDS = {b"true": (LIT, b"True"), b"false": (LIT, b"False"), b"null": (LIT, b"None")}
# the escapes \n \t \r \b \f \\ \' \" (letter -> code point)
_PY_SIMPLE_ESC = ((ord("n"), 0x0A), (ord("t"), 0x09), (ord("r"), 0x0D), (ord("b"), 0x08), (ord("f"), 0x0C),
                  (ord("\\"), 0x5C), (ord("'"), 0x27), (ord('"'), 0x22))
_PY_HEX_ANY = (BYTE, ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)))
_PY_CP_CACHE: Dict[tuple, Expr] = {}
_PY_HEX_CACHE: Dict[tuple, Expr] = {}
_PY_KEYWORDS = frozenset(_keyword.kwlist)


def _hex_digit_bytes(digits: List[int]) -> Expr:
    rs = []
    for d in digits:
        if d < 10:
            rs.append((0x30 + d, 0x30 + d))
        else:
            rs.append((0x61 + d - 10, 0x61 + d - 10))
            rs.append((0x41 + d - 10, 0x41 + d - 10))
    return (BYTE, _norm_byte_ranges(rs))


def _norm_byte_ranges(rs) -> tuple:
    out: List[Tuple[int, int]] = []
    for lo, hi in sorted(rs):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return tuple(out)


def _hex_set(ranges: tuple, n: int) -> Expr:
    """exactly n hex digits (any case) whose value lies in `ranges` (sorted, within [0, 16**n))"""
    if n == 0:
        return EMPTY
    key = (ranges, n)
    e = _PY_HEX_CACHE.get(key)
    if e is not None:
        return e
    if ranges == ((0, 16 ** n - 1),):
        e = rep(_PY_HEX_ANY, n, n)
    else:
        full = 16 ** (n - 1)
        by_digit: Dict[int, List[Tuple[int, int]]] = {}
        for lo, hi in ranges:
            for d in range(lo // full, hi // full + 1):
                base = d * full
                by_digit.setdefault(d, []).append((max(lo, base) - base, min(hi, base + full - 1) - base))
        groups: Dict[tuple, List[int]] = {}
        for d, sub in by_digit.items():
            groups.setdefault(tuple(sub), []).append(d)
        e = _alt(*[_mkseq([_hex_digit_bytes(ds), _hex_set(sub, n - 1)]) for sub, ds in groups.items()])
    if len(_PY_HEX_CACHE) > 50_000:
        _PY_HEX_CACHE.clear()
    _PY_HEX_CACHE[key] = e
    return e


def python_code_point(ranges: tuple, quote: str) -> Expr:
    """One code point of `ranges` inside a Python string literal delimited by `quote`: raw (not the quote,
    not a backslash, no control character U+0000-U+001F) or escaped: \\n \\t \\r \\b \\f \\\\ \\' \\",
    \\xHH, \\uHHHH, \\UHHHHHHHH (any hex case). Surrogates are never accepted."""
    key = (ranges, quote)
    e = _PY_CP_CACHE.get(key)
    if e is not None:
        return e
    rs = _rx.intersect(ranges, _rx.UNIVERSE)
    raw = _rx.intersect(rs, _rx.complement(((0, 0x1F), (ord(quote), ord(quote)), (0x5C, 0x5C))))
    esc = []
    simple = [ltr for ltr, c in _PY_SIMPLE_ESC if _rx.intersect(rs, ((c, c),))]
    if simple:
        esc.append((BYTE, _norm_byte_ranges([(b, b) for b in simple])))
    r8 = _rx.intersect(rs, ((0, 0xFF),))
    if r8:
        esc.append(_mkseq([(LIT, b"x"), _hex_set(r8, 2)]))
    r16 = _rx.intersect(rs, ((0, 0xFFFF),))
    if r16:
        esc.append(_mkseq([(LIT, b"u"), _hex_set(r16, 4)]))
    if rs:
        esc.append(_mkseq([(LIT, b"U"), _hex_set(rs, 8)]))
    parts = []
    if raw:
        parts.append((CP, raw, False))
    if esc:
        parts.append(_mkseq([_PY_BS, _alt(*esc)]))
    e = _alt(*parts) if parts else NOTHING
    if len(_PY_CP_CACHE) > 100_000:
        _PY_CP_CACHE.clear()
    _PY_CP_CACHE[key] = e
    return e


def python_string_literal(s: str) -> Expr:
    """A Python string literal (either quote) whose value is exactly ``s`` (any escaping accepted)."""
    return _PyRewriter().value(json_string_literal(s))


def _py_identifier_ok(name: str) -> bool:
    return name.isidentifier() and name not in _PY_KEYWORDS and _unicodedata.normalize("NFKC", name) == name


_ID_START = ((0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_ID_CONT = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_ID_REST = (REP, (BYTE, _ID_CONT), 0, -1)
_ID_ANY = (SEQ, ((BYTE, _ID_START), _ID_REST))
_ID_EXCL_CACHE: Dict[tuple, Expr] = {}
_ID_EXCL_SUB: Dict[tuple, Expr] = {}


def _id_excl(sfx: tuple, first: bool) -> Expr:
    """identifier characters (a start character first when `first`) that spell none of the suffixes `sfx`
    (a sorted tuple of strings, "" = a name ends here)"""
    key = (sfx, first)
    e = _ID_EXCL_SUB.get(key)
    if e is not None:
        return e
    groups: Dict[int, List[str]] = {}
    for x in sfx:
        if x:
            groups.setdefault(ord(x[0]), []).append(x[1:])
    parts = [] if first or (sfx and sfx[0] == "") else [EMPTY]
    others = _rx.intersect(_ID_START if first else _ID_CONT,
                           _rx.complement(tuple((k, k) for k in sorted(groups)), ((0, 0x7F),)))
    size = 2
    if others:
        parts.append((SEQ, ((BYTE, others), _ID_REST)))
        size += 4
    for k in sorted(groups):
        sub = _id_excl(tuple(groups[k]), False)
        parts.append(_mkseq([(LIT, bytes([k])), sub]))
        size += 2 + _size_of(sub)
    e = _known_size(_alt(*parts), size) if parts else NOTHING
    if len(_ID_EXCL_SUB) > 100_000:
        _ID_EXCL_SUB.clear()
    _ID_EXCL_SUB[key] = e
    return e


def identifier_excluding(names) -> Expr:
    """An ASCII Python identifier ``[A-Za-z_][A-Za-z0-9_]*`` that is none of `names` and no keyword: one
    excluding_identifier node (the engine builds a trie of bytes; expand_excluding gives the regular
    expression, about five times larger)."""
    key = tuple(sorted(set(names)))
    e = _ID_EXCL_CACHE.get(key)
    if e is None:
        words = {nm for nm in key if nm.isascii() and nm.isidentifier()} | _PY_KEYWORDS
        e = _known_size(excluding_identifier(words), 8 + 2 * sum(len(w) for w in words))
        if len(_ID_EXCL_CACHE) > 4096:
            _ID_EXCL_CACHE.clear()
        _ID_EXCL_CACHE[key] = e
    return e


_PY_STR_MEMO: Dict[int, tuple] = {}


class _PyRewriter:
    """Rewrites a JSON-syntax expression into Python literal syntax (see the section comment). The rewrite
    of an expression depends on nothing else; strings (mostly module-cached: literals, key exclusions,
    STRING_ANY) are memoized across compilations, everything else per rewriter."""

    def __init__(self) -> None:
        if len(_PY_STR_MEMO) > 50_000:
            _PY_STR_MEMO.clear()
        self.memo: Dict[Any, tuple] = {}  # key -> (source expr kept alive, so its id stays valid; result)

    def value(self, e: Expr) -> Expr:
        hit = self.memo.get(id(e))
        if hit is not None:
            return hit[1]
        sc = _SIZE_CACHE.get(id(e))
        if sc is not None and sc[1] is e:  # module-cached: its rewrite is too
            hit = _PY_STR_MEMO.get(id(e))
            if hit is not None and hit[0] is e:
                self.memo[id(e)] = hit
                return hit[1]
        k = e[0]
        out = e
        if k == LIT:
            w = _PY_WORDS.get(e[1])
            if w is not None:
                out = w
            elif b'"' in e[1] or b"\\" in e[1] or b"'" in e[1]:
                raise AssertionError(f"fcgrammar internal error: quote outside a string in {e!r}")
        elif k == CP:
            if e[2]:
                raise AssertionError("fcgrammar internal error: JSON code point outside a string")
        elif k == SEQ:
            items = e[1]
            if len(items) >= 2 and items[0] == _Q and items[-1] == _Q:
                hit = _PY_STR_MEMO.get(id(e))
                if hit is not None and hit[0] is e:
                    out = hit[1]
                else:
                    body = items[1:-1]
                    out = (ALT, ((SEQ, (_PY_SQ,) + tuple(self.body(x, "'") for x in body) + (_PY_SQ,)),
                                 (SEQ, (_PY_DQ,) + tuple(self.body(x, '"') for x in body) + (_PY_DQ,))))
                    _PY_STR_MEMO[id(e)] = (e, out)
            else:
                new = tuple(self.value(x) for x in items)
                if any(a is not b for a, b in zip(new, items)):
                    out = (SEQ, new)
        elif k == ALT:
            new = tuple(self.value(x) for x in e[1])
            if any(a is not b for a, b in zip(new, e[1])):
                out = (ALT, new)
        elif k == REP:
            x = self.value(e[1])
            if x is not e[1]:
                out = (REP, x, e[2], e[3])
        self.memo[id(e)] = (e, out)
        if sc is not None and sc[1] is e:
            _PY_STR_MEMO[id(e)] = (e, out)
        return out

    def body(self, e: Expr, q: str) -> Expr:
        key = (id(e), q)
        hit = self.memo.get(key)
        if hit is not None:
            return hit[1]
        k = e[0]
        if k == CP:
            if not e[2]:
                raise AssertionError("fcgrammar internal error: raw code point inside a JSON string")
            out = python_code_point(e[1], q)
        elif k == LIT:
            out = _mkseq([python_code_point(((ord(c), ord(c)),), q) for c in e[1].decode("utf-8")])
        elif k == SEQ:
            out = (SEQ, tuple(self.body(x, q) for x in e[1]))
        elif k == ALT:
            out = (ALT, tuple(self.body(x, q) for x in e[1]))
        elif k == REP:
            out = (REP, self.body(e[1], q), e[2], e[3])
        elif k == EXCL:
            out = self.body(expand_excluding(e), q)
        else:
            raise AssertionError(f"fcgrammar internal error: unexpected node inside a JSON string: {e!r}")
        self.memo[key] = (e, out)
        return out

    def grammar(self, g: Grammar, start: int = 0) -> None:
        """Rewrite the rules from index ``start`` on (the ones the compilation added)."""
        for i in range(start, len(g.rules)):
            if g.rules[i] is not None:
                g.rules[i] = self.value(g.rules[i])
        g.open_strings.difference_update(range(start, len(g.rules)))  # Python literals are no JSON strings


# ========================================================================================= entry


def schema_to_grammar(schema, *, any_order: bool = False, whitespace: str = "compact", max_whitespace: int = 4,
                      separators: Optional[Tuple[str, str]] = None, compat: Optional[str] = None,
                      lenient: bool = False, coerce_one_of: bool = False, strict: bool = False,
                      additional_properties_default: bool = True, max_repetition: int = 10_000,
                      syntax: str = "json", kwargs: bool = False,
                      kwargs_separators: Optional[Tuple[str, str]] = None, into: Optional[Grammar] = None,
                      shared: Optional[Dict[Any, Any]] = None) -> Grammar:
    """Compile a JSON Schema into a Grammar whose rule 0 matches exactly the valid instances' JSON texts.

    schema: a dict, a bool, or JSON text. Options:

    * any_order: object members in any order (exact, tracks which properties were seen; at most
      ``ANY_ORDER_MAX_PROPERTIES`` declared properties per object). Default: the order of ``properties``,
      additional properties after the declared ones.
    * whitespace: ``"compact"`` (no whitespace, like ``json.dumps(separators=(",", ":"))``) or
      ``"flexible"`` (runs of at most ``max_whitespace`` of ``[ \\t\\n\\r]`` between tokens).
    * separators: ``(item_sep, key_sep)`` for compact mode, e.g. ``(", ", ": ")`` = json.dumps' default style.
    * compat: ``"bfcl"`` accepts BFCL's type names (dict, float, tuple, any, list, str, int, bool, and the
      Java/JavaScript ones).
    * lenient: ignore keywords that cannot be enforced (one SchemaWarning lists them) instead of raising.
    * coerce_one_of: treat oneOf as anyOf when its branches are not provably disjoint.
    * strict: OpenAI strict mode (every declared property required, additionalProperties false by default).
    * additional_properties_default: value of a missing ``additionalProperties`` (JSON Schema: True).
    * max_repetition: larger minLength/maxLength/minItems/maxItems/regex bounds raise LimitError.
    * syntax: ``"json"`` (JSON texts) or ``"python"``: the Python literal spelling of the same values
      (``ast.literal_eval`` gives a valid instance): ``True``/``False``/``None``, strings in ``'...'`` or
      ``"..."`` with Python escapes, JSON numbers, ``[...]`` lists and ``{'k': v}`` dicts. Default separators
      in compact mode: repr's ``(", ", ": ")``.
    * kwargs: with ``syntax="python"``, write the root object as keyword arguments ``a=1, b='x'`` (no braces,
      names are bare identifiers; a declared name that is not an identifier is a SchemaError).
    * kwargs_separators: compact mode, ``(argument_sep, "=" sep)``; default ``(item_sep, "=")``, i.e.
      ``(", ", "=")`` unless ``separators`` says otherwise.
    * into: add the rules to this grammar instead of a new one (the schema's rule is the first one added,
      ``len(into.rules)`` before the call); returns it. ``shared``: a dict kept across such calls into one
      grammar, so that their schemas share what they can (the "any JSON value" rule).
    """
    if isinstance(schema, (str, bytes)):
        try:
            schema = _json.loads(schema)
        except ValueError as e:
            raise SchemaError(f"schema is not valid JSON: {e}", "#") from None
    if compat not in (None, "bfcl"):
        raise ValueError(f"compat must be None or 'bfcl', not {compat!r}")
    c = _Compiler(schema, any_order=any_order, whitespace=whitespace, max_whitespace=max_whitespace,
                  separators=separators, compat=compat, lenient=lenient, coerce_one_of=coerce_one_of,
                  strict=strict, additional_properties_default=additional_properties_default,
                  max_repetition=max_repetition, syntax=syntax, kwargs=kwargs, kwargs_separators=kwargs_separators,
                  grammar=into, shared=shared)
    try:
        with _gc.paused():
            g = c.compile()
    except RecursionError:
        raise LimitError("schema nests too deeply to compile") from None
    if c.ignored:
        listed = ", ".join(f"{kw!r} at {p}" for kw, p in c.ignored)
        warnings.warn(f"fcgrammar: ignored {len(c.ignored)} JSON Schema keyword(s) that cannot be enforced "
                      f"(lenient=True): {listed}", SchemaWarning, stacklevel=2)
    return g
