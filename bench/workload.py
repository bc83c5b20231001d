"""BFCL v3 workload for the fcgrammar benchmarks.

Builds, for each BFCL entry, the JSON Schema of one call object

    {"name": <const tool name>, "arguments": <tool parameters>}

(``anyOf`` over the entry's tools when it has more than one), converted from
BFCL's dialect ("dict"/"float"/"tuple"/"any") to standard JSON Schema, and the
gold call text teacher-forced through every engine.  See docs/benchmarks.md.

Only the standard library is needed here, except ``tokenizers`` (gold
tokenization) and, optionally, ``jsonschema`` (gold validation).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_CATEGORIES = ("simple", "multiple", "live_simple", "live_multiple")


def default_data_dir() -> str:
    """Locate shared/data: $FCG_DATA_DIR, ../shared/data, /work/shared/data."""
    env = os.environ.get("FCG_DATA_DIR")
    cands = [env] if env else []
    cands += [
        os.path.join(REPO_ROOT, "shared", "data"),
        os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"),
        "/work/shared/data",
    ]
    for c in cands:
        if c and os.path.isdir(os.path.join(c, "function-calling", "bfcl", "v3")):
            return c
    raise FileNotFoundError(
        "BFCL data not found; set FCG_DATA_DIR to the shared/data folder (tried: %s)"
        % ", ".join(c for c in cands if c))


def bfcl_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "function-calling", "bfcl", "v3")


def llama31_tokenizer_path(data_dir: str) -> str:
    return os.path.join(data_dir, "tokenizers", "llama3.1", "tokenizer.json")


# Llama 3.1: <|eot_id|> is the end-of-turn token of the instruct models.
LLAMA31_EOS_ID = 128009


# --------------------------------------------------------------------------
# BFCL dialect -> standard JSON Schema
# --------------------------------------------------------------------------

_TYPE_MAP = {"dict": "object", "float": "number", "tuple": "array"}


def convert_bfcl_schema(s: Any, strict_objects: bool = True) -> Dict[str, Any]:
    """Convert one BFCL parameter schema to standard JSON Schema.

    Keeps ``type`` (mapped: dict->object, float->number, tuple->array,
    any->no type), ``properties``, ``required``, ``enum`` and ``items``; drops
    everything else (description, default, optional, format, maximum, ...).

    With ``strict_objects`` (default) every object that lists ``properties``
    gets ``"additionalProperties": false`` and every object without
    ``properties`` gets ``"additionalProperties": true``, so that engines with
    different defaults (xgrammar's strict_mode vs. JSON Schema semantics in
    llguidance/outlines) all see the same language.
    """
    if not isinstance(s, dict):
        return {}
    out: Dict[str, Any] = {}
    t = s.get("type")
    if isinstance(t, str):
        if t == "any":
            t = None
        else:
            t = _TYPE_MAP.get(t, t)
    elif isinstance(t, list):
        t = [_TYPE_MAP.get(x, x) for x in t if x != "any"] or None
    if t is not None:
        out["type"] = t
    if "enum" in s and isinstance(s["enum"], list):
        out["enum"] = list(s["enum"])
    if isinstance(s.get("properties"), dict):
        out["properties"] = {k: convert_bfcl_schema(v, strict_objects)
                             for k, v in s["properties"].items()}
    if isinstance(s.get("required"), list):
        req = [r for r in s["required"] if isinstance(r, str)]
        if "properties" in out:
            # a required name with no property schema cannot be generated
            # under additionalProperties:false; BFCL has none, but be safe
            req = [r for r in req if r in out["properties"]]
        out["required"] = req
    if "items" in s:
        it = s["items"]
        if isinstance(it, list):  # tuple-style items
            out["prefixItems"] = [convert_bfcl_schema(x, strict_objects) for x in it]
        else:
            out["items"] = convert_bfcl_schema(it, strict_objects)
    if strict_objects and out.get("type") == "object":
        out["additionalProperties"] = not bool(out.get("properties"))
    return out


def tool_call_schema(tool: Dict[str, Any], strict_objects: bool = True) -> Dict[str, Any]:
    params = convert_bfcl_schema(tool.get("parameters") or {"type": "dict", "properties": {}},
                                 strict_objects)
    out: Dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"const": tool["name"]},
            "arguments": params,
        },
        "required": ["name", "arguments"],
    }
    if strict_objects:
        out["additionalProperties"] = False
    return out


def call_schema(tools: List[Dict[str, Any]], strict_objects: bool = True) -> Dict[str, Any]:
    """Schema of one call object over ``tools`` (anyOf when more than one)."""
    branches = [tool_call_schema(t, strict_objects) for t in tools]
    if len(branches) == 1:
        return branches[0]
    return {"anyOf": branches}


# --------------------------------------------------------------------------
# Gold call from BFCL possible answers
# --------------------------------------------------------------------------

def _is_possible_answer_dict(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, list) for x in v.values())


def _first_choice(options: Any) -> Tuple[bool, Any]:
    """(present, value) for a BFCL list of acceptable values."""
    if not isinstance(options, list):
        return True, options
    if not options:
        return False, None
    first = options[0]
    if first == "":  # "" first == optional parameter left out
        return False, None
    return True, first


def _gold_value(v: Any, schema: Dict[str, Any]) -> Any:
    if isinstance(v, dict) and schema.get("type") == "object" and schema.get("properties") \
            and _is_possible_answer_dict(v):
        return _gold_object(v, schema)
    if isinstance(v, list) and isinstance(schema.get("items"), dict):
        return [_gold_value(x, schema["items"]) for x in v]
    return v


def _gold_object(answers: Dict[str, Any], schema: Dict[str, Any]) -> Dict[str, Any]:
    props = schema.get("properties") or {}
    vals: Dict[str, Any] = {}
    for k, opts in answers.items():
        present, val = _first_choice(opts)
        if present:
            vals[k] = _gold_value(val, props.get(k, {}))
    # Serialize in schema property order (xgrammar/llguidance/outlines fix
    # the property order to the schema's); unknown keys go last.
    order = {k: i for i, k in enumerate(props)}
    return {k: vals[k] for k in sorted(vals, key=lambda k: (order.get(k, len(order)), k))}


def gold_call(entry_tools: List[Dict[str, Any]], ground_truth: List[Dict[str, Any]],
              strict_objects: bool = True) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(call object, schema of the called tool) for the first ground-truth call."""
    gt = ground_truth[0]
    (fname, answers), = gt.items()
    tool = next((t for t in entry_tools if t["name"] == fname), None)
    if tool is None:
        # a few BFCL answers name the tool without its namespace
        # (simple_363: "find_closest" for "restaurant_search.find_closest")
        cands = [t for t in entry_tools
                 if t["name"].endswith("." + fname) or t["name"].replace(".", "_") == fname]
        if len(cands) == 1:
            tool = cands[0]
            fname = tool["name"]
    if tool is None:
        raise KeyError("gold function %r not among the entry's tools" % fname)
    params = convert_bfcl_schema(tool.get("parameters") or {}, strict_objects)
    return {"name": fname, "arguments": _gold_object(answers, params)}, params


