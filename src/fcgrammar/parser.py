"""Generated text or token ids → an OpenAI assistant message, whole or as streaming deltas.

The parser reads the same resolved format as the grammar (tool_grammar.py): special tokens become single
marker characters (lone surrogates: never in decoded text), templates are matched left to right,
``$name`` takes the allowed name that is followed by the template's next delimiter (so ``get_weather``
and ``get_weather_hourly`` never confuse), ``$args`` is read with the JSON (or Python-literal) decoder,
and text runs to the first trigger.
Under the grammar the text always parses; on unconstrained text a :class:`ParseError` says where it
stops following the format.

The streaming parser re-reads the output on each step in *partial* mode (the input may end anywhere) and
emits only what can no longer change: text up to a possible trigger prefix, a call's name once it is
complete, its arguments as they grow.
"""
from __future__ import annotations

import ast
import json as _json
import math
import re
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .errors import FcgError
from .tool_grammar import MARKER_BASE, MARKER_END, ToolTurn
from .tool_schema import CODE_INTERPRETER_NAME


class ParseError(FcgError, ValueError):
    """The output does not follow the tool-call format (only possible for unconstrained text)."""


class _NoMatch(Exception):
    pass


class _EOF(Exception):
    """Partial mode: the input ended inside the turn; ``state`` is what is known so far."""

    def __init__(self, state: "_State") -> None:
        self.state = state


