"""Tool inputs to OpenAI tool dicts, and OpenAI ``tool_choice`` to a (mode, allowed names) pair.

Users describe tools in many ways: OpenAI ``tools`` (``{"type": "function", "function": {...}}``), the
Responses API's flat ``{"type": "function", "name": ...}``, bare function dicts, the legacy ``functions``
list, Python callables (type hints + docstring) and Pydantic models. :func:`normalize_tools` turns any mix
of them into one list of ``{"type": "function", "function": {"name", "description", "parameters"[,
"strict"]}}`` dicts and validates names; :func:`normalize_tool_choice` maps ``tool_choice`` (or the legacy
``function_call``) to ``(mode, names)`` with mode in ``auto`` / ``none`` / ``required`` / ``named``.

The one non-function tool accepted is ``{"type": "code_interpreter"}`` (Functionary, Llama 3.1): it is kept
as its own dict (``tool["type"] == "code_interpreter"``, see :func:`is_code_interpreter`), takes the name
``python`` (:data:`CODE_INTERPRETER_NAME`) in ``tool_choice``, and is written with a format's ``code``
template (formats/spec.py).

Bad input raises :class:`fcgrammar.errors.SchemaError` with the JSON pointer of the offending value
(``/tools/3/function/name``); a callable whose signature cannot be expressed raises ``TypeError`` naming the
parameter (from :func:`tool_from_callable`; :func:`normalize_tools` re-raises it as ``SchemaError``).
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import decimal
import enum
import inspect
import json
import re
import types
import typing
import uuid
from pathlib import PurePath
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import SchemaError

__all__ = [
    "CODE_INTERPRETER_NAME",
    "NAME_PATTERN",
    "is_code_interpreter",
    "normalize_tool_choice",
    "normalize_tools",
    "parse_docstring",
    "tool_from_callable",
    "tool_from_pydantic",
    "type_to_schema",
]

# OpenAI allows a-z, A-Z, 0-9, underscores and dashes, at most 64 characters; dots are allowed here too
# because BFCL's tool names are dotted (`math.factorial`).
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
_NAME_RE = re.compile(NAME_PATTERN)

_EMPTY_PARAMS = {"type": "object", "properties": {}}

# ============================================================================================ docstrings

_GOOGLE_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments",
                          "kwargs", "other parameters", "attributes"}
_GOOGLE_OTHER_SECTIONS = {"returns", "return", "yields", "yield", "raises", "raise", "except", "exceptions",
                          "examples", "example", "note", "notes", "see also", "todo", "warning", "warnings",
                          "warns", "references", "methods"}
_GOOGLE_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*?)\s*:\s*$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_SPHINX_FIELD = re.compile(r"^:(\w+)((?:\s+[^:]*?)?)\s*:\s*(.*)$")
_SPHINX_PARAM_KINDS = {"param", "parameter", "arg", "argument", "key", "keyword"}
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_][\w, *]*?)\s*(?::\s*(.*))?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(parts: Iterable[str]) -> str:
    """Join description lines: a blank line separates paragraphs, other line breaks become spaces."""
    paras: List[List[str]] = [[]]
    for p in parts:
        p = p.strip()
        if not p:
            if paras[-1]:
                paras.append([])
        else:
            paras[-1].append(p)
    return "\n\n".join(" ".join(p) for p in paras if p)


def _section_body(lines: List[str], i: int, ended: Callable[[int], bool],
                  entry: Callable[[str], Optional[List[str]]]) -> int:
    """Read a section's body from line ``i`` until ``ended(k)``: a line at the body's first indent starts an
    entry (``entry(text)`` gives the list its description lines go to, or None to drop them); deeper and
    blank lines continue it. Returns the index of the line after the section."""
    base: Optional[int] = None
    cur: Optional[List[str]] = None
    while i < len(lines) and not ended(i):
        line = lines[i]
        i += 1
        if not line.strip():
            if cur is not None:
                cur.append("")
            continue
        ind = _indent(line)
        if base is None:
            base = ind
        if ind <= base:
            cur = entry(line.strip())
        elif cur is not None:
            cur.append(line)
    return i


def parse_docstring(doc: Optional[str]) -> Tuple[str, Dict[str, str]]:
    """``(description, {parameter: description})`` from a Google, NumPy or Sphinx/reST docstring.

    The description is the text before the first section (``Args:``, ``Parameters`` + underline,
    ``:param x:`` ...), paragraphs kept, line breaks inside a paragraph joined with spaces.
    """
    if not doc or not doc.strip():
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    desc: List[str] = []
    params: Dict[str, List[str]] = {}
    i, n = 0, len(lines)
    in_desc = True
    while i < n:
        line = lines[i]
        stripped = line.strip()
        # NumPy section: a title line underlined with dashes.
        if i + 1 < n and stripped and _NUMPY_RULE.match(lines[i + 1]) and not _NUMPY_RULE.match(line):
            in_desc = False
            title = stripped.lower()

            def numpy_entry(text: str, title=title) -> Optional[List[str]]:
                m = _NUMPY_ENTRY.match(text)
                if title not in ("parameters", "other parameters", "attributes", "keyword arguments") or not m:
                    return None
                cur: List[str] = []
                for nm in m.group(1).split(","):
                    nm = nm.strip().lstrip("*")
                    if nm:
                        params.setdefault(nm, cur)
                return cur

            i = _section_body(lines, i + 2, lambda k: bool(lines[k].strip()) and k + 1 < n
                              and bool(_NUMPY_RULE.match(lines[k + 1])), numpy_entry)  # up to the next section
            continue
        # Sphinx field list.
        m = _SPHINX_FIELD.match(stripped)
        if m and _indent(line) == 0:
            in_desc = False
            kind, middle, rest = m.group(1).lower(), m.group(2).strip(), m.group(3)
            cur = None
            if kind in _SPHINX_PARAM_KINDS and middle:
                name = middle.split()[-1].lstrip("*")  # `:param int x:` -> x
                cur = params.setdefault(name, [])
                cur.append(rest)
            i += 1
            while i < n and (not lines[i].strip() or _indent(lines[i]) > 0) and not (
                    lines[i].strip() and _SPHINX_FIELD.match(lines[i].strip()) and _indent(lines[i]) == 0):
                if cur is not None:
                    cur.append(lines[i])
                i += 1
            continue
        # Google section.
        g = _GOOGLE_HEADER.match(stripped)
        if g and _indent(line) == 0 and (g.group(1).lower() in _GOOGLE_PARAM_SECTIONS
                                         or g.group(1).lower() in _GOOGLE_OTHER_SECTIONS):
            in_desc = False
            is_params = g.group(1).lower() in _GOOGLE_PARAM_SECTIONS

            def google_entry(text: str, is_params=is_params) -> Optional[List[str]]:
                e = _GOOGLE_ENTRY.match(text)
                if not (is_params and e):
                    return None
                cur = params.setdefault(e.group(1), [])
                cur.append(e.group(3))
                return cur

            i = _section_body(lines, i + 1, lambda k: bool(lines[k].strip()) and _indent(lines[k]) == 0,
                              google_entry)  # up to the next unindented line
            continue
        if in_desc:
            desc.append(line)
        i += 1
    return _join(desc), {k: _join(v) for k, v in params.items() if _join(v)}


# ========================================================================================= type hints

_NoneType = type(None)
_UnionType = getattr(types, "UnionType", None)  # X | Y (3.10+)


def _json_default(v: Any) -> Tuple[bool, Any]:
    """``(ok, value)``: a parameter default as JSON, or ok=False when it has no JSON form."""
    if isinstance(v, enum.Enum):
        v = v.value
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, (frozenset, set)):
        try:
            v = sorted(v)
        except TypeError:
            v = list(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        v = dataclasses.asdict(v)
    try:
        return True, json.loads(json.dumps(v))
    except (TypeError, ValueError):
        return False, None


def _json_type(v: Any) -> Optional[str]:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return None


def _enum_schema(values: Sequence[Any]) -> Dict[str, Any]:
    vals = []
    for v in values:
        ok, j = _json_default(v)
        if not ok:
            raise TypeError(f"enum value {v!r} has no JSON form")
        vals.append(j)
    out: Dict[str, Any] = {}
    kinds = {_json_type(v) for v in vals}
    if None not in kinds:
        if kinds == {"integer", "number"}:
            kinds = {"number"}
        out["type"] = kinds.pop() if len(kinds) == 1 else sorted(kinds)
    out["enum"] = vals
    return out


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__total__") and hasattr(
        tp, "__annotations__")


def _is_pydantic_model(tp: Any) -> bool:
    if not isinstance(tp, type):
        return False
    if hasattr(tp, "model_json_schema") and hasattr(tp, "model_fields"):
        return True
    return hasattr(tp, "__fields__") and callable(getattr(tp, "schema", None)) and any(
        b.__name__ == "BaseModel" for b in tp.__mro__)


class _Builder:
    """Type hints to JSON Schema; named classes (dataclass, TypedDict, Pydantic) referenced recursively land
    in ``$defs``."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.defs: Dict[str, Any] = {}
        self._active: Dict[Any, str] = {}   # classes being built -> $defs name
        self._recursive: set = set()
        self._names: Dict[Any, str] = {}

    # -- $defs bookkeeping
    def _def_name(self, cls: Any) -> str:
        if cls in self._names:
            return self._names[cls]
        base = getattr(cls, "__name__", "Def")
        name, k = base, 1
        while name in self.defs or name in self._names.values():
            k += 1
            name = f"{base}{k}"
        self._names[cls] = name
        return name

    def _named(self, cls: Any, build: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        if cls in self._active:
            self._recursive.add(cls)
            return {"$ref": f"#/$defs/{self._active[cls]}"}
        if cls in self._names and self._names[cls] in self.defs:
            return {"$ref": f"#/$defs/{self._names[cls]}"}
        name = self._def_name(cls)
        self._active[cls] = name
        try:
            schema = build()
        finally:
            del self._active[cls]
        if cls in self._recursive:
            self.defs[name] = schema
            return {"$ref": f"#/$defs/{name}"}
        return schema

    def _merge_defs(self, defs: Dict[str, Any], schema: Dict[str, Any]) -> Dict[str, Any]:
        """Hoist foreign $defs (from a Pydantic schema) into ours, renaming on conflict."""
        renames = {}
        for k, v in defs.items():
            name = k
            j = 1
            while name in self.defs and self.defs[name] != v:
                j += 1
                name = f"{k}{j}"
            renames[k] = name
        if any(k != v for k, v in renames.items()):
            def fix(node):
                if isinstance(node, dict):
                    out = {}
                    for kk, vv in node.items():
                        if kk == "$ref" and isinstance(vv, str) and vv.startswith("#/$defs/"):
                            tail = vv[len("#/$defs/"):]
                            head, _, rest = tail.partition("/")
                            vv = "#/$defs/" + renames.get(head, head) + ("/" + rest if rest else "")
                        out[kk] = fix(vv)
                    return out
                if isinstance(node, list):
                    return [fix(x) for x in node]
                return node
            defs = {k: fix(v) for k, v in defs.items()}
            schema = fix(schema)
        for k, v in defs.items():
            self.defs[renames[k]] = v
        return schema

    # -- the translation
    def schema(self, tp: Any, where: str) -> Dict[str, Any]:
        if tp is inspect.Parameter.empty or tp is Any or tp is object:
            return {}
        if tp is None or tp is _NoneType:
            return {"type": "null"}
        if isinstance(tp, str):
            raise TypeError(f"{where}: unresolved forward reference {tp!r}")
        if isinstance(tp, typing.ForwardRef):
            raise TypeError(f"{where}: unresolved forward reference {tp.__forward_arg__!r}")
        if hasattr(tp, "__supertype__"):  # typing.NewType
            return self.schema(tp.__supertype__, where)
        if isinstance(tp, typing.TypeVar):
            if tp.__bound__ is not None:
                return self.schema(tp.__bound__, where)
            if tp.__constraints__:
                return self._union(tp.__constraints__, where)
            return {}

        origin = typing.get_origin(tp)
        args = typing.get_args(tp)

        if origin is typing.Annotated:
            inner = self.schema(args[0], where)
            for meta in args[1:]:
                if isinstance(meta, str):
                    inner = dict(inner, description=meta)
                elif isinstance(meta, dict):
                    inner = dict(inner, **meta)
                else:
                    desc = getattr(meta, "description", None)  # pydantic.Field(...) / FieldInfo
                    if isinstance(desc, str) and desc:
                        inner = dict(inner, description=desc)
            return inner
        if origin is typing.Literal:
            return _enum_schema(args)
        if origin is typing.Union or (_UnionType is not None and isinstance(tp, _UnionType)):
            return self._union(args, where)
        if origin is typing.ClassVar or origin is getattr(typing, "Final", None):
            return self.schema(args[0], where) if args else {}

        if origin is not None:
            return self._generic(origin, args, where, tp)

        if isinstance(tp, type):
            if issubclass(tp, enum.Enum):
                return self._named(tp, lambda: _enum_schema([m.value for m in tp]))
            if tp is bool:
                return {"type": "boolean"}
            if issubclass(tp, int):
                return {"type": "integer"}
            if issubclass(tp, (float, decimal.Decimal)):
                return {"type": "number"}
            if issubclass(tp, str):
                return {"type": "string"}
            if issubclass(tp, (bytes, bytearray, PurePath)):
                return {"type": "string"}
            if issubclass(tp, _dt.datetime):
                return {"type": "string", "format": "date-time"}
            if issubclass(tp, _dt.date):
                return {"type": "string", "format": "date"}
            if issubclass(tp, _dt.time):
                return {"type": "string", "format": "time"}
            if issubclass(tp, _dt.timedelta):
                return {"type": "string", "format": "duration"}
            if issubclass(tp, uuid.UUID):
                return {"type": "string", "format": "uuid"}
            if _is_pydantic_model(tp):
                return self._pydantic(tp)
            if dataclasses.is_dataclass(tp):
                return self._named(tp, lambda: self._dataclass(tp, where))
            if _is_typeddict(tp):
                return self._named(tp, lambda: self._typeddict(tp, where))
            if issubclass(tp, tuple) and hasattr(tp, "_fields"):  # NamedTuple: an array by position
                hints = typing.get_type_hints(tp)
                return self._tuple([hints.get(f, Any) for f in tp._fields], where)
            if issubclass(tp, (list, set, frozenset)):
                out: Dict[str, Any] = {"type": "array"}
                if issubclass(tp, (set, frozenset)):
                    out["uniqueItems"] = True
                return out
            if issubclass(tp, tuple):
                return {"type": "array"}
            if issubclass(tp, dict):
                return {"type": "object"}
        raise TypeError(f"{where}: type {tp!r} has no JSON Schema translation")

    def _union(self, args: Sequence[Any], where: str) -> Dict[str, Any]:
        subs = []
        for a in args:
            s = self.schema(a, where)
            if s == {}:
                return {}
            if s not in subs:
                subs.append(s)
        if len(subs) == 1:
            return subs[0]
        # Plain types collapse into a type list: {"type": ["string", "null"]} (what strict mode expects).
        if all(set(s) == {"type"} and isinstance(s["type"], str) for s in subs):
            kinds = []
            for s in subs:
                if s["type"] not in kinds:
                    kinds.append(s["type"])
            return {"type": kinds}
        # Optional enum: add null to the enum.
        if len(subs) == 2 and {"type": "null"} in subs:
            other = subs[0] if subs[1] == {"type": "null"} else subs[1]
            if "enum" in other and set(other) <= {"enum", "type"}:
                t = other.get("type")
                out = {"enum": list(other["enum"]) + [None]}
                if t is not None:
                    out["type"] = (list(t) if isinstance(t, list) else [t]) + ["null"]
                return out
        return {"anyOf": subs}

    def _generic(self, origin: Any, args: Tuple[Any, ...], where: str, tp: Any) -> Dict[str, Any]:
        import collections.abc as cabc

        if origin in (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection,
                      set, frozenset, cabc.Set, cabc.MutableSet):
            out: Dict[str, Any] = {"type": "array"}
            if args:
                out["items"] = self.schema(args[0], where)
            if origin in (set, frozenset, cabc.Set, cabc.MutableSet):
                out["uniqueItems"] = True
            return out
        if origin is tuple:
            if not args:
                return {"type": "array"}
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.schema(args[0], where)}
            if args == ((),):  # Tuple[()]
                return {"type": "array", "maxItems": 0}
            return self._tuple(args, where)
        if origin in (dict, cabc.Mapping, cabc.MutableMapping):
            out = {"type": "object"}
            if args:
                key = args[0]
                if key not in (str, Any) and typing.get_origin(key) is not typing.Literal and not (
                        isinstance(key, type) and issubclass(key, (str, enum.Enum))):
                    raise TypeError(f"{where}: JSON object keys are strings, not {key!r}")
                val = self.schema(args[1], where)
                if val != {} or self.strict:
                    out["additionalProperties"] = val
                if typing.get_origin(key) is typing.Literal or (isinstance(key, type) and issubclass(key, enum.Enum)):
                    out["propertyNames"] = self.schema(key, where)
            return out
        if origin is type:
            raise TypeError(f"{where}: type {tp!r} has no JSON Schema translation")
        # A user generic (e.g. a generic dataclass): fall back to its origin.
        return self.schema(origin, where)

    def _tuple(self, items: Sequence[Any], where: str) -> Dict[str, Any]:
        return {"type": "array", "prefixItems": [self.schema(a, where) for a in items],
                "items": False, "minItems": len(items), "maxItems": len(items)}

    def _object(self, cls: Any, fields: List[Tuple[str, Any, bool, Any]], where: str) -> Dict[str, Any]:
        """fields: (name, type, required, default-or-empty)."""
        doc_desc, doc_params = parse_docstring(_own_doc(cls))
        props: Dict[str, Any] = {}
        required: List[str] = []
        for name, tp, req, default in fields:
            s = self.schema(tp, f"{where}: field {name!r} of {cls.__name__}")
            if name in doc_params:
                s = dict(s, description=doc_params[name]) if "$ref" not in s else {
                    "allOf": [s], "description": doc_params[name]}
            if req:
                required.append(name)
            elif default is not inspect.Parameter.empty:
                ok, j = _json_default(default)
                if ok:
                    s = dict(s, default=j)
            props[name] = s
        out: Dict[str, Any] = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        if doc_desc:
            out["description"] = doc_desc
        return out

    def _dataclass(self, cls: Any, where: str) -> Dict[str, Any]:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                fields.append((f.name, hints.get(f.name, Any), False, f.default))
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                try:
                    d = f.default_factory()  # type: ignore[misc]
                except Exception:
                    d = inspect.Parameter.empty
                fields.append((f.name, hints.get(f.name, Any), False, d))
            else:
                fields.append((f.name, hints.get(f.name, Any), True, inspect.Parameter.empty))
        return self._object(cls, fields, where)

    def _typeddict(self, cls: Any, where: str) -> Dict[str, Any]:
        hints = typing.get_type_hints(cls, include_extras=True)
        req_keys = getattr(cls, "__required_keys__", None)
        fields = []
        for name, tp in hints.items():
            # typing.Required / NotRequired wrappers
            req = (name in req_keys) if req_keys is not None else bool(cls.__total__)
            o = typing.get_origin(tp)
            wrapper = getattr(o, "_name", None) if o is not None else None
            if wrapper in ("Required", "NotRequired"):
                # explicit markers win (with postponed annotations __required_keys__ cannot see them)
                req = wrapper == "Required"
                tp = typing.get_args(tp)[0]
            fields.append((name, tp, req, inspect.Parameter.empty))
        return self._object(cls, fields, where)

    def _pydantic(self, cls: Any) -> Dict[str, Any]:
        schema = _pydantic_schema(cls)
        defs = schema.pop("$defs", None) or schema.pop("definitions", None) or {}
        schema = _retarget_refs(schema)
        defs = {k: _retarget_refs(v) for k, v in defs.items()}
        if defs:
            schema = self._merge_defs(defs, schema)
        return schema


