"""BFCL loading for the tests: tool sets, gold calls, and an independent BFCL-to-JSON-Schema oracle.

The oracle (``to_standard_schema``) is deliberately written apart from fcgrammar's own ``compat="bfcl"``
handling so that jsonschema validation of gold calls does not trust the code under test.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

# Categories whose possible answers are calls in dict form ({"name": {"param": [options]}}).
V3 = ["simple", "multiple", "parallel", "parallel_multiple", "java", "javascript", "live_simple",
      "live_multiple", "live_parallel", "live_parallel_multiple"]
V4 = ["simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
      "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"]

_TYPES = {"dict": "object", "float": "number", "double": "number", "tuple": "array", "list": "array",
          "Array": "array", "ArrayList": "array", "HashMap": "object", "String": "string", "str": "string",
          "char": "string", "Boolean": "boolean", "bool": "boolean", "long": "integer", "int": "integer",
          "integer": "integer", "number": "number", "string": "string", "boolean": "boolean", "array": "array",
          "object": "object", "null": "null"}


def to_standard_schema(s: Any) -> Any:
    """BFCL's dialect to JSON Schema (test oracle)."""
    if isinstance(s, list):
        return [to_standard_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k == "type" and isinstance(v, str):
            if v in ("any", ""):
                continue
            out[k] = _TYPES.get(v, v)
        elif k in ("properties", "$defs", "definitions") and isinstance(v, dict):
            out[k] = {pk: to_standard_schema(pv) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
            out[k] = to_standard_schema(v)
        else:
            out[k] = v
    return out


def call_schema(functions: List[Dict[str, Any]], standard: bool) -> Dict[str, Any]:
    branches = []
    for f in functions:
        params = f.get("parameters") or {"type": "dict", "properties": {}}
        if standard:
            params = to_standard_schema(params)
        branches.append({"type": "object", "properties": {"name": {"const": f["name"]}, "arguments": params},
                         "required": ["name", "arguments"], "additionalProperties": False})
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def first_option(v: Any) -> Any:
    """The first possible answer; nested dicts hold option lists per key too."""
    if isinstance(v, dict):
        return {k: first_option(o[0]) if isinstance(o, list) and o else first_option(o)
                for k, o in v.items() if not (isinstance(o, list) and o and o[0] == "")}
    return v


def gold_calls(answer: List[Dict[str, Dict[str, List[Any]]]]) -> Iterator[Dict[str, Any]]:
    for call in answer:
        for name, params in call.items():
            args = {}
            for p, options in params.items():
                if not options or options[0] == "":
                    continue  # optional parameter left out
                args[p] = first_option(options[0])
            yield {"name": name, "arguments": args}


def schema_order(value: Any, schema: Any) -> Any:
    """``value`` with object members in the schema's ``properties`` order (the order fcgrammar emits by
    default; BFCL's possible answers list them in another order now and then), undeclared ones last."""
    if isinstance(value, dict) and isinstance(schema, dict):
        props = schema.get("properties") or {}
        keys = [k for k in props if k in value] + [k for k in value if k not in props]
        return {k: schema_order(value[k], props.get(k, {})) for k in keys}
    if isinstance(value, list) and isinstance(schema, dict) and isinstance(schema.get("items"), dict):
        return [schema_order(v, schema["items"]) for v in value]
    return value


def ordered_call(call: Dict[str, Any], functions: List[Dict[str, Any]]) -> Dict[str, Any]:
    for f in functions:
        if f["name"] == call["name"]:
            return {"name": call["name"], "arguments": schema_order(call["arguments"], f.get("parameters") or {})}
    return call


def load(data_dir: Path, version: str, category: str) -> List[Tuple[str, List[dict], List[dict]]]:
    """(id, functions, gold calls) for one BFCL category file."""
    base = data_dir / "function-calling" / "bfcl" / version
    qf = base / f"BFCL_{version}_{category}.json"
    af = base / "possible_answer" / f"BFCL_{version}_{category}.json"
    answers = {}
    for line in af.read_text().splitlines():
        if line.strip():
            e = json.loads(line)
            answers[e["id"]] = e["ground_truth"]
    out = []
    for line in qf.read_text().splitlines():
        if not line.strip():
            continue
        e = json.loads(line)
        if e["id"] in answers:
            out.append((e["id"], e["function"], list(gold_calls(answers[e["id"]]))))
    return out
