"""ECMA-262 regular expressions (JSON Schema ``pattern`` and the ``format`` regexes) lowered to grammar IR.

The pattern constrains the *decoded* value of a JSON string, so every character of the pattern becomes a
``cp(ranges, json=True)`` node: the engine accepts each code point raw or through any of its JSON escapes.

Pipeline::

    ECMA source --_preprocess--> Python syntax --re._parser--> sre tree --_convert--> AST
    AST --_variants (anchors)--> [(anchored_start, anchored_end, AST)] --search/trim/length--> body AST
    body AST --to_ir--> grammar Expr              (and --to_python--> a Python regex, used only to check
                                                   enum/const values against a pattern)

AST nodes are small tuples: ``('c', ranges)`` one code point, ``('s', items)`` sequence, ``('a', items)``
alternation, ``('r', node, lo, hi)`` repetition (``hi=-1`` unbounded), ``('^',)`` and ``('$',)`` anchors.

ECMA semantics kept (and checked against JSON-Schema-Test-Suite ``optional/ecmascript-regex.json``):
``\\d`` ``\\w`` are ASCII, ``\\s`` is the ECMA white-space set, ``.`` excludes the four line terminators,
``$`` matches only at the very end, ``\\cX`` control escapes, ``\\p{..}``/``\\P{..}`` general categories,
``[^]`` and ``[]``, ``(?<name>..)`` groups. Patterns work on code points (the ``u`` flag view), which is
what the suite expects for non-BMP characters.

Not supported (``SchemaError`` with keyword ``pattern``): lookahead/lookbehind, backreferences, word
boundaries (``\\b`` ``\\B``), inline flags, possessive/atomic groups, anchors anywhere but at the start or
end of a top-level alternative, and ``\\p{..}`` values other than general categories.
"""
from __future__ import annotations

import functools
import re
import warnings
from typing import Dict, List, Optional, Tuple

from .errors import LimitError, SchemaError
from .grammar import CP, EMPTY, NOTHING, Expr, alt, rep, seq

try:  # Python >= 3.11
    from re import _constants as _sc  # type: ignore[attr-defined]
    from re import _parser as _sp  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sc  # type: ignore[no-redef]
    import sre_parse as _sp  # type: ignore[no-redef]

Ranges = Tuple[Tuple[int, int], ...]

MAX_CP = 0x10FFFF
# Code points a JSON string can carry as *characters*: everything but lone surrogates. Used wherever code
# points are counted (a surrogate pair escape must count as one character, never as two lone halves).
UNIVERSE: Ranges = ((0, 0xD7FF), (0xE000, MAX_CP))

A_EMPTY = ("s", ())
A_NOTHING = ("a", ())


class RegexUnsupported(Exception):
    """Raised internally; turned into SchemaError(keyword='pattern') by the caller."""


# --------------------------------------------------------------------------------------------- ranges


def norm(ranges) -> Ranges:
    rs = sorted(ranges)
    out: List[Tuple[int, int]] = []
    for lo, hi in rs:
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def complement(ranges: Ranges, universe: Ranges = UNIVERSE) -> Ranges:
    out = []
    for ulo, uhi in universe:
        cur = ulo
        for lo, hi in ranges:
            if hi < cur or lo > uhi:
                continue
            if lo > cur:
                out.append((cur, lo - 1))
            cur = max(cur, hi + 1)
        if cur <= uhi:
            out.append((cur, uhi))
    return tuple(out)


def intersect(a: Ranges, b: Ranges) -> Ranges:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