def serialize_gold(call: Dict[str, Any], ensure_ascii: bool = True) -> str:
    return json.dumps(call, separators=(",", ":"), ensure_ascii=ensure_ascii)


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    category: str
    n_tools: int
    schema: Dict[str, Any]
    schema_str: str
    gold_text: str
    tokens: List[int] = field(default_factory=list)
    gold_valid: Optional[bool] = None   # None: jsonschema not installed
    gold_error: str = ""


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _stride_sample(items: List[Any], limit: Optional[int]) -> List[Any]:
    """Evenly spaced deterministic sample (BFCL live files group related
    entries that share one tool set; taking the first N would repeat it)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    step = len(items) / float(limit)
    return [items[int(i * step)] for i in range(limit)]


def load_cases(data_dir: str, categories: Iterable[str], limit: Optional[int],
               strict_objects: bool = True, ensure_ascii: bool = True) -> List[Case]:
    d = bfcl_dir(data_dir)
    try:
        import jsonschema  # type: ignore
    except Exception:  # pragma: no cover
        jsonschema = None
    cases: List[Case] = []
    for cat in categories:
        entries = read_jsonl(os.path.join(d, "BFCL_v3_%s.json" % cat))
        answers = {a["id"]: a for a in read_jsonl(os.path.join(d, "possible_answer", "BFCL_v3_%s.json" % cat))}
        entries = [e for e in entries if e["id"] in answers]
        for e in _stride_sample(entries, limit):
            tools = e["function"]
            schema = call_schema(tools, strict_objects)
            try:
                call, _ = gold_call(tools, answers[e["id"]]["ground_truth"], strict_objects)
            except (KeyError, ValueError) as ex:
                cases.append(Case(id=e["id"], category=cat, n_tools=len(tools), schema=schema,
                                  schema_str=json.dumps(schema), gold_text="",
                                  gold_valid=False, gold_error="no gold: %s" % ex))
                continue
            c = Case(id=e["id"], category=cat, n_tools=len(tools), schema=schema,
                     schema_str=json.dumps(schema), gold_text=serialize_gold(call, ensure_ascii))
            if jsonschema is not None:
                try:
                    jsonschema.validate(json.loads(c.gold_text), schema)
                    c.gold_valid = True
                except jsonschema.ValidationError as ex:
                    c.gold_valid = False
                    c.gold_error = ex.message[:200]
            cases.append(c)
    return cases


def tokenize_cases(cases: List[Case], tokenizer_json: str) -> None:
    from tokenizers import Tokenizer  # type: ignore
    tok = Tokenizer.from_file(tokenizer_json)
    for c in cases:
        if not c.gold_text:
            continue
        c.tokens = tok.encode(c.gold_text, add_special_tokens=False).ids


# --------------------------------------------------------------------------
# Tool pool for the compile-vs-number-of-tools scaling run
# --------------------------------------------------------------------------

def tool_pool(data_dir: str, categories: Iterable[str] = DEFAULT_CATEGORIES) -> List[Dict[str, Any]]:
    """Distinct (by name) BFCL tools in file order."""
    d = bfcl_dir(data_dir)
    seen = set()
    pool: List[Dict[str, Any]] = []
    for cat in categories:
        for e in read_jsonl(os.path.join(d, "BFCL_v3_%s.json" % cat)):
            for t in e["function"]:
                if t["name"] in seen:
                    continue
                seen.add(t["name"])
                pool.append(t)
    return pool


def scaling_tool_sets(pool: List[Dict[str, Any]], n: int, reps: int) -> List[List[Dict[str, Any]]]:
    """``reps`` tool sets of ``n`` distinct tools, from evenly spaced
    (wrapping) windows of the pool."""
    out = []
    if not pool:
        return out
    for r in range(reps):
        start = (r * len(pool)) // max(reps, 1)
        out.append([pool[(start + i) % len(pool)] for i in range(min(n, len(pool)))])
    return out