def _own_doc(cls: Any) -> Optional[str]:
    doc = cls.__dict__.get("__doc__")
    if not doc:
        return None
    # dataclasses synthesise "Name(a: int, b: str)" when there is no docstring
    if dataclasses.is_dataclass(cls) and re.match(rf"^{re.escape(cls.__name__)}\(.*\)$", doc.strip(), re.S):
        return None
    return doc


def _retarget_refs(node: Any) -> Any:
    """Pydantic v1 writes ``#/definitions/X``; use ``#/$defs/X`` throughout."""
    if isinstance(node, dict):
        return {k: (("#/$defs/" + v[len("#/definitions/"):]) if k == "$ref" and isinstance(v, str)
                    and v.startswith("#/definitions/") else _retarget_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_retarget_refs(x) for x in node]
    return node


def _pydantic_schema(cls: Any) -> Dict[str, Any]:
    if hasattr(cls, "model_json_schema"):
        return copy.deepcopy(cls.model_json_schema())
    return copy.deepcopy(cls.schema())  # pydantic v1


def type_to_schema(tp: Any, *, strict: bool = False) -> Dict[str, Any]:
    """The JSON Schema of one Python type hint (``$defs`` at its root when a class is recursive)."""
    b = _Builder(strict)
    s = b.schema(tp, f"type {tp!r}")
    if b.defs:
        s = dict(s, **{"$defs": b.defs})
    return _strictify(s) if strict else s


# ====================================================================================== strict schemas

def _nullable(s: Dict[str, Any]) -> Dict[str, Any]:
    if s == {}:
        return s
    t = s.get("type")
    if "enum" in s:
        s = dict(s)
        if None not in s["enum"]:
            s["enum"] = list(s["enum"]) + [None]
        if isinstance(t, str):
            s["type"] = [t, "null"]
        elif isinstance(t, list) and "null" not in t:
            s["type"] = t + ["null"]
        return s
    if "const" in s or "$ref" in s or "allOf" in s:
        return {"anyOf": [s, {"type": "null"}]}
    if "anyOf" in s:
        if {"type": "null"} in s["anyOf"]:
            return s
        return dict(s, anyOf=list(s["anyOf"]) + [{"type": "null"}])
    if isinstance(t, str):
        return s if t == "null" else dict(s, type=[t, "null"])
    if isinstance(t, list):
        return s if "null" in t else dict(s, type=t + ["null"])
    return {"anyOf": [s, {"type": "null"}]}


def _strictify(s: Any) -> Any:
    """OpenAI strict form: every object lists all its properties as required (optional ones become
    nullable), forbids other properties, and carries no ``default``."""
    if not isinstance(s, dict):
        return s
    s = {k: v for k, v in s.items() if k != "default"}
    for key in ("items", "additionalProperties", "not", "contains", "propertyNames"):
        if isinstance(s.get(key), dict):
            s[key] = _strictify(s[key])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(s.get(key), list):
            s[key] = [_strictify(x) for x in s[key]]
    for key in ("$defs", "definitions"):
        if isinstance(s.get(key), dict):
            s[key] = {k: _strictify(v) for k, v in s[key].items()}
    is_map = "properties" not in s and isinstance(s.get("additionalProperties"), dict)
    if ("properties" in s or s.get("type") == "object") and not is_map:
        props = s.get("properties") or {}
        req = set(s.get("required") or [])
        newp = {}
        for k, v in props.items():
            v = _strictify(v)
            newp[k] = v if k in req else _nullable(v)
        s["properties"] = newp
        s["required"] = list(newp)
        s["additionalProperties"] = False
    return s


# =========================================================================================== callables

def _check_name(name: Any, pointer: str) -> str:
    if not isinstance(name, str) or not name:
        raise SchemaError(f"tool name must be a non-empty string, got {name!r}", pointer)
    if not _NAME_RE.match(name):
        raise SchemaError(
            f"tool name {name!r} is invalid: use 1 to 64 letters, digits, '_', '.' or '-'", pointer)
    return name


def tool_from_callable(fn: Callable[..., Any], *, name: Optional[str] = None,
                       description: Optional[str] = None, strict: bool = False) -> Dict[str, Any]:
    """An OpenAI tool dict for a Python function: parameters from its type hints, descriptions from its
    docstring (Google, NumPy or Sphinx style).

    Parameters with a default are optional and carry ``"default"``; an unannotated parameter accepts any
    value (``{}``) unless ``strict``. ``*args`` / ``**kwargs`` / positional-only parameters raise
    ``TypeError`` naming the parameter (a tool call passes arguments by name). With ``strict=True`` the
    schema follows OpenAI's strict rules (all properties required, optional ones nullable, no extra
    properties) and the tool carries ``"strict": true``.
    """
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    target = fn
    if isinstance(fn, type):  # a class: its constructor's parameters, its own docstring
        target = fn.__init__
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    tool_name = name or getattr(fn, "__tool_name__", None) or getattr(fn, "__name__", None)
    if tool_name is None and hasattr(fn, "func"):  # functools.partial
        tool_name = getattr(fn.func, "__name__", None)
    if not tool_name or tool_name == "<lambda>":
        raise TypeError(f"cannot name a tool for {fn!r}: pass name=...")
    _check_name_for_callable(tool_name, qual)

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise TypeError(f"cannot read the signature of {qual}: {e}") from None
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as e:
        raise TypeError(f"cannot resolve the type hints of {qual}: {e}") from None

    doc_desc, doc_params = parse_docstring(inspect.getdoc(fn) if not isinstance(fn, type) else _own_doc(fn))
    if isinstance(fn, type) and not doc_params:
        _, doc_params = parse_docstring(inspect.getdoc(fn.__init__))

    b = _Builder(strict)
    props: Dict[str, Any] = {}
    required: List[str] = []
    for pname, p in sig.parameters.items():
        where = f"parameter {pname!r} of {qual}"
        if p.kind is p.VAR_POSITIONAL:
            raise TypeError(f"{where}: *{pname} cannot be a tool parameter (tool calls pass arguments by name)")
        if p.kind is p.VAR_KEYWORD:
            raise TypeError(f"{where}: **{pname} cannot be a tool parameter (its names are unknown)")
        if p.kind is p.POSITIONAL_ONLY:
            raise TypeError(f"{where}: positional-only parameters cannot be passed by name in a tool call")
        ann = hints.get(pname, p.annotation)
        if ann is inspect.Parameter.empty and strict:
            raise TypeError(f"{where}: strict tools need a type annotation on every parameter")
        s = b.schema(ann, where)
        if pname in doc_params:  # the function's own words win over a class docstring
            s = dict(s, description=doc_params[pname]) if "$ref" not in s else {
                "allOf": [s], "description": doc_params[pname]}
        if p.default is inspect.Parameter.empty:
            required.append(pname)
        else:
            ok, j = _json_default(p.default)
            if j is None and ok and s != {}:
                s = _nullable(s)  # `x: int = None`: the Python idiom for an optional value
            if ok:
                s = dict(s, default=j)
        props[pname] = s
    params: Dict[str, Any] = {"type": "object", "properties": props}
    if required:
        params["required"] = required
    if b.defs:
        params["$defs"] = b.defs
    if strict:
        params = _strictify(params)
    func: Dict[str, Any] = {"name": tool_name,
                            "description": description if description is not None else doc_desc,
                            "parameters": params}
    if strict:
        func["strict"] = True
    return {"type": "function", "function": func}


def _check_name_for_callable(name: str, qual: str) -> None:
    if not _NAME_RE.match(name):
        raise TypeError(f"tool name {name!r} of {qual} is invalid: use 1 to 64 letters, digits, '_', '.' or '-'")


# ============================================================================================ pydantic

def tool_from_pydantic(model_cls: Any, *, name: Optional[str] = None, description: Optional[str] = None,
                       strict: Optional[bool] = None) -> Dict[str, Any]:
    """An OpenAI tool dict for a Pydantic model class (v2 ``model_json_schema()``, v1 ``schema()``).

    Name: ``name`` > the class attribute ``__tool_name__`` > ``model_config["tool_name"]`` (v2) >
    ``model_config["title"]`` / v1 ``Config.title`` when it is a valid tool name > the class name.
    Description: ``description`` > the class's own docstring (its summary; ``Args:``/``Attributes:``
    entries fill in fields without a description) > the schema's ``description``.
    ``strict=True`` applies OpenAI's strict rules and sets ``"strict": true``.
    """
    if not _is_pydantic_model(model_cls):
        raise TypeError(f"{model_cls!r} is not a Pydantic model class")
    cfg = getattr(model_cls, "model_config", None)
    cfg = cfg if isinstance(cfg, dict) else {}
    v1_title = getattr(getattr(model_cls, "__config__", None), "title", None)
    tool_name = name or getattr(model_cls, "__tool_name__", None) or cfg.get("tool_name")
    if not tool_name:
        title = cfg.get("title") or v1_title
        tool_name = title if isinstance(title, str) and _NAME_RE.match(title) else model_cls.__name__
    _check_name_for_callable(tool_name, model_cls.__qualname__)

    schema = _pydantic_schema(model_cls)
    schema.pop("title", None)
    schema_desc = schema.pop("description", None)
    if "definitions" in schema and "$defs" not in schema:
        schema["$defs"] = schema.pop("definitions")
    schema = _retarget_refs(schema)
    doc_desc, doc_params = parse_docstring(_own_doc(model_cls))
    for k, v in (schema.get("properties") or {}).items():
        if k in doc_params and isinstance(v, dict) and "description" not in v:
            v["description"] = doc_params[k]
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    if description is None:
        description = doc_desc or (schema_desc if isinstance(schema_desc, str) else "") or ""
    if strict:
        schema = _strictify(schema)
    func: Dict[str, Any] = {"name": tool_name, "description": description, "parameters": schema}
    if strict is not None:
        func["strict"] = bool(strict)
    return {"type": "function", "function": func}


# ======================================================================================= normalize_tools

#: The name under which a ``{"type": "code_interpreter"}`` tool is called (in ``tool_choice`` and in parsed
#: ``tool_calls``, whose ``arguments`` are ``{"code": "..."}``).
CODE_INTERPRETER_NAME = "python"


def is_code_interpreter(tool: Any) -> bool:
    """Whether a normalized tool is the code interpreter (``{"type": "code_interpreter"}``)."""
    return isinstance(tool, dict) and tool.get("type") == "code_interpreter"


def tool_name(tool: Dict[str, Any]) -> str:
    """The name a normalized tool is called by (``python`` for the code interpreter)."""
    return CODE_INTERPRETER_NAME if is_code_interpreter(tool) else tool["function"]["name"]


_SCALARS = (str, int, float, bool, type(None))


def _copy_json(v: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars): several times faster than copy.deepcopy, which
    a tool set of 128 schemas spent milliseconds in. Anything else (tuples, other objects, nesting deeper
    than 200, which is how a cycle shows) goes to copy.deepcopy. A dict or list reached twice is copied
    twice (equal values; only the identity is not kept)."""
    try:
        return _copy_tree(v, 0)
    except (_NotTree, RecursionError):
        return copy.deepcopy(v)


class _NotTree(Exception):
    pass


def _copy_tree(v: Any, depth: int) -> Any:
    t = type(v)
    if t in _SCALARS:
        return v
    if depth > 200 or (t is not dict and t is not list):
        raise _NotTree
    if t is dict:
        return {k: (x if type(x) in _SCALARS else _copy_tree(x, depth + 1)) for k, x in v.items()}
    return [x if type(x) in _SCALARS else _copy_tree(x, depth + 1) for x in v]


def _function_dict(fd: Any, pointer: str) -> Dict[str, Any]:
    """Validate and copy one function description ({"name", "description", "parameters", "strict"})."""
    if not isinstance(fd, dict):
        raise SchemaError(f"a function description must be an object, got {type(fd).__name__}", pointer)
    name = _check_name(fd.get("name"), f"{pointer}/name")
    desc = fd.get("description")
    if desc is None:
        desc = ""
    if not isinstance(desc, str):
        raise SchemaError(f"description of tool {name!r} must be a string, got {type(desc).__name__}",
                          f"{pointer}/description")
    params = fd.get("parameters")
    if params is None:
        params = copy.deepcopy(_EMPTY_PARAMS)
    elif params is True or params == {}:
        params = copy.deepcopy(_EMPTY_PARAMS)
    elif not isinstance(params, dict):
        raise SchemaError(f"parameters of tool {name!r} must be a JSON Schema object, got "
                          f"{type(params).__name__}", f"{pointer}/parameters")
    else:
        params = _copy_json(params)
    out: Dict[str, Any] = {"name": name, "description": desc, "parameters": params}
    if "strict" in fd and fd["strict"] is not None:
        if not isinstance(fd["strict"], bool):
            raise SchemaError(f"strict of tool {name!r} must be true or false, got {fd['strict']!r}",
                              f"{pointer}/strict")
        out["strict"] = fd["strict"]
    for k, v in fd.items():  # keep extra keys (e.g. Hermes templates render "return")
        if k not in out and k not in ("name", "description", "parameters", "strict", "type"):
            out[k] = _copy_json(v)
    return out


def _one_tool(item: Any, pointer: str, legacy: bool) -> Dict[str, Any]:
    if isinstance(item, dict):
        if legacy:
            return {"type": "function", "function": _function_dict(item, pointer)}
        if not legacy and item.get("type") == "code_interpreter":
            return copy.deepcopy(item)
        if "type" in item and item["type"] != "function":
            raise SchemaError(f"tool type {item['type']!r} is not supported (only \"function\" tools)",
                              f"{pointer}/type")
        if "function" in item:
            if item.get("type", "function") != "function":
                raise SchemaError("tool type must be \"function\"", f"{pointer}/type")
            return {"type": "function", "function": _function_dict(item["function"], f"{pointer}/function")}
        if "name" in item:  # bare function dict, or the Responses API's flat {"type": "function", "name": ...}
            return {"type": "function", "function": _function_dict(item, pointer)}
        raise SchemaError("a tool must be {\"type\": \"function\", \"function\": {...}} or a function "
                          "description with a \"name\"", pointer)
    if _is_pydantic_model(item):
        try:
            return tool_from_pydantic(item)
        except TypeError as e:
            raise SchemaError(str(e), pointer) from e
    if callable(item) and not isinstance(item, (str, bytes)):
        try:
            return tool_from_callable(item)
        except TypeError as e:
            raise SchemaError(str(e), pointer) from e
    raise SchemaError(f"cannot make a tool of {type(item).__name__} {item!r:.60}: expected an OpenAI tool "
                      "dict, a function dict, a callable or a Pydantic model class", pointer)


def normalize_tools(tools: Optional[Sequence[Any]] = None,
                    functions: Optional[Sequence[Any]] = None) -> List[Dict[str, Any]]:
    """One list of OpenAI tool dicts from ``tools`` and/or legacy ``functions`` (copies; inputs untouched).

    Items may be OpenAI tools, the Responses API's flat function tools, bare function dicts, callables or
    Pydantic model classes, mixed. Names must be non-empty, unique and match :data:`NAME_PATTERN`;
    missing ``parameters`` become ``{"type": "object", "properties": {}}``. ``{"type": "code_interpreter"}``
    in ``tools`` is kept as such (a copy; :func:`is_code_interpreter`), named ``python`` for the uniqueness
    check. Raises :class:`SchemaError` with a pointer such as ``/tools/3/function/name``.
    """
    out: List[Dict[str, Any]] = []
    seen: Dict[str, str] = {}
    for field, items, legacy in (("tools", tools, False), ("functions", functions, True)):
        if items is None:
            continue
        if isinstance(items, (dict, str, bytes)) or not isinstance(items, (list, tuple)):
            raise SchemaError(f"{field} must be a list, got {type(items).__name__}", f"/{field}")
        for i, item in enumerate(items):
            pointer = f"/{field}/{i}"
            tool = _one_tool(item, pointer, legacy)
            name = tool_name(tool)
            if is_code_interpreter(tool):
                name_ptr = f"{pointer}/type"
            elif isinstance(item, dict) and not legacy and "function" in item:
                name_ptr = f"{pointer}/function/name"
            elif isinstance(item, dict):
                name_ptr = f"{pointer}/name"
            else:
                name_ptr = pointer
            if name in seen:
                raise SchemaError(f"duplicate tool name {name!r} (first defined at {seen[name]})", name_ptr)
            seen[name] = name_ptr
            out.append(tool)
    return out


# ================================================================================== normalize_tool_choice

_MODES = ("auto", "none", "required")


def _tool_names(tools: Any, functions: Any) -> List[str]:
    if tools is not None and isinstance(tools, (list, tuple)) and all(isinstance(t, str) for t in tools):
        return list(tools)  # already a list of names
    return [tool_name(t) for t in normalize_tools(tools, functions)]


def _check_known(name: Any, names: List[str], pointer: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{what}: the function name must be a non-empty string, got {name!r}", pointer)
    if name not in names:
        avail = ", ".join(repr(n) for n in names) if names else "none (no tools were given)"
        raise SchemaError(f"{what} names unknown tool {name!r}; available tools: {avail}", pointer)
    return name


def _named_choice(choice: Dict[str, Any], pointer: str) -> Tuple[Any, str]:
    """The name in {"type": "function", "function": {"name": ..}} or {"type": "function", "name": ..}."""
    fn = choice.get("function")
    if isinstance(fn, dict):
        return fn.get("name"), f"{pointer}/function/name"
    if "name" in choice:
        return choice.get("name"), f"{pointer}/name"
    raise SchemaError("a named tool choice needs {\"function\": {\"name\": ...}} or \"name\"", pointer)


def normalize_tool_choice(tool_choice: Any = None, function_call: Any = None, tools: Any = None,
                          functions: Any = None) -> Tuple[str, List[str]]:
    """``(mode, allowed_names)`` for an OpenAI ``tool_choice`` or legacy ``function_call``.

    mode is ``"auto"`` (text or calls to any of the names), ``"none"`` (text only; names empty),
    ``"required"`` (at least one call to the names) or ``"named"`` (exactly that one function; names is
    ``[name]``). Accepted: ``"auto"`` / ``"none"`` / ``"required"`` (``"any"`` is taken as required),
    ``{"type": "function", "function": {"name": N}}``, ``{"type": "function", "name": N}``,
    ``{"type": "allowed_tools", "allowed_tools": {"mode": "auto"|"required", "tools": [...]}}``, and
    legacy ``function_call`` ``"auto"`` / ``"none"`` / ``{"name": N}``. Default (OpenAI's): ``"none"``
    without tools, else ``"auto"``. ``tools`` / ``functions`` are what :func:`normalize_tools` accepts (or a
    list of names). Unknown names raise :class:`SchemaError` listing the available ones.
    """
    names = _tool_names(tools, functions)
    if tool_choice is not None and function_call is not None:
        raise SchemaError("give tool_choice or the legacy function_call, not both", "/function_call")
    if tool_choice is None and function_call is None:
        return ("auto", names) if names else ("none", [])

    if function_call is not None:
        field, choice = "function_call", function_call
    else:
        field, choice = "tool_choice", tool_choice
    ptr = f"/{field}"

    if isinstance(choice, str):
        mode = "required" if choice == "any" and field == "tool_choice" else choice
        valid = _MODES if field == "tool_choice" else ("auto", "none")
        if mode not in valid:
            raise SchemaError(f"{field} {choice!r} is not one of " + ", ".join(repr(v) for v in valid)
                              + " or a named function", ptr)
        if mode == "none":
            return "none", []
        if not names:
            if mode == "auto":
                return "none", []
            raise SchemaError(f"{field} {choice!r} needs at least one tool, but no tools were given", ptr)
        return mode, names

    if not isinstance(choice, dict):
        raise SchemaError(f"{field} must be a string or an object, got {type(choice).__name__}", ptr)

    if field == "function_call":
        name = _check_known(choice.get("name"), names, f"{ptr}/name", "function_call")
        return "named", [name]

    kind = choice.get("type", "function")
    if kind == "function":
        name, nptr = _named_choice(choice, ptr)
        return "named", [_check_known(name, names, nptr, "tool_choice")]
    if kind == "allowed_tools":
        spec = choice.get("allowed_tools", choice)  # Responses API puts mode/tools at the top level
        if not isinstance(spec, dict):
            raise SchemaError("allowed_tools must be an object with \"mode\" and \"tools\"", f"{ptr}/allowed_tools")
        sptr = f"{ptr}/allowed_tools" if "allowed_tools" in choice else ptr
        mode = spec.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise SchemaError(f"allowed_tools mode {mode!r} is not 'auto' or 'required'", f"{sptr}/mode")
        lst = spec.get("tools")
        if not isinstance(lst, (list, tuple)):
            raise SchemaError("allowed_tools.tools must be a list", f"{sptr}/tools")
        allowed: List[str] = []
        for i, t in enumerate(lst):
            tptr = f"{sptr}/tools/{i}"
            if not isinstance(t, dict):
                raise SchemaError("each allowed tool must be {\"type\": \"function\", ...}", tptr)
            if t.get("type") == "code_interpreter":
                name = _check_known(CODE_INTERPRETER_NAME, names, f"{tptr}/type", "allowed_tools")
                if name not in allowed:
                    allowed.append(name)
                continue
            if t.get("type", "function") != "function":
                raise SchemaError(f"allowed tool type {t.get('type')!r} is not supported (only \"function\")",
                                  f"{tptr}/type")
            name, nptr = _named_choice(t, tptr)
            name = _check_known(name, names, nptr, "allowed_tools")
            if name not in allowed:
                allowed.append(name)
        if not allowed:
            if mode == "required":
                raise SchemaError("allowed_tools with mode 'required' lists no tools", f"{sptr}/tools")
            return "none", []
        return mode, allowed
    raise SchemaError(f"tool_choice type {kind!r} is not supported (use 'function' or 'allowed_tools')",
                      f"{ptr}/type")