DIGIT: Ranges = ((0x30, 0x39),)
WORD: Ranges = norm([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
SPACE: Ranges = norm([(9, 13), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                      (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
                      (0xFEFF, 0xFEFF)])
DOT: Ranges = complement(((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)))

_CATEGORIES = {
    _sc.CATEGORY_DIGIT: DIGIT,
    _sc.CATEGORY_NOT_DIGIT: complement(DIGIT),
    _sc.CATEGORY_WORD: WORD,
    _sc.CATEGORY_NOT_WORD: complement(WORD),
    _sc.CATEGORY_SPACE: SPACE,
    _sc.CATEGORY_NOT_SPACE: complement(SPACE),
}

# Unicode general categories for \p{..}: name or alias -> list of two-letter categories.
_GC_GROUPS = {
    "L": "Lu Ll Lt Lm Lo", "LC": "Lu Ll Lt", "M": "Mn Mc Me", "N": "Nd Nl No",
    "P": "Pc Pd Ps Pe Pi Pf Po", "S": "Sm Sc Sk So", "Z": "Zs Zl Zp", "C": "Cc Cf Cs Co Cn",
}
_GC_ALIASES = {
    "Letter": "L", "Cased_Letter": "LC", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt", "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M", "Combining_Mark": "M",
    "Nonspacing_Mark": "Mn", "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N",
    "Decimal_Number": "Nd", "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No", "Punctuation": "P",
    "punct": "P", "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd", "Open_Punctuation": "Ps",
    "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi", "Final_Punctuation": "Pf",
    "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm", "Currency_Symbol": "Sc",
    "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z", "Space_Separator": "Zs",
    "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Other": "C", "Control": "Cc", "cntrl": "Cc",
    "Format": "Cf", "Surrogate": "Cs", "Private_Use": "Co", "Unassigned": "Cn",
}
_GC_TABLE: Optional[Dict[str, List[Tuple[int, int]]]] = None


def _gc_table() -> Dict[str, List[Tuple[int, int]]]:
    global _GC_TABLE
    if _GC_TABLE is None:
        import unicodedata

        table: Dict[str, List[Tuple[int, int]]] = {}
        cat = unicodedata.category
        prev = None
        start = 0
        for c in range(MAX_CP + 2):
            k = cat(chr(c)) if c <= MAX_CP else None
            if k != prev:
                if prev is not None:
                    table.setdefault(prev, []).append((start, c - 1))
                prev, start = k, c
        _GC_TABLE = table
    return _GC_TABLE


def unicode_property(name: str) -> Ranges:
    """Code points of ``\\p{name}`` (general categories and their aliases, also ``gc=``/``General_Category=``)."""
    if "=" in name:
        key, _, name = name.partition("=")
        if key not in ("gc", "General_Category"):
            raise RegexUnsupported(f"\\p{{{key}=...}} (only general categories are supported)")
    short = _GC_ALIASES.get(name, name)
    cats = _GC_GROUPS.get(short, short).split()
    table = _gc_table()
    if not all(len(c) == 2 and c in table or c == "Cn" for c in cats):
        raise RegexUnsupported(f"unicode property \\p{{{name}}} (only general categories are supported)")
    rs: List[Tuple[int, int]] = []
    for c in cats:
        rs.extend(table.get(c, ()))
    return norm(rs)


# ---------------------------------------------------------------------------------------- parsing

_MARK_BASE = 0x10FF00  # plane-16 private-use code points stand for \p{..} classes while Python parses


def _preprocess(src: str) -> Tuple[str, Dict[int, Ranges]]:
    """Rewrite ECMA-only syntax into something Python's parser reads with the same meaning."""
    out: List[str] = []
    marks: Dict[int, Ranges] = {}

    def mark(ranges: Ranges) -> str:
        cpv = _MARK_BASE + len(marks)
        if cpv > MAX_CP:
            raise RegexUnsupported("too many \\p{..} classes")
        marks[cpv] = ranges
        return chr(cpv)

    i, n = 0, len(src)
    in_class = False
    while i < n:
        ch = src[i]
        if ch == "\\":
            if i + 1 >= n:
                raise RegexUnsupported("trailing backslash")
            nx = src[i + 1]
            if nx == "c" and i + 2 < n and src[i + 2].isascii() and src[i + 2].isalpha():
                out.append("\\x%02x" % (ord(src[i + 2]) % 32))
                i += 3
                continue
            if nx in "pP" and i + 2 < n and src[i + 2] == "{":
                j = src.find("}", i + 3)
                if j < 0:
                    raise RegexUnsupported("unterminated \\p{")
                rs = unicode_property(src[i + 3:j])
                if nx == "P":
                    rs = complement(rs)
                out.append(mark(rs))
                i = j + 1
                continue
            if nx == "u" and i + 2 < n and src[i + 2] == "{":
                j = src.find("}", i + 3)
                if j < 0:
                    raise RegexUnsupported("unterminated \\u{")
                try:
                    v = int(src[i + 3:j], 16)
                except ValueError:
                    raise RegexUnsupported("bad \\u{...} escape") from None
                out.append("\\U%08x" % v)
                i = j + 1
                continue
            if nx in "AZzG" and not in_class:
                raise RegexUnsupported(f"\\{nx} (not an ECMA-262 escape)")
            out.append(src[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            if src.startswith("[^]", i):
                out.append(mark(UNIVERSE))
                i += 3
                continue
            if src.startswith("[]", i):
                out.append(mark(()))
                i += 2
                continue
            in_class = True
            out.append(ch)
            i += 1
            if i < n and src[i] == "^":
                out.append("^")
                i += 1
            if i < n and src[i] == "]":  # ECMA: ']' right after '[' closes the class; handled above
                pass
            continue
        if ch == "(" and src.startswith("(?<", i) and i + 3 < n and src[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out), marks


def _class_ranges(items, marks) -> Ranges:
    negate = False
    rs: List[Tuple[int, int]] = []
    for op, av in items:
        if op is _sc.NEGATE:
            negate = True
        elif op is _sc.LITERAL:
            if av in marks:
                rs.extend(marks[av])
            else:
                rs.append((av, av))
        elif op is _sc.RANGE:
            lo, hi = av
            if lo in marks or hi in marks:
                raise RegexUnsupported("a \\p{..} class cannot bound a range")
            rs.append((lo, hi))
        elif op is _sc.CATEGORY:
            if av not in _CATEGORIES:
                raise RegexUnsupported(f"class item {av}")
            rs.extend(_CATEGORIES[av])
        else:
            raise RegexUnsupported(f"class item {op}")
    r = norm(rs)
    if negate:
        r = complement(r)
    else:
        r = intersect(r, UNIVERSE)
    return r


def _convert(items, marks, max_repetition: int):
    out = []
    for op, av in items:
        if op is _sc.LITERAL:
            out.append(("c", marks[av]) if av in marks else ("c", intersect(((av, av),), UNIVERSE)))
        elif op is _sc.NOT_LITERAL:
            out.append(("c", complement(((av, av),))))
        elif op is _sc.ANY:
            out.append(("c", DOT))
        elif op is _sc.IN:
            out.append(("c", _class_ranges(av, marks)))
        elif op is _sc.BRANCH:
            out.append(("a", tuple(_convert(b, marks, max_repetition) for b in av[1])))
        elif op is _sc.SUBPATTERN:
            _gid, add_flags, del_flags, p = av
            if add_flags or del_flags:
                raise RegexUnsupported("inline flags")
            out.append(_convert(p, marks, max_repetition))
        elif op is _sc.MAX_REPEAT or op is _sc.MIN_REPEAT:
            lo, hi, p = av
            hi = -1 if hi is _sc.MAXREPEAT or hi == _sc.MAXREPEAT else int(hi)
            for b in (lo, hi):
                if b > max_repetition:
                    raise LimitError(f"regex repetition bound {b} exceeds max_repetition={max_repetition}")
            out.append(("r", _convert(p, marks, max_repetition), int(lo), hi))
        elif op is _sc.AT:
            if av is _sc.AT_BEGINNING:
                out.append(("^",))
            elif av is _sc.AT_END:
                out.append(("$",))
            elif av in (_sc.AT_BOUNDARY, _sc.AT_NON_BOUNDARY):
                raise RegexUnsupported("word boundaries (\\b, \\B)")
            else:
                raise RegexUnsupported(f"anchor {av}")
        elif op in (_sc.ASSERT, _sc.ASSERT_NOT):
            raise RegexUnsupported("lookahead/lookbehind assertions")
        elif op in (_sc.GROUPREF, _sc.GROUPREF_EXISTS):
            raise RegexUnsupported("backreferences")
        else:
            raise RegexUnsupported(f"{str(op).lower()} (not in ECMA-262 or not supported)")
    return mk_seq(out)


@functools.lru_cache(maxsize=4096)
def parse(pattern: str, max_repetition: int = 10_000):
    """ECMA-262 source -> AST (anchors still inside). Raises RegexUnsupported / LimitError."""
    src, marks = _preprocess(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning "possible nested set" etc.
            tree = _sp.parse(src)
    except re.error as e:
        raise RegexUnsupported(f"invalid regular expression ({e})") from None
    except (OverflowError, RecursionError) as e:  # pragma: no cover
        raise RegexUnsupported(f"invalid regular expression ({e})") from None
    flags = tree.state.flags & ~(_sc.SRE_FLAG_UNICODE)
    if flags:
        raise RegexUnsupported("inline flags")
    return _convert(list(tree), marks, max_repetition)


# ------------------------------------------------------------------------------------ AST helpers


def mk_seq(items) -> tuple:
    flat = []
    for it in items:
        if it[0] == "s":
            flat.extend(it[1])
        elif it == A_NOTHING:
            return A_NOTHING
        else:
            flat.append(it)
    if len(flat) == 1:
        return flat[0]
    return ("s", tuple(flat))


def mk_alt(items) -> tuple:
    flat = []
    for it in items:
        for p in (it[1] if it[0] == "a" else (it,)):
            if p not in flat:
                flat.append(p)
    if len(flat) == 1:
        return flat[0]
    return ("a", tuple(flat))


def mk_rep(x, lo: int, hi: int) -> tuple:
    if hi == 0 or x == A_EMPTY:
        return A_EMPTY
    if x == A_NOTHING:
        return A_EMPTY if lo == 0 else A_NOTHING
    if lo == 1 and hi == 1:
        return x
    return ("r", x, lo, hi)


def any_star(universe: Ranges = UNIVERSE) -> tuple:
    return ("r", ("c", universe), 0, -1)


def has_anchor(node) -> bool:
    k = node[0]
    if k in ("^", "$"):
        return True
    if k in ("s", "a"):
        return any(has_anchor(x) for x in node[1])
    if k == "r":
        return has_anchor(node[1])
    return False


def variants(node) -> List[Tuple[bool, bool, tuple]]:
    """Split anchors off: [(anchored_at_start, anchored_at_end, anchor-free node)]."""
    if node[0] == "a":
        out = []
        for b in node[1]:
            out.extend(variants(b))
        return out
    items = list(node[1]) if node[0] == "s" else [node]
    s = e = False
    while items and items[0] == ("^",):
        s = True
        items.pop(0)
    while items and items[-1] == ("$",):
        e = True
        items.pop()
    rest = mk_seq(items)
    if not has_anchor(rest):
        return [(s, e, rest)]
    if len(items) == 1 and items[0][0] == "a":
        return [(s or s2, e or e2, n2) for s2, e2, n2 in variants(items[0])]
    raise RegexUnsupported("anchors (^ $) are only supported at the start or end of the pattern")


def length_range(node) -> Tuple[int, Optional[int]]:
    """(min, max) length in code points; max None = unbounded."""
    k = node[0]
    if k == "c":
        return 1, 1
    if k == "s":
        lo, hi = 0, 0
        for x in node[1]:
            a, b = length_range(x)
            lo += a
            hi = None if hi is None or b is None else hi + b
        return lo, hi
    if k == "a":
        if not node[1]:
            return 0, 0
        rs = [length_range(x) for x in node[1]]
        lo = min(r[0] for r in rs)
        hi = None if any(r[1] is None for r in rs) else max(r[1] for r in rs)
        return lo, hi
    if k == "r":
        a, b = length_range(node[1])
        lo = a * node[2]
        if node[3] == -1:
            hi = None if (b is None or b > 0) else 0
        else:
            hi = None if b is None else b * node[3]
        return lo, hi
    return 0, 0


def trim_tail(node):
    """An AST T with  L(T) Σ* == L(node) Σ*  (drops trailing optional parts)."""
    k = node[0]
    if k == "r":
        if node[2] == 0:
            return A_EMPTY
        return mk_seq([mk_rep(node[1], node[2] - 1, node[2] - 1), trim_tail(node[1])])
    if k == "a":
        bs = [trim_tail(b) for b in node[1]]
        if any(b == A_EMPTY for b in bs):
            return A_EMPTY
        return mk_alt(bs)
    if k == "s":
        items = list(node[1])
        while items:
            last = trim_tail(items[-1])
            if last == A_EMPTY:
                items.pop()
                continue
            items[-1] = last
            break
        return mk_seq(items)
    return node


def trim_head(node):
    """An AST H with  Σ* L(H) == Σ* L(node)."""
    k = node[0]
    if k == "r":
        if node[2] == 0:
            return A_EMPTY
        return mk_seq([trim_head(node[1]), mk_rep(node[1], node[2] - 1, node[2] - 1)])
    if k == "a":
        bs = [trim_head(b) for b in node[1]]
        if any(b == A_EMPTY for b in bs):
            return A_EMPTY
        return mk_alt(bs)
    if k == "s":
        items = list(node[1])
        while items:
            first = trim_head(items[0])
            if first == A_EMPTY:
                items.pop(0)
                continue
            items[0] = first
            break
        return mk_seq(items)
    return node


class CannotRestrict(Exception):
    pass


_ENUM_CAP = 64
_ENUM_BUDGET = 2000


def restrict(node, lo: int, hi: Optional[int], _budget=None):
    """An AST for L(node) ∩ {strings of length lo..hi}, or raise CannotRestrict."""
    if _budget is None:
        _budget = [_ENUM_BUDGET]
    _budget[0] -= 1
    if _budget[0] < 0:
        raise CannotRestrict()
    nlo, nhi = length_range(node)
    if lo <= nlo and (hi is None or (nhi is not None and nhi <= hi)):
        return node
    if (hi is not None and nlo > hi) or (nhi is not None and nhi < lo):
        return A_NOTHING
    k = node[0]
    if k == "a":
        return mk_alt([restrict(b, lo, hi, _budget) for b in node[1]])
    if k == "r":
        x, a, b = node[1], node[2], node[3]
        xlo, xhi = length_range(x)
        if xlo != xhi:  # a repetition of a variable-length item: the counts do not add up simply
            raise CannotRestrict()
        w = xlo
        if w == 0:
            return node if lo <= 0 else A_NOTHING
        na = max(a, -(-lo // w))
        nb = b if hi is None else (hi // w if b == -1 else min(b, hi // w))
        if nb != -1 and na > nb:
            return A_NOTHING
        return mk_rep(x, na, nb)
    if k == "s":
        items = list(node[1])
        ranges = [length_range(x) for x in items]
        var = [i for i, (a, b) in enumerate(ranges) if a != b]
        fixed = sum(a for a, b in ranges if a == b)
        if len(var) == 1:
            i = var[0]
            rlo = max(0, lo - fixed)
            rhi = None if hi is None else hi - fixed
            if rhi is not None and rhi < 0:
                return A_NOTHING
            items[i] = restrict(items[i], rlo, rhi, _budget)
            return mk_seq(items)
        # several variable parts: enumerate the exact length of the first one
        i = var[0]
        a, b = ranges[i]
        head = mk_seq(items[:i])
        rest = mk_seq(items[i + 1:])
        hlen = length_range(head)[0]
        rest_lo = length_range(rest)[0]
        top = b
        if hi is not None:
            cap = hi - hlen - rest_lo
            top = cap if top is None else min(top, cap)
        if top is None or top - a > _ENUM_CAP:
            raise CannotRestrict()
        alts = []
        for ln in range(a, top + 1):
            first = restrict(items[i], ln, ln, _budget)
            if first == A_NOTHING:
                continue
            t = restrict(rest, max(0, lo - hlen - ln), None if hi is None else hi - hlen - ln, _budget)
            if t == A_NOTHING:
                continue
            alts.append(mk_seq([head, first, t]))
        return mk_alt(alts) if alts else A_NOTHING
    raise CannotRestrict()


# ------------------------------------------------------------------------------------- lowering


def to_ir(node, _memo=None) -> Expr:
    """AST (anchor-free) -> grammar IR over JSON-string code points."""
    k = node[0]
    if k == "c":
        return (CP, node[1], True) if node[1] else NOTHING
    if k == "s":
        return seq(*[to_ir(x) for x in node[1]]) if node[1] else EMPTY
    if k == "a":
        return alt(*[to_ir(x) for x in node[1]]) if node[1] else NOTHING
    if k == "r":
        inner = to_ir(node[1])
        if inner == NOTHING:
            return EMPTY if node[2] == 0 else NOTHING
        return rep(inner, node[2], node[3])
    raise RegexUnsupported("anchor inside the pattern")


def _py_class(ranges: Ranges) -> str:
    if not ranges:
        return "(?!)"
    parts = []
    for lo, hi in ranges:
        parts.append("\\U%08x" % lo if lo == hi else "\\U%08x-\\U%08x" % (lo, hi))
    return "[" + "".join(parts) + "]"


def to_python(node) -> str:
    """AST (anchor-free) -> Python regex source with the same language (for checking values)."""
    k = node[0]
    if k == "c":
        return _py_class(node[1])
    if k == "s":
        return "".join("(?:%s)" % to_python(x) if x[0] == "a" else to_python(x) for x in node[1])
    if k == "a":
        return "|".join(to_python(x) for x in node[1]) if node[1] else "(?!)"
    if k == "r":
        hi = "" if node[3] == -1 else str(node[3])
        return "(?:%s){%d,%s}" % (to_python(node[1]), node[2], hi)
    raise RegexUnsupported("anchor inside the pattern")


# ----------------------------------------------------------------------------------- entry points


def search_ast(pattern: str, min_len: int = 0, max_len: Optional[int] = None, *,
               max_repetition: int = 10_000, full_match: bool = False):
    """AST of all strings (code point sequences) the pattern matches somewhere in, with the length bound.

    ``full_match=True`` treats the pattern as anchored at both ends (the format regexes).
    Raises RegexUnsupported, CannotRestrict, LimitError.
    """
    return _search_ast(pattern, min_len, max_len, max_repetition, full_match)


@functools.lru_cache(maxsize=4096)
def _search_ast(pattern, min_len, max_len, max_repetition, full_match):
    tree = parse(pattern, max_repetition)
    lengthy = min_len > 0 or max_len is not None
    out = []
    for s, e, node in variants(tree):
        if full_match:
            s = e = True
        if not e:
            node = trim_tail(node)
        if not s:
            node = trim_head(node)
        parts = []
        if not s:
            parts.append(any_star())
        parts.append(node)
        if not e:
            parts.append(any_star())
        body = mk_seq(parts)
        if lengthy:
            body = restrict(body, min_len, max_len)
        out.append(body)
    return mk_alt(out) if out else A_NOTHING


@functools.lru_cache(maxsize=4096)
def python_matcher(pattern: str, full_match: bool = False):
    """A compiled Python regex whose fullmatch() decides the pattern (ECMA semantics) on a str."""
    ast = _search_ast(pattern, 0, None, 10 ** 9, full_match)
    return re.compile(to_python(ast), re.DOTALL)


def pattern_body(pattern: str, min_len: int = 0, max_len: Optional[int] = None, *, pointer: str = "",
                 keyword: str = "pattern", max_repetition: int = 10_000, full_match: bool = False) -> Expr:
    """IR for the *inside* of a JSON string whose decoded value matches ``pattern`` and has a length in
    ``min_len..max_len`` code points. Raises SchemaError (keyword ``keyword``) or LimitError."""
    try:
        ast = _search_ast(pattern, min_len, max_len, max_repetition, full_match)
    except RegexUnsupported as e:
        raise SchemaError(f"unsupported regular expression {pattern!r}: {e}", pointer, keyword) from None
    except CannotRestrict:
        raise SchemaError(
            f"cannot combine {keyword} {pattern!r} with minLength/maxLength ({min_len}..{max_len}) exactly; "
            "drop the length bound, write it into the pattern, or pass lenient=True to ignore the length",
            pointer, keyword) from None
    return to_ir(ast)
