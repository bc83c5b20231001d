"""Tools + tool_choice + a ToolFormat → one grammar for the whole assistant turn.

Stages: the format's templates are *resolved* against the vocabulary (delimiters that are special tokens
become token ids, the rest stays text), each tool's ``parameters`` schema is compiled by json_schema.py,
and the turn is assembled::

    turn     ::= [reasoning] ( text end_text | [preamble] calls end_calls )
    calls    ::= calls_begin call (call_sep call){0 or more, parallel only} calls_end
    call     ::= one of the call templates, for one allowed tool, its $args = that tool's schema
               | a code template ($code: free text), when the tools include {"type": "code_interpreter"}

``tool_choice`` keeps the branches it allows (``none``: text only; ``required``/named: calls only, with a
preamble only when asked for and the family mixes text and calls). Text slots exclude the format's
triggers (text_grammar.py) so that ``none`` can never produce a call and a parse is never ambiguous. The
end-of-turn tokens are matched by id and are the compiled grammar's stop tokens.
"""
from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import SchemaError, TokenizerError
from .formats import get as get_format
from .formats.spec import ToolFormat, split_template
from .grammar import ALT, BYTE, CP, EMPTY, EXCL, LIT, NOTHING, REF, REP, SEQ, TOK, Expr, Grammar, alt, cp, lit, opt, \
    rep, seq, star, tok
from .text_grammar import TEXT_RANGES, text_expr
from .tool_schema import CODE_INTERPRETER_NAME, is_code_interpreter, tool_name

# Special tokens appear in parsed strings as single lone high surrogates: text decoded from UTF-8 never
# holds a surrogate (any character the model writes, private-use ones included, stays text).
MARKER_BASE = 0xD800
MARKER_END = 0xDC00

Piece = Tuple[str, Any]  # ("text", str) | ("special", token_id) | ("slot", name)


@dataclass
class ResolvedFormat:
    """A ToolFormat's templates as pieces over one vocabulary (each a tuple of alternatives)."""

    fmt: ToolFormat
    templates: Dict[str, List[List[Piece]]]
    end_text: List[int]
    end_calls: List[int]
    special_text: Dict[int, str]  # token id -> its text, for every special the format uses
    markers: Dict[int, str] = field(default_factory=dict)  # token id -> marker character

    def marker(self, tid: int) -> str:
        m = self.markers.get(tid)
        if m is None:
            if MARKER_BASE + len(self.markers) >= MARKER_END:
                raise ValueError(f"a tool-call format may use at most {MARKER_END - MARKER_BASE} special tokens")
            m = self.markers[tid] = chr(MARKER_BASE + len(self.markers))
        return m

    def marked(self, pieces: Sequence[Piece]) -> List[Tuple[str, str]]:
        """Pieces with specials replaced by their marker characters and adjacent literals joined."""
        out: List[Tuple[str, str]] = []
        for kind, v in pieces:
            if kind == "slot":
                out.append(("slot", v))
                continue
            s = self.marker(v) if kind == "special" else v
            if out and out[-1][0] == "lit":
                out[-1] = ("lit", out[-1][1] + s)
            else:
                out.append(("lit", s))
        return out


_SPECIALS: Dict[str, Tuple[Dict[str, int], Dict[str, List[str]]]] = {}  # vocab hash -> (table, index)


def _first_char_index(table: Dict[str, int]) -> Dict[str, List[str]]:
    """Special-token texts by first character, longest first (for the delimiter scan)."""
    by_first: Dict[str, List[str]] = {}
    for s in table:
        by_first.setdefault(s[0], []).append(s)
    for v in by_first.values():
        v.sort(key=len, reverse=True)
    return by_first


def _special_table(vocab) -> Tuple[Dict[str, int], Dict[str, List[str]]]:
    """Text -> id of the vocabulary's special tokens and its first-character index, once per vocabulary."""
    key = vocab.hash()
    hit = _SPECIALS.get(key)
    if hit is not None:
        return hit
    table: Dict[str, int] = {}
    for i in sorted(vocab.special_ids):
        if 0 <= i < vocab.n_tokens:
            b = vocab.tokens[i]
            if not b:
                continue
            try:
                s = b.decode("utf-8")
            except UnicodeDecodeError:
                continue
            table.setdefault(s, i)
    if len(_SPECIALS) >= 16:
        _SPECIALS.clear()
    hit = _SPECIALS[key] = (table, _first_char_index(table))
    return hit


