"""JSONSchemaBench and MaskBench (guidance-ai/jsonschemabench, in ../shared/data/jsonschemabench) against the compiler.

**MaskBench** subsets carry instances marked valid or invalid: each schema is compiled (``any_order``, the
JSON Schema semantics; schema order where that exceeds its limit) and every instance, serialized with compact
``json.dumps`` in both ``ensure_ascii`` spellings, must be accepted iff it is valid. Counted per subset as in
the JSON-Schema-Test-Suite test: ``pass``, ``fail_over`` (valid rejected), ``fail_under`` (invalid accepted),
``unsupported`` (the schema raised SchemaError/LimitError).

**JSONSchemaBench** schemas (real-world, GitHub and Glaive) have no instances. Each one must compile or raise
a typed error (SchemaError/LimitError, or GrammarError when no instance exists), and a compiled one is walked
by an adversarial sampler: a vocabulary of the 256 single bytes plus a stop token, a uniform choice among the
allowed ones, a token budget of the fewest bytes to finish plus 300. The output must parse and validate with
``jsonschema`` under the schema's own draft. Counted per subset: ``compiled``, ``valid``, ``invalid``,
``duplicate_keys`` (the output repeats a key of an open object: additional keys are not checked against each
other, a documented departure; such an output is not judged further), ``unsupported``, ``empty``.

Both write their counts to a committed ratchet (``tests/ratchet/maskbench.json``, ``jsonschemabench.json``);
doing worse on a subset fails. Regenerate after a deliberate change with

    FCGRAMMAR_UPDATE_RATCHET=1 pytest tests/test_jsonschemabench.py
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jsonschema
import pytest

import fcgrammar as fcg
from fcgrammar.errors import GrammarError, LimitError, SchemaError

import ratchets
from conftest import data_path
from walks import byte_vocabulary, random_walk

_HERE = Path(__file__).resolve().parent
MASKBENCH_RATCHET = _HERE / "ratchet" / "maskbench.json"
JSB_RATCHET = _HERE / "ratchet" / "jsonschemabench.json"
MASKBENCH_SUBSETS = ("BFCL_java", "BFCL_javascript", "BFCL_multiple", "BFCL_parallel", "BFCL_parallel_multiple",
                     "BFCL_simple", "BFCL_sql", "Handwritten", "JME", "MCPspec", "Synthesized")
JSB_SUBSETS = ("Github_trivial", "Github_easy", "Github_medium", "Glaiveai2K")
WALK_SLACK = 300  # bytes allowed beyond the fewest that finish the instance


def _rows(rel: str):
    with open(data_path(rel), encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


# ------------------------------------------------------------------------------------------------ MaskBench

def _maskbench_subset(name: str) -> dict:
    counts = {"pass": 0, "fail_over": 0, "fail_under": 0, "unsupported": 0}
    details = []
    for row in _rows(f"jsonschemabench/maskbench/{name}.jsonl"):
        entry = json.loads(row["maskbench_json"])
        ratchets.judge_group(entry["schema"], entry["tests"], {"any_order": True}, counts, details, row["unique_id"])
    return {"counts": counts, "details": details}


@pytest.fixture(scope="module")
def maskbench():
    return {"any_order": {name: _maskbench_subset(name) for name in MASKBENCH_SUBSETS}}


def test_maskbench_ratchet(maskbench):
    ratchets.check(MASKBENCH_RATCHET, maskbench, better=("pass",), worse=("fail_over", "fail_under"),
                   comment="MaskBench (jsonschemabench/maskbench) results per subset, see "
                           "tests/test_jsonschemabench.py. Regenerate: "
                           "FCGRAMMAR_UPDATE_RATCHET=1 pytest tests/test_jsonschemabench.py",
                   test_file="tests/test_jsonschemabench.py")


def test_maskbench_never_accepts_an_invalid_instance(maskbench):
    bad = {n: r["details"] for n, r in maskbench["any_order"].items() if r["counts"]["fail_under"]}
    assert not bad, f"invalid MaskBench instances accepted: {bad}"


# ------------------------------------------------------------------------------------ JSONSchemaBench walks

def _ecma_whitespace(pattern: str) -> str:
    r"""The pattern with ECMA-262's ``\s`` (which has U+FEFF) in place of Python's (which has not).

    ``pattern`` is an ECMA-262 regular expression and the compiler reads it so; jsonschema matches it with
    Python's ``re``. Elsewhere Python's classes are the wider ones (``\d``, ``\w``, ``.``), which cannot turn
    a valid output into an invalid one."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            esc = pattern[i:i + 2]
            out.append(("\\s\ufeff" if in_class else "[\\s\ufeff]") if esc == "\\s" else esc)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