_DEC = _json.JSONDecoder()
_MARKER_RE = re.compile(f"[{chr(MARKER_BASE)}-{chr(MARKER_END - 1)}]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class _State:
    __slots__ = ("reasoning", "content", "calls", "cur")

    def __init__(self) -> None:
        self.reasoning: Optional[str] = None
        self.content: Optional[str] = None
        self.calls: List[Dict[str, Any]] = []
        self.cur: Optional[Dict[str, Any]] = None  # the call being read

    def copy(self) -> "_State":
        s = _State()
        s.reasoning, s.content = self.reasoning, self.content
        s.calls = [dict(c) for c in self.calls]
        s.cur = dict(self.cur) if self.cur is not None else None
        return s


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _py_json(node: ast.AST, src: str) -> str:
    """JSON text of a Python literal, numbers as written (``1.0`` stays ``1.0``; a number too large for a
    float stays exact instead of becoming ``Infinity``). ValueError for what JSON cannot say."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return "[" + ", ".join(_py_json(x, src) for x in node.elts) + "]"
    if isinstance(node, ast.Dict):
        parts = []
        for k, v in zip(node.keys, node.values):
            if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                raise ValueError("a JSON object's keys are strings")
            parts.append(f"{_json.dumps(k.value, ensure_ascii=False)}: {_py_json(v, src)}")
        return "{" + ", ".join(parts) + "}"
    value = ast.literal_eval(node)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = ast.get_source_segment(src, node) or ""
        if _JSON_NUMBER.fullmatch(text):
            return text
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a JSON number")
    elif not (value is None or isinstance(value, (bool, str))):
        raise ValueError("not a JSON value")
    return _json.dumps(value, ensure_ascii=False)


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class _Plan:
    """What a reader needs of a turn, derived once per compiled grammar: marked templates, names, stops."""

    def __init__(self, turn: ToolTurn) -> None:
        rf = turn.resolved
        self.names = sorted(turn.names, key=len, reverse=True)
        self.t = {k: [rf.marked(p) for p in v] for k, v in rf.templates.items()}
        self.end_text = [rf.marker(i) for i in rf.end_text if i in rf.markers]
        self.end_calls = [rf.marker(i) for i in rf.end_calls if i in rf.markers]
        self.code_t = self.t.get("code", []) if turn.code else []
        self.id_re = re.compile(rf.fmt.call_id) if rf.fmt.call_id else None
        calls = self.t["call"] + self.code_t
        # what a preamble's text runs up to: the start of the calls
        self.leads = [_lead_lit(list(b) + list(c)) for b in self.t["calls_begin"] or [[]] for c in calls]
        # where a code segment (free text) stops: the next call, calls_end, or an end-of-turn token
        nexts = []
        if turn.parallel:
            nexts += [list(sp) + list(c) for sp in self.t["call_sep"] or [[]] for c in calls]
        nexts += [list(e) for e in (self.t["calls_end"] or [[]])]
        self.code_stops = sorted({x for x in map(_lead_lit, nexts) if x} | set(self.end_calls), key=len,
                                 reverse=True)


def _plan(turn: ToolTurn) -> _Plan:
    plan = getattr(turn, "_parse_plan", None)
    if plan is None:
        plan = turn._parse_plan = _Plan(turn)
    return plan


class _Reader:
    def __init__(self, turn: ToolTurn, s: str, partial: bool) -> None:
        self.turn = turn
        self.rf = turn.resolved
        self.fmt = turn.resolved.fmt
        self.s = s
        self.partial = partial
        plan = _plan(turn)
        self.plan = plan
        self.names, self.t, self.code_t = plan.names, plan.t, plan.code_t
        self.end_text, self.end_calls, self.code_stops = plan.end_text, plan.end_calls, plan.code_stops

    # -------------------------------------------------------------------------------- primitives
    def eof(self, st: _State) -> None:
        raise _EOF(st)

    def lit(self, p: int, x: str, st: _State) -> int:
        s = self.s
        if s.startswith(x, p):
            return p + len(x)
        if self.partial and len(s) - p < len(x) and x.startswith(s[p:]):
            self.eof(st)
        raise _NoMatch

    def first_stop(self, p: int, stops: Sequence[str]) -> int:
        """Where free text from p ends: the first of ``stops``, or -1 when the input ends first.
        Free text never holds a special token of the format: a marker before any stop is no match."""
        s = self.s
        best = -1
        for x in stops:
            i = s.find(x, p) if x else -1
            if i != -1 and (best == -1 or i < best):
                best = i
        m = _MARKER_RE.search(s, p, best if best != -1 else len(s))
        if m is not None:
            raise _NoMatch
        return best

    def held_back(self, p: int, stops: Sequence[str]) -> int:
        """End of the free text that is certain mid-stream: a suffix that could still become one of
        ``stops`` is held back."""
        s = self.s
        keep = len(s)
        for x in stops:
            for k in range(min(len(x) - 1, len(s) - p), 0, -1):
                if x.startswith(s[len(s) - k:]):
                    keep = min(keep, len(s) - k)
                    break
        return keep

    def until(self, p: int, stops: Sequence[str], st: _State, field: str) -> Tuple[str, int]:
        """Text from p to the first of ``stops``."""
        q = self.first_stop(p, stops)
        if q != -1:
            return self.s[p:q], q
        if self.partial:
            setattr(st, field, self.s[p:self.held_back(p, stops)])
            self.eof(st)
        raise _NoMatch

    def name(self, p: int, nxt: str, st: _State) -> int:
        s = self.s
        waiting = False
        for n in self.names:
            if s.startswith(n, p):
                q = p + len(n)
                if not nxt or s.startswith(nxt, q):
                    st.cur["name"] = n
                    return q
                if self.partial and len(s) - q < len(nxt) and nxt.startswith(s[q:]):
                    waiting = True
            elif self.partial and len(s) - p < len(n) and n.startswith(s[p:]):
                waiting = True
        if waiting:
            self.eof(st)
        raise _NoMatch

    def args(self, p: int, st: _State) -> int:
        kind = self.fmt.args
        s = self.s
        if kind == "python":
            return self._py_args(p, st)
        try:
            val, q = _DEC.raw_decode(s, p)
        except ValueError:
            if self.partial and _json_prefix_ok(s[p:]):
                st.cur["args_text"] = s[p:] if kind == "json" else None
                self.eof(st)
            raise _NoMatch from None
        text = s[p:q]
        if kind == "json-string":
            if not isinstance(val, str):
                raise _NoMatch
            try:
                val = _json.loads(val)
            except ValueError:
                raise _NoMatch from None
            text = _json.dumps(val, ensure_ascii=False)
        if not isinstance(val, dict):
            raise _NoMatch
        st.cur["args_text"] = text
        st.cur["args"] = val
        return q

    def _py_args(self, p: int, st: _State) -> int:
        s = self.s
        depth, q, quote = 0, p, None
        while q < len(s):
            c = s[q]
            if quote:
                if c == "\\":
                    q += 2
                    continue
                if c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    break
                depth -= 1
            q += 1
        if q >= len(s):
            if self.partial:
                self.eof(st)
            raise _NoMatch
        src = f"f({s[p:q]})"
        try:
            call = ast.parse(src, mode="eval").body
            if not isinstance(call, ast.Call) or call.args or any(kw.arg is None for kw in call.keywords):
                raise _NoMatch
            val = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            text = "{" + ", ".join(f"{_json.dumps(kw.arg, ensure_ascii=False)}: {_py_json(kw.value, src)}"
                                   for kw in call.keywords) + "}"
        except (SyntaxError, ValueError):
            raise _NoMatch from None
        st.cur["args"] = val
        st.cur["args_text"] = text
        return q

    def ident(self, p: int, nxt: str, st: _State) -> int:
        m = self.plan.id_re.match(self.s, p)
        if not m:
            if self.partial and p >= len(self.s):
                self.eof(st)
            raise _NoMatch
        st.cur["id"] = m.group(0)
        return m.end()

    # -------------------------------------------------------------------------------- templates
    def template(self, items, p: int, st: _State, after: Sequence[str] = ()) -> int:
        """Match one marked template; ``after``: what may follow it (for a trailing text slot)."""
        for i, (k, v) in enumerate(items):
            nxt = items[i + 1][1] if i + 1 < len(items) and items[i + 1][0] == "lit" else ""
            if k == "lit":
                p = self.lit(p, v, st)
            elif v == "name":
                p = self.name(p, nxt, st)
            elif v == "args":
                p = self.args(p, st)
            elif v == "id":
                p = self.ident(p, nxt, st)
            elif v == "code":
                p = self.code(p, [nxt] if nxt else list(after), st)
            elif v in ("text", "reasoning"):
                field = "content" if v == "text" else "reasoning"
                if i > 0 and items[i - 1][0] == "lit" and items[i - 1][1].endswith('"') and nxt.startswith('"'):
                    try:  # text inside a JSON string
                        text, q = _DEC.raw_decode(self.s, p - 1)
                    except ValueError:
                        if self.partial:
                            self.eof(st)
                        raise _NoMatch from None
                    p = q - 1
                else:
                    stops = [nxt] if nxt else list(after)
                    text, p = self.until(p, stops, st, field) if stops else (self.s[p:], len(self.s))
                setattr(st, field, text)
        return p

    def alts(self, key: str, p: int, st: _State, after: Sequence[str] = ()) -> Tuple[int, _State]:
        ts = self.t.get(key) or []
        if not ts:
            return p, st
        for items in ts:
            s2 = st.copy()
            try:
                return self.template(items, p, s2, after), s2
            except _NoMatch:
                continue
        raise _NoMatch

    def code(self, p: int, stops: Sequence[str], st: _State) -> int:
        """A code-interpreter segment: free text up to the first of ``stops`` (a call named ``python``
        whose arguments are ``{"code": ...}``)."""
        s = self.s
        st.cur["name"] = CODE_INTERPRETER_NAME
        q = self.first_stop(p, stops)
        if q == -1 and not self.partial:
            q = len(s)
        elif q == -1:
            # an open JSON string: what is emitted so far stays a prefix of the final arguments
            code = s[p:self.held_back(p, stops)]
            st.cur["args_text"] = '{"code": ' + _json.dumps(code, ensure_ascii=False)[:-1]
            self.eof(st)
        code = s[p:q]
        st.cur["args"] = {"code": code}
        st.cur["args_text"] = _json.dumps({"code": code}, ensure_ascii=False)
        return q

    def calls(self, p: int, st: _State) -> Tuple[int, _State]:
        p, st = self.alts("calls_begin", p, st)
        first = True
        while True:
            if not first:
                if not self.turn.parallel:
                    break
                try:
                    q, st2 = self.alts("call_sep", p, st)
                except _NoMatch:
                    break
                st2.cur = {"name": None, "args_text": None, "id": None}
                try:
                    q, st2 = self._one_call(q, st2)
                except _NoMatch:
                    break
                p, st = q, st2
            else:
                st = st.copy()
                st.cur = {"name": None, "args_text": None, "id": None}
                p, st = self._one_call(p, st)
                first = False
        p, st = self.alts("calls_end", p, st)
        return p, st

    def _one_call(self, p: int, st: _State) -> Tuple[int, _State]:
        for items in self.t["call"] + self.code_t:
            s2 = st.copy()
            try:
                q = self.template(items, p, s2, self.code_stops)
            except _NoMatch:
                continue
            s2.calls.append(s2.cur)
            s2.cur = None
            return q, s2
        raise _NoMatch

    def end(self, p: int, ends: Sequence[str], st: _State) -> int:
        s = self.s
        for e in ends:
            if s.startswith(e, p):
                p += len(e)
                break
        if p < len(s) and s[p:].strip():
            raise _NoMatch
        return len(s)

    # -------------------------------------------------------------------------------- the turn
    def turn_(self) -> _State:
        st = _State()
        p = 0
        if self.t.get("reasoning"):
            try:
                p, st = self.alts("reasoning", p, st)
            except _NoMatch:
                if self.fmt.reasoning_required and self.turn.mode != "none":
                    raise
        mode = self.turn.mode
        if mode != "none":
            try:
                q, s2 = self.calls(p, st)
                self.end(q, self.end_calls, s2)
                return s2
            except _NoMatch:
                pass
            if self.fmt.mixes_text:
                for items in self.t["preamble"]:
                    s2 = st.copy()
                    try:
                        q = self.template(items, p, s2, self.plan.leads)
                        q, s2 = self.calls(q, s2)
                        self.end(q, self.end_calls, s2)
                        return s2
                    except _NoMatch:
                        continue
        for items in self.t["text"]:
            s2 = st.copy()
            try:
                q = self.template(items, p, s2, self.end_text)
                self.end(q, self.end_text, s2)
                return s2
            except _NoMatch:
                continue
        raise _NoMatch


def _lead_lit(items) -> str:
    """The literal text (markers included) a sequence of marked template items starts with."""
    out = []
    for k, v in items:
        if k != "lit":
            break
        out.append(v)
    return "".join(out)


def _json_prefix_ok(t: str) -> bool:
    """Could ``t`` be the start of a JSON object? (cheap check: it starts with '{' after whitespace)"""
    t = t.lstrip()
    return t == "" or t.startswith("{") or t.startswith('"')


# ------------------------------------------------------------------------------------- entry points
def _turn_of(grammar) -> ToolTurn:
    turn = getattr(grammar, "tool_turn", None)
    if turn is None:
        raise TypeError("parse() needs a grammar from Compiler.compile_tools (this one has no tool-call format)")
    return turn


def _decode(buf: bytes, final: bool) -> str:
    """UTF-8 text of ``buf``; mid-stream, an incomplete character at the end is held back."""
    if not final:
        for k in range(1, min(3, len(buf)) + 1):
            lead = buf[-k]
            if lead >= 0xC0:  # the start of a multi-byte character
                need = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
                if need > k:
                    buf = buf[:-k]
                break
            if lead < 0x80:
                break
    return buf.decode("utf-8", "replace")


def to_marked(grammar, data: Union[str, bytes, Sequence[int]], final: bool = True) -> str:
    """The output as a string where the format's special tokens are marker characters."""
    turn = _turn_of(grammar)
    rf = turn.resolved
    if isinstance(data, (str, bytes)):
        s = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if _SURROGATE_RE.search(s):  # not text (what decoding bytes would give): never read as a marker
            s = _SURROGATE_RE.sub("\ufffd", s)
        for tid, text in sorted(rf.special_text.items(), key=lambda kv: -len(kv[1])):
            s = s.replace(text, rf.marker(tid))
        return s
    vocab = grammar.vocab
    out: List[str] = []
    buf = bytearray()
    first = True
    for t in data:
        t = int(t)
        if t in rf.markers:
            if buf:
                out.append(buf.decode("utf-8", "replace"))
                buf = bytearray()
            out.append(rf.markers[t])
        elif vocab is not None and (t in vocab.special_ids or not 0 <= t < vocab.n_tokens):
            continue  # stop/padding/other special tokens carry no text
        else:
            b = vocab.tokens[t]
            if first and not out and vocab.add_prefix_space and b[:1] == b" ":
                b = b[1:]  # SentencePiece decoders drop the output's leading space
            buf += b
        first = False
    if buf:
        out.append(_decode(bytes(buf), final))
    return "".join(out)


def _unmark(turn: ToolTurn, s: Optional[str]) -> Optional[str]:
    if s is None:
        return None
    if _MARKER_RE.search(s):
        rev = {m: turn.resolved.special_text.get(t, "") for t, m in turn.resolved.markers.items()}
        s = "".join(rev.get(c, c) for c in s)
    return s


def _message(turn: ToolTurn, st: _State, ids: Optional[List[str]] = None) -> Dict[str, Any]:
    calls = []
    for k, c in enumerate(st.calls):
        cid = c.get("id") or (ids[k] if ids and k < len(ids) else new_call_id())
        calls.append({"id": cid, "type": "function",
                      "function": {"name": c["name"], "arguments": c["args_text"]}})
    content = _unmark(turn, st.content)
    if calls and content is not None:
        content = content.strip() or None
    msg: Dict[str, Any] = {"role": "assistant", "content": content if (content or not calls) else None}
    if msg["content"] is None and not calls:
        msg["content"] = ""
    if calls:
        msg["tool_calls"] = calls
    if st.reasoning is not None:
        msg["reasoning_content"] = _unmark(turn, st.reasoning)
    return msg


def parse(grammar, output: Union[str, bytes, Sequence[int]]) -> Dict[str, Any]:
    """The OpenAI assistant message for a complete output (text, bytes or token ids).

    Returns ``{"role": "assistant", "content": str | None, "tool_calls": [...]}`` (``tool_calls`` only
    when there are calls; ``reasoning_content`` when the format has a reasoning block and it was used).
    Raises :class:`ParseError` when the output does not follow the grammar's format.
    """
    turn = _turn_of(grammar)
    s = to_marked(grammar, output)
    r = _Reader(turn, s, partial=False)
    try:
        st = r.turn_()
    except _NoMatch:
        raise ParseError(f"output does not follow the {turn.format.name!r} tool-call format"
                         f" (tool_choice mode {turn.mode!r}, tools {turn.names}): {_unmark(turn, s)[:200]!r}") from None
    return _message(turn, st)


class StreamingParser:
    """Incremental parse for servers: ``feed(token_ids)`` returns OpenAI-style ``delta`` dicts.

    Deltas: ``{"reasoning_content": ...}``, ``{"content": ...}``, and for calls
    ``{"tool_calls": [{"index", "id", "type": "function", "function": {"name", "arguments": ""}}]}`` once a
    name is complete, then ``{"tool_calls": [{"index", "function": {"arguments": fragment}}]}``.
    ``finish()`` flushes and returns the last deltas; ``message()`` the whole message so far.
    """

    def __init__(self, grammar) -> None:
        self.grammar = grammar
        self.turn = _turn_of(grammar)
        self.ids: List[int] = []
        self.text: Optional[str] = None
        self._content = ""
        self._reasoning = ""
        self._names: List[str] = []
        self._call_ids: List[str] = []
        self._args: List[str] = []
        self._state: Optional[_State] = None

    def _snapshot(self, final: bool) -> _State:
        data: Union[str, List[int]] = self.text if self.text is not None else self.ids
        s = to_marked(self.grammar, data, final)
        r = _Reader(self.turn, s, partial=not final)
        try:
            return r.turn_()
        except _EOF as e:
            st = e.state
            if st.cur is not None:
                st.calls.append(st.cur)
            return st
        except _NoMatch:
            if final:
                raise ParseError(f"output does not follow the {self.turn.format.name!r} tool-call format: "
                                 f"{_unmark(self.turn, s)[:200]!r}") from None
            return self._state or _State()

    def feed(self, token_ids: Union[int, Sequence[int]] = (), text: Optional[str] = None) -> List[Dict[str, Any]]:
        """Add tokens (or, for text-only streams, text) and return the new deltas."""
        if text is not None:
            self.text = (self.text or "") + text
        elif isinstance(token_ids, int):
            self.ids.append(token_ids)
        else:
            self.ids.extend(int(t) for t in token_ids)
        return self._diff(self._snapshot(final=False))

    def finish(self) -> List[Dict[str, Any]]:
        return self._diff(self._snapshot(final=True), final=True)

    def message(self) -> Dict[str, Any]:
        st = self._state or _State()
        done = [c for c in st.calls if c.get("name") and c.get("args_text") is not None]
        st2 = st.copy()
        st2.calls = done
        return _message(self.turn, st2, self._call_ids)

    def _diff(self, st: _State, final: bool = False) -> List[Dict[str, Any]]:
        self._state = st
        out: List[Dict[str, Any]] = []
        if st.reasoning is not None:
            r = _unmark(self.turn, st.reasoning)
            if len(r) > len(self._reasoning) and r.startswith(self._reasoning):
                out.append({"reasoning_content": r[len(self._reasoning):]})
                self._reasoning = r
        if st.content is not None:
            c = _unmark(self.turn, st.content)
            if st.calls and final:
                c = c.rstrip()
            if len(c) > len(self._content) and c.startswith(self._content):
                out.append({"content": c[len(self._content):]})
                self._content = c
        for i, call in enumerate(st.calls):
            name = call.get("name")
            if not name:
                break
            if i >= len(self._names):
                cid = call.get("id") or new_call_id()
                self._names.append(name)
                self._call_ids.append(cid)
                self._args.append("")
                out.append({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                            "function": {"name": name, "arguments": ""}}]})
            a = call.get("args_text")
            if a is not None and len(a) > len(self._args[i]) and a.startswith(self._args[i]):
                out.append({"tool_calls": [{"index": i, "function": {"arguments": a[len(self._args[i]):]}}]})
                self._args[i] = a
        return out