def _split_specials(text: str, table: Dict[str, int], by_first: Dict[str, List[str]]) -> List[Piece]:
    """Split a delimiter into text and special-token pieces (longest special first at each position)."""
    out: List[Piece] = []
    buf = []
    i = 0
    while i < len(text):
        hit = None
        for s in by_first.get(text[i], ()):
            if text.startswith(s, i):
                hit = s
                break
        if hit is None:
            buf.append(text[i])
            i += 1
            continue
        if buf:
            out.append(("text", "".join(buf)))
            buf = []
        out.append(("special", table[hit]))
        i += len(hit)
    if buf:
        out.append(("text", "".join(buf)))
    return out


def resolve_format(fmt: ToolFormat, vocab) -> ResolvedFormat:
    table, by_first = _special_table(vocab) if vocab is not None else ({}, {})
    if vocab is not None:
        # The format's own delimiters are matched by id even where a tokenizer lists them as added,
        # non-special tokens (DeepSeek-V3's tool tokens): one token whose text is exactly the delimiter.
        extra = {}
        for s in fmt.specials + fmt.optional_specials + tuple(fmt.end_text) + tuple(fmt.end_calls):
            if s not in table:
                ids = vocab.token_ids(s)
                if ids:
                    extra[s] = ids[0]
        if extra:
            table = {**table, **extra}
            by_first = _first_char_index(table)
    missing = [s for s in fmt.specials if s not in table]
    if missing:
        raise TokenizerError(
            f"tool-call format {fmt.name!r} needs the special token(s) {', '.join(map(repr, missing))}, which this "
            f"vocabulary does not have as special tokens (a tokenizer of the {fmt.family or fmt.name} family "
            "has them; for another tokenizer add them as special tokens or pick another format)")
    optional_missing = {s for s in fmt.optional_specials if s not in table}
    templates: Dict[str, List[List[Piece]]] = {}
    for fname in ("call", "text", "preamble", "calls_begin", "call_sep", "calls_end", "reasoning", "code"):
        alts = []
        for t in fmt.alts(fname):
            if any(o in t for o in optional_missing):
                continue
            pieces: List[Piece] = []
            for kind, v in split_template(t):
                if kind == "slot":
                    pieces.append(("slot", v))
                else:
                    pieces.extend(_split_specials(v, table, by_first))
            alts.append(pieces)
        if fmt.alts(fname) and not alts and fname != "code":  # code: an error only if a code tool is given
            raise TokenizerError(f"tool-call format {fmt.name!r}: no spelling of {fname!r} fits this vocabulary "
                                 f"(missing special tokens {sorted(optional_missing)})")
        templates[fname] = alts
    stops = set(vocab.stop_ids) if vocab is not None else set()

    def ends(names: Sequence[str]) -> List[int]:
        ids = [table[n] for n in names if n in table]
        return ids or sorted(stops)

    special_text = {i: s for s, i in table.items()}
    used = {v for alts in templates.values() for pcs in alts for k, v in pcs if k == "special"}
    rf = ResolvedFormat(fmt, templates, ends(fmt.end_text), ends(fmt.end_calls),
                        {i: special_text[i] for i in used | set(ends(fmt.end_text)) | set(ends(fmt.end_calls))
                         if i in special_text})
    for i in sorted(rf.special_text):
        rf.marker(i)
    return rf


# ------------------------------------------------------------------------------------- arguments
_SHORT_ESC = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def _esc_byte(b: int) -> bytes:
    if b in _SHORT_ESC:
        return _SHORT_ESC[b].encode()
    if b < 0x20:
        return b"\\u%04x" % b
    return bytes([b])


def _split_ranges(ranges, special: Sequence[int]):
    """(ranges without the code points in ``special``, the special code points that were inside)."""
    sp = sorted(set(special))
    keep, hit = [], []
    for lo, hi in ranges:
        cur = lo
        for c in sp:
            if c < cur or c > hi:
                continue
            hit.append(c)
            if c > cur:
                keep.append((cur, c - 1))
            cur = c + 1
        if cur <= hi:
            keep.append((cur, hi))
    return keep, hit