def _ecma_schema(node):
    """The schema with every ``pattern`` and ``patternProperties`` key read by _ecma_whitespace (for the
    oracle only; ``additionalProperties`` consults the same keys)."""
    if isinstance(node, list):
        return [_ecma_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "pattern" and isinstance(v, str):
            out[k] = _ecma_whitespace(v)
        elif k == "patternProperties" and isinstance(v, dict):
            out[k] = {_ecma_whitespace(p): _ecma_schema(sub) for p, sub in v.items()}
        else:
            out[k] = _ecma_schema(v)
    return out


def _validator(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(_ecma_schema(schema))


def _no_duplicates(pairs):
    keys = [k for k, _v in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey()
    return dict(pairs)


class _DuplicateKey(Exception):
    pass


@pytest.fixture(scope="module")
def byte_compiler():
    return fcg.Compiler(byte_vocabulary())


def _walk(compiler, schema, rng) -> bytes:
    grammar = compiler.compile_json_schema(schema)
    need = fcg.Matcher(grammar).min_tokens_to_finish
    m = fcg.Matcher(grammar, max_tokens=need + WALK_SLACK)
    out = bytes(t for t in random_walk(m, rng, compiler.vocab.size) if t < 256)
    assert m.is_accepting() and len(out) <= need + WALK_SLACK  # the budget counts the tokens before the stop
    return out


def _jsb_subset(compiler, name: str) -> dict:
    counts = {"compiled": 0, "valid": 0, "invalid": 0, "duplicate_keys": 0, "unsupported": 0, "empty": 0}
    details = []
    for row in _rows(f"jsonschemabench/{name}.jsonl"):
        uid, schema = row["unique_id"], json.loads(row["json_schema"])
        rng = random.Random(uid)
        try:
            text = _walk(compiler, schema, rng)
        except (SchemaError, LimitError):
            counts["unsupported"] += 1
            continue
        except GrammarError as e:
            assert "empty" in str(e), f"{uid}: {e}"
            counts["empty"] += 1
            continue
        counts["compiled"] += 1
        try:
            instance = json.loads(text, object_pairs_hook=_no_duplicates)
        except _DuplicateKey:
            counts["duplicate_keys"] += 1
            continue
        error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(instance))
        if error is None:
            counts["valid"] += 1
        else:
            counts["invalid"] += 1
            details.append(f"{uid}: {error.message[:160]} at {error.json_path}: {text[:160]!r}")
    return {"counts": counts, "details": details}


@pytest.fixture(scope="module")
def jsonschemabench(byte_compiler):
    return {"walks": {name: _jsb_subset(byte_compiler, name) for name in JSB_SUBSETS}}


def test_jsonschemabench_ratchet(jsonschemabench):
    ratchets.check(JSB_RATCHET, jsonschemabench, better=("compiled", "valid"), worse=("invalid", "duplicate_keys"),
                   comment="JSONSchemaBench: compiled schemas and adversarial byte-level walks per subset, see "
                           "tests/test_jsonschemabench.py. Regenerate: "
                           "FCGRAMMAR_UPDATE_RATCHET=1 pytest tests/test_jsonschemabench.py",
                   test_file="tests/test_jsonschemabench.py")


def test_jsonschemabench_walks_validate(jsonschemabench):
    bad = {n: r["details"] for n, r in jsonschemabench["walks"].items() if r["counts"]["invalid"]}
    assert not bad, f"generated instances that jsonschema rejects: {bad}"


def test_ecma_whitespace_oracle():
    assert re.fullmatch(_ecma_whitespace(r"^\s*a[\s-]+\S$"), "\ufeff a\ufeff-b")
    assert _ecma_whitespace(r"\\s[\]\s]") == "\\\\s[\\]\\s\ufeff]"
    s = _ecma_schema({"properties": {"pattern": {"pattern": "\\s"}}, "patternProperties": {"^\\s": {}}})
    assert s == {"properties": {"pattern": {"pattern": "[\\s\ufeff]"}}, "patternProperties": {"^[\\s\ufeff]": {}}}