_NEEDS_ESC = list(range(0x20)) + [0x22, 0x5C]


def embed_in_json_string(g: Grammar, e: Expr, memo: Optional[Dict[int, int]] = None) -> Expr:
    """The language of ``e`` written as the *inside* of a JSON string (``"`` → ``\\"`` and so on).

    Each character of the inner text takes its canonical JSON escape (json.dumps style); the inner
    JSON's own escapes are escaped once more (``\\n`` inside an inner string becomes ``\\\\n``). Inner
    ``\\uXXXX`` escapes are not offered (an over-constraint, never a relaxation).
    """
    memo = {} if memo is None else memo
    k = e[0]
    if k == LIT:
        return lit(b"".join(_esc_byte(b) for b in e[1]))
    if k == BYTE:
        keep, hit = _split_ranges(e[1], _NEEDS_ESC)
        parts = [(BYTE, tuple(keep))] if keep else []
        parts += [lit(_esc_byte(c)) for c in hit]
        return alt(*parts) if parts else NOTHING
    if k == CP:
        keep, hit = _split_ranges(e[1], _NEEDS_ESC)
        parts = [cp(keep)] if keep else []
        if e[2]:  # a character of an inner JSON string: raw where allowed, or its short escape, escaped again
            for c in hit + [x for x in (0x2F,) if any(lo <= x <= hi for lo, hi in e[1])]:
                inner = _SHORT_ESC.get(c) or ("\\/" if c == 0x2F else None)
                if inner is None:
                    inner = "\\u%04x" % c
                parts.append(lit("".join(_esc_byte(b).decode() for b in inner.encode())))
        else:
            parts += [lit(_esc_byte(c)) for c in hit]
        return alt(*parts) if parts else NOTHING
    if k == SEQ:
        return seq(*(embed_in_json_string(g, x, memo) for x in e[1]))
    if k == ALT:
        return alt(*(embed_in_json_string(g, x, memo) for x in e[1]))
    if k == REP:
        return rep(embed_in_json_string(g, e[1], memo), e[2], e[3])
    if k == REF:
        r = e[1]
        if r not in memo:
            memo[r] = g.add_rule(g.names[r] + "~jsonstr", None, call=r in g.calls)
            g.rules[memo[r]] = embed_in_json_string(g, g.rules[r], memo)
        return (REF, memo[r])
    if k == TOK:
        raise SchemaError("a special token cannot appear inside a JSON string", "#")
    if k == EXCL:
        from .json_schema import expand_excluding

        return embed_in_json_string(g, expand_excluding(e), memo)
    return e


def _no_json_cp(e: Expr) -> Expr:
    k = e[0]
    if k == CP:
        return (CP, e[1], False)
    if k in (SEQ, ALT):
        return (k, tuple(_no_json_cp(x) for x in e[1]))
    if k == REP:
        return (REP, _no_json_cp(e[1]), e[2], e[3])
    return e


@lru_cache(maxsize=64)
def _id_expr(pattern: str) -> Expr:
    from .regex import pattern_body

    return _no_json_cp(pattern_body(pattern, full_match=True, keyword="call_id"))


@lru_cache(maxsize=256)
def _text(forbid: Tuple[str, ...], prefix: Tuple[str, ...], follow: Optional[str]) -> Expr:
    return text_expr(forbid, prefix, follow)


# ------------------------------------------------------------------------------------- the turn
@dataclass
class ToolTurn:
    """What a compiled tool grammar knows about its turn; the parser reads it."""

    resolved: ResolvedFormat
    tools: List[Dict[str, Any]]
    names: List[str]  # the callable names (after tool_choice)
    mode: str  # auto | none | required | named
    parallel: bool
    allow_preamble: bool
    code: bool = False  # a code-interpreter call (the format's ``code`` template) is allowed

    @property
    def format(self) -> ToolFormat:
        return self.resolved.fmt


def _lead_text(pieces: Sequence[Piece]) -> Tuple[str, bool]:
    """Text before the first slot or special, and whether a special (not a slot) ended it."""
    out = []
    for k, v in pieces:
        if k == "text":
            out.append(v)
        else:
            return "".join(out), k == "special"
    return "".join(out), False


def build_turn(tools: List[Dict[str, Any]], fmt, vocab, mode: str, names: Sequence[str], parallel: bool,
               allow_preamble: bool = False, json_options: Optional[Dict[str, Any]] = None,
               reasoning: Optional[bool] = None) -> Tuple[Grammar, ToolTurn, List[int]]:
    """Build the turn grammar. Returns (grammar, turn info, stop token ids)."""
    from .json_schema import schema_to_grammar

    fmt = get_format(fmt)
    rf = resolve_format(fmt, vocab)
    T = rf.templates
    g = Grammar()
    root = g.add_rule("turn", None)
    if mode not in ("auto", "none", "required", "named"):
        raise ValueError(f"tool_choice mode must be auto, none, required or named, not {mode!r}")
    # The code interpreter ({"type": "code_interpreter"}) is called as "python" and written with the
    # format's code template; it is one more call alternative.
    code_idx = next((i for i, t in enumerate(tools) if is_code_interpreter(t)), None)
    use_code = code_idx is not None and CODE_INTERPRETER_NAME in names and mode != "none"
    if use_code and not T["code"]:
        raise SchemaError(
            f"tool-call format {fmt.name!r} has no code-interpreter syntax (ToolFormat.code"
            + (", or its special tokens are missing from this vocabulary" if fmt.code else "")
            + "); drop the code_interpreter tool or use a format that has one",
            f"/tools/{code_idx}/type", "type")
    names = [n for n in names if not (code_idx is not None and n == CODE_INTERPRETER_NAME)]
    if not names and not use_code and mode in ("auto",):
        mode = "none"
    if not names and not use_code and mode in ("required", "named"):
        raise SchemaError("tool_choice requires a call but no tool is available", "/tool_choice", "tool_choice")
    parallel = bool(parallel) and fmt.parallel

    special_texts = tuple(sorted(rf.special_text.values()))
    # what text must avoid
    calls_lead = []  # how a run of calls starts: calls_begin when it has text, else the call itself
    for b in T["calls_begin"] or [[]]:
        for c in T["call"] + (T["code"] if use_code else []):
            calls_lead.append(list(b) if _lead_text(b)[0] or (b and b[0][0] == "special") else list(c))
    if fmt.text_forbid is not None:
        forbid = tuple(fmt.text_forbid)
    else:
        forbid = tuple(sorted({t for t, sp in map(_lead_text, calls_lead) if t and not sp}))
    forbid = tuple(sorted(set(forbid) | set(special_texts)))
    prefix_forbid: Tuple[str, ...] = ()
    if not fmt.mixes_text:
        prefix_forbid = tuple(sorted({t for t, sp in map(_lead_text, calls_lead) if t and not sp}))

    def slot_text(pieces: Sequence[Piece], i: int, after: Sequence[Piece], kind: str) -> Expr:
        rest = list(pieces[i + 1:]) + list(after)
        follow, by_special = _lead_text(rest)
        if by_special:
            # The text ends at a special token, which it can never contain: the delimiter text before that
            # token ("\n" in "\n<|from|>") may occur inside the text too (the parser looks for the text
            # and the token together).
            follow = ""
        if kind == "code":
            if pieces[i + 1:]:  # the code template itself goes on after $code
                return _text(forbid, (), follow or None)
            fb = tuple(sorted(set(forbid) | set(code_forbid)))
            return _text(fb, (), code_follow or None)
        if kind == "reasoning":
            fb = tuple(sorted(set(fmt.reasoning_forbid) | set(special_texts)))
            return _text(fb, (), follow or None)
        pf = prefix_forbid if i == 0 else ()
        body = _text(forbid, pf, follow or None)
        if (i > 0 and pieces[i - 1][0] == "text" and pieces[i - 1][1].endswith('"')
                and i + 1 < len(pieces) and pieces[i + 1][0] == "text" and pieces[i + 1][1].startswith('"')):
            return star(cp(TEXT_RANGES, json=True))  # text inside a JSON string
        return body

    def instantiate(pieces: Sequence[Piece], after: Sequence[Piece] = (), tool_idx: Optional[int] = None,
                    args_expr: Optional[Expr] = None) -> Expr:
        parts = []
        for i, (k, v) in enumerate(pieces):
            if k == "text":
                parts.append(lit(v))
            elif k == "special":
                parts.append(tok(v))
            elif v in ("text", "reasoning", "code"):
                parts.append(slot_text(pieces, i, after, v))
            elif v == "name":
                parts.append(lit(names_all[tool_idx]))
            elif v == "args":
                parts.append(args_expr)
            elif v == "id":
                parts.append(_id_expr(fmt.call_id))
        return seq(*parts)

    # What can follow a code segment: the next call (after call_sep) or calls_end, then a special end token.
    # Their leading texts must not be spelled inside the code (the longest is the text_expr `follow`).
    code_forbid: Tuple[str, ...] = ()
    code_follow = ""
    if use_code:
        nexts: List[List[Piece]] = []
        if parallel:
            for sp in T["call_sep"] or [[]]:
                for c in T["call"] + T["code"]:
                    nexts.append(list(sp) + list(c))
        nexts += [list(e) for e in (T["calls_end"] or [[]])]
        follows = sorted({t for t, sp in map(_lead_text, nexts) if t and not sp}, key=len, reverse=True)
        if follows:
            code_follow = follows[0]
            code_forbid = tuple(follows[1:])

    opts = dict(fmt.json)
    opts.update(json_options or {})
    by_name = {tool_name(t): t for t in tools}
    names_all = list(names)
    call_alts = []
    shared: Dict[Any, Any] = {}  # what the tools' argument schemas share (one "any JSON value" rule)
    for ti, name in enumerate(names_all):
        fn = by_name[name]["function"]
        params = fn.get("parameters")
        if params is None:
            params = {"type": "object", "properties": {}}
        o = dict(opts)
        if fn.get("strict"):
            o["strict"] = True
        if fmt.args == "python":
            o.setdefault("syntax", "python")
            o["kwargs"] = True
            o.pop("separators", None)
        base = len(g.rules)
        try:
            schema_to_grammar(params, into=g, shared=shared, **o)
        except SchemaError as e:
            raise SchemaError(f"tool {name!r}: {e.args[0] if e.args else e}",
                              f"/tools/{ti}/function/parameters{(e.pointer or '#').lstrip('#')}",
                              e.keyword) from None
        args = (REF, base)
        if fmt.args == "json-string":
            args = seq(lit('"'), embed_in_json_string(g, args), lit('"'))
        for c in T["call"]:
            call_alts.append(instantiate(c, (), ti, args))
    if use_code:
        for c in T["code"]:
            call_alts.append(instantiate(c))
    n_alts = len(names_all) + (1 if use_code else 0)
    call = g.add_rule("call", alt(*call_alts), call=n_alts > 1) if call_alts else None

    def alts_of(fname: str, after: Sequence[Piece] = ()) -> Expr:
        ts = T[fname]
        if not ts:
            return EMPTY
        return alt(*(instantiate(p, after) for p in ts))

    end_text = alt(*(tok(i) for i in rf.end_text)) if rf.end_text else EMPTY
    end_calls = alt(*(tok(i) for i in rf.end_calls)) if rf.end_calls else EMPTY
    branches = []
    if mode in ("auto", "none"):
        branches.append(seq(alts_of("text"), end_text))
    if mode in ("auto", "required", "named") and call is not None:
        c = (REF, call)
        more = rep(seq(alts_of("call_sep"), c), 0, -1) if parallel else EMPTY
        first_lead = (T["calls_begin"][0] if T["calls_begin"] else []) + (T["call"][0] if T["call"] else [])
        calls = seq(alts_of("calls_begin"), c, more, alts_of("calls_end"), end_calls)
        if fmt.mixes_text and (mode == "auto" or allow_preamble):
            pre = alt(*(instantiate(p, first_lead) for p in T["preamble"]))
            calls = seq(opt(pre), calls)
        branches.append(calls)
    body = alt(*branches)
    if T["reasoning"] and reasoning is not False:
        r = alts_of("reasoning")
        body = seq(r if fmt.reasoning_required or reasoning else opt(r), body)
    g.set_rule(root, body)
    stops = sorted(set(rf.end_text) | set(rf.end_calls))
    turn = ToolTurn(rf, tools, names_all, mode, parallel, allow_preamble, use_code)
    return g, turn, stops

