"""Tool-call formats: every preset × BFCL gold calls × the family's real tokenizer, tool_choice semantics,
adversarial random walks that must parse into valid calls, and the streaming parser.

Each preset runs on the tokenizer of its family (tests/conftest.py TOKENIZERS); special tokens a family's
tokenizer has but the shared file lacks (Functionary v1/v2's added tokens, Mistral's [TOOL_CALLS], harmony's
channel tokens) are appended as special tokens, the way those models extended their base vocabularies.
"""
from __future__ import annotations

import json
import os
import random
from decimal import Decimal
import zlib

import jsonschema
import numpy as np
import pytest

import fcgrammar as fcg
from fcgrammar.render import render
from fcgrammar.seed_tools import SEED_TOOLS

from bfcl_data import load, ordered_call, to_standard_schema
from conftest import DATA_DIR, TOKENIZERS, data_path
from families import FAMILY, family_vocabulary
from walks import random_walk

PRESETS = fcg.formats.names()

_VOCABS = {}


def family_vocab(preset):
    base_name, extra = FAMILY[preset]
    key = (base_name, tuple(extra))
    if key not in _VOCABS:
        base = fcg.Vocabulary.from_tokenizer_json(data_path(TOKENIZERS[base_name]))
        if base.encode("x") is None:
            pytest.skip(f"no encoder for {base_name}")
        vocab = family_vocabulary(base, extra, base_name)
        _VOCABS[key] = (vocab, fcg.Compiler(vocab), base.encode)
    return _VOCABS[key]


def test_presets_listed_with_descriptions():
    names = [f.name for f in fcg.formats.list()]
    assert names == list(FAMILY)  # every preset the issue names, in order
    for f in fcg.formats.list():
        assert f.description and f.name in str(f)


# ------------------------------------------------------------------------------------ BFCL gold calls
CATEGORIES = [("v3", "simple", 12), ("v3", "multiple", 8), ("v3", "parallel", 8), ("v3", "parallel_multiple", 6),
              ("v3", "live_simple", 8), ("v3", "live_multiple", 6), ("v3", "live_parallel", 4)]


@pytest.fixture(scope="module")
def bfcl_cases():
    data_path("function-calling/bfcl/v3/BFCL_v3_simple.json")
    out = []
    for version, cat, n in CATEGORIES:
        got = 0
        for eid, functions, calls in load(DATA_DIR, version, cat):
            ok = True
            for c in calls:
                f = next((f for f in functions if f["name"] == c["name"]), None)
                try:
                    jsonschema.validate(c["arguments"], to_standard_schema(f.get("parameters") or {}))
                except (jsonschema.ValidationError, jsonschema.SchemaError, TypeError):
                    ok = False
            if not ok:
                continue  # gold calls that fail their own schema are tested in test_bfcl.py
            out.append((eid, functions, [ordered_call(c, functions) for c in calls]))
            got += 1
            if got >= n:
                break
    return out


def _message(calls, content=None):
    return {"role": "assistant", "content": content, "reasoning_content": "The user wants a call.",
            "tool_calls": [{"id": "abcDEF123", "type": "function",
                            "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                           for c in calls]}


def _accepts(grammar, ids):
    m = fcg.Matcher(grammar)
    return m.accept_tokens(ids) and m.is_terminated()


def _same_calls(msg, calls):
    got = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in msg.get("tool_calls", [])]
    return got == [(c["name"], c["arguments"]) for c in calls]


@pytest.mark.parametrize("preset", PRESETS)
def test_bfcl_gold_calls_in_every_format(bfcl_cases, preset):
    vocab, compiler, encode = family_vocab(preset)
    fmt = fcg.formats.get(preset)
    checked = 0
    for eid, functions, calls in bfcl_cases:
        if len(calls) > 1 and not fmt.parallel:
            continue
        choices = ["auto", "required"]
        if len({c["name"] for c in calls}) == 1:
            choices.append({"type": "function", "function": {"name": calls[0]["name"]}})
        for choice in choices:
            g = compiler.compile_tools(functions, format=preset, tool_choice=choice, compat="bfcl")
            ids = render(g, _message(calls), encode=encode)
            assert _accepts(g, ids), (eid, preset, choice, render(g, _message(calls), encode=str))
            msg = fcg.parse(g, ids)
            assert _same_calls(msg, calls), (eid, preset, msg)
            checked += 1
    assert checked > 20


# ------------------------------------------------------------------------------------ tool_choice
WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
           {"type": "function", "function": {"name": "get_weather_hourly", "parameters": {
               "type": "object", "properties": {"city": {"type": "string"}, "hours": {"type": "integer"}},
               "required": ["city", "hours"]}}},
           {"type": "function", "function": {"name": "math.factorial", "parameters": {
               "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}]
CALL_A = {"name": "get_weather", "arguments": {"city": "Paris"}}
CALL_B = {"name": "get_weather_hourly", "arguments": {"city": "Oslo", "hours": 3}}
CALL_C = {"name": "math.factorial", "arguments": {"n": 5}}


def _trigger_texts(g):
    """The strings that start a call in this format, as text."""
    rf = g.tool_turn.resolved
    out = set()
    for fname in ("calls_begin", "call"):
        for pieces in rf.templates[fname]:
            for k, v in pieces:
                if k == "text" and v.strip() and fname == "calls_begin":
                    out.add(v)
                if k == "special":
                    out.add(rf.special_text[v])
                if k in ("text", "special"):
                    break
    fmt = rf.fmt
    out.update(fmt.text_forbid or ())
    return {t for t in out if t.strip()}


@pytest.mark.parametrize("preset", PRESETS)
def test_tool_choice_semantics(preset):
    vocab, compiler, encode = family_vocab(preset)
    fmt = fcg.formats.get(preset)
    g_auto = compiler.compile_tools(WEATHER, format=preset)
    g_none = compiler.compile_tools(WEATHER, format=preset, tool_choice="none")
    g_req = compiler.compile_tools(WEATHER, format=preset, tool_choice="required")
    g_named = compiler.compile_tools(WEATHER, format=preset,
                                     tool_choice={"type": "function", "function": {"name": "get_weather"}})
    g_single = compiler.compile_tools(WEATHER, format=preset, parallel_tool_calls=False)
    text_msg = {"role": "assistant", "content": "It is sunny.", "reasoning_content": "Just answer."}
    text_ids = render(g_auto, text_msg, encode=encode)
    assert _accepts(g_auto, text_ids) and _accepts(g_none, text_ids)
    assert fcg.parse(g_none, text_ids)["content"] == "It is sunny."
    if fmt.reasoning:
        assert fcg.parse(g_none, text_ids)["reasoning_content"] == "Just answer."
    assert not _accepts(g_req, text_ids) and not _accepts(g_named, text_ids)  # required: a text-only turn is out
    # names that are prefixes of one another, dotted names
    for call in (CALL_A, CALL_B, CALL_C):
        ids = render(g_auto, _message([call]), encode=encode)
        assert _accepts(g_auto, ids) and _accepts(g_req, ids) and _accepts(g_single, ids)
        assert not _accepts(g_none, ids)
        assert _same_calls(fcg.parse(g_auto, ids), [call])
        assert _accepts(g_named, ids) == (call["name"] == "get_weather")
    if fmt.parallel:
        two = render(g_auto, _message([CALL_A, CALL_B]), encode=encode)
        assert _accepts(g_auto, two) and _same_calls(fcg.parse(g_auto, two), [CALL_A, CALL_B])
        assert not _accepts(g_single, two)  # parallel_tool_calls=False: at most one call
    # none: the trigger never appears, neither as a special token nor spelled out in text
    # (families that never mix text and calls only read a call at the start of the turn)
    lead_text = "Sure: " if fmt.mixes_text else ""
    text_at_start = all(t.startswith("$text") for t in fmt.alts("text"))
    for trig in _trigger_texts(g_auto):
        if not text_at_start:  # e.g. Empower's '<c>text': after '<c>' nothing can start a call
            m = fcg.Matcher(g_none)
            body = encode(trig)
            assert m.validate_tokens(body) < len(body), (preset, trig)
            continue
        m = fcg.Matcher(g_none)
        prefix = render(g_none, {"role": "assistant", "content": lead_text, "reasoning_content": "No."},
                        encode=encode)
        rf = g_none.tool_turn.resolved
        lead = [t for t in prefix if t not in rf.end_text]
        assert m.accept_tokens(lead)
        body = encode(trig)
        assert m.validate_tokens(body) < len(body), (preset, trig)
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    m = fcg.Matcher(g_none)
    m.fill_next_token_bitmask(mask)
    allowed = set(np.flatnonzero(np.unpackbits(mask[0].view(np.uint8), bitorder="little")).tolist())
    rf = g_auto.tool_turn.resolved
    for pieces in rf.templates["calls_begin"] + rf.templates["call"]:
        for k, v in pieces:
            if k == "special":
                assert v not in allowed or any(v in [x for kk, x in p if kk == "special"]
                                               for p in rf.templates["text"]), (preset, v)
            break


@pytest.mark.parametrize("preset", PRESETS)
def test_private_use_characters_are_text(preset):
    """Any character the model writes is text, the private-use planes included (the parser once marked
    special tokens with plane-15 characters and mistook such text for them)."""
    vocab, compiler, encode = family_vocab(preset)
    fmt = fcg.formats.get(preset)
    odd = "Hi \U000F0000\U000F4D80 \U00100000\uE000 there"
    g_auto = compiler.compile_tools(WEATHER, format=preset)
    if fmt.mixes_text or all(t.startswith("$text") for t in fmt.alts("text")):
        ids = render(g_auto, {"role": "assistant", "content": odd}, encode=encode)
        assert _accepts(g_auto, ids)
        assert fcg.parse(g_auto, ids)["content"] == odd
    call = {"name": "get_weather", "arguments": {"city": odd}}
    ids = render(g_auto, _message([call]), encode=encode)
    assert _accepts(g_auto, ids)
    assert _same_calls(fcg.parse(g_auto, ids), [call])


def test_pythonic_arguments_become_exact_json():
    """Python-syntax calls are re-written as JSON arguments with their numbers as written: an integer
    too large for a float stays exact (it became `Infinity`, which is not JSON), 1.0 stays 1.0."""
    vocab, compiler, encode = family_vocab("llama3-pythonic")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"n": {"type": "integer"}, "x": {"type": "number"},
                                          "v": {"type": "array"}}, "required": ["n"]}}}]
    g = compiler.compile_tools(tools, format="llama3-pythonic", tool_choice="required")
    big = "1" + "0" * 400
    text = f"[f(n={big}.0, x=-2.50e1, v=[None, True, 'é', [1, 2]])]"
    ids = encode(text) + list(g.stop_ids)[:1]
    assert _accepts(g, ids)
    args = fcg.parse(g, ids)["tool_calls"][0]["function"]["arguments"]

    def no_constants(c):
        raise AssertionError(f"not JSON: {c}")

    assert args == f'{{"n": {big}.0, "x": -2.50e1, "v": [null, true, "é", [1, 2]]}}'
    assert json.loads(args, parse_float=Decimal, parse_constant=no_constants)["n"] == int(big)


@pytest.mark.parametrize("preset", ["qwen", "functionary-v3", "mistral-v11", "llama3-json"])
def test_preamble_only_when_asked(preset):
    vocab, compiler, encode = family_vocab(preset)
    fmt = fcg.formats.get(preset)
    msg = _message([CALL_A], content="Let me check.")
    g_auto = compiler.compile_tools(WEATHER, format=preset)
    g_req = compiler.compile_tools(WEATHER, format=preset, tool_choice="required")
    g_req_pre = compiler.compile_tools(WEATHER, format=preset, tool_choice="required", allow_preamble=True)
    if not fmt.mixes_text:
        return
    ids = render(g_auto, msg, encode=encode)
    assert _accepts(g_auto, ids) and _accepts(g_req_pre, ids) and not _accepts(g_req, ids)
    out = fcg.parse(g_auto, ids)
    assert out["content"] == "Let me check." and _same_calls(out, [CALL_A])


def test_compile_errors_are_clear():
    vocab, compiler, _ = family_vocab("qwen")
    with pytest.raises(fcg.TokenizerError, match=r"\[TOOL_CALLS\]"):
        compiler.compile_tools(WEATHER, format="mistral-v3")
    with pytest.raises(ValueError, match="unknown tool-call format"):
        compiler.compile_tools(WEATHER, format="nope")
    with pytest.raises(fcg.SchemaError) as e:
        compiler.compile_tools([{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"x": {"type": "array", "uniqueItems": True}}}}}], format="qwen")
    assert "/tools/0/function/parameters" in str(e.value.pointer)
    with pytest.raises(fcg.SchemaError):
        compiler.compile_tools(WEATHER, format="qwen", tool_choice={"type": "function", "function": {"name": "nope"}})


def test_parse_unconstrained_text_raises():
    vocab, compiler, _ = family_vocab("llama3-json")
    g = compiler.compile_tools(WEATHER, format="llama3-json", tool_choice="required")
    with pytest.raises(fcg.ParseError):
        fcg.parse(g, 'I will call get_weather for you.')
    assert _same_calls(fcg.parse(g, '{"name": "get_weather", "parameters": {"city": "Rome"}}<|eot_id|>'),
                       [{"name": "get_weather", "arguments": {"city": "Rome"}}])


# ------------------------------------------------------------------------------------ adversarial walks
def _walk(grammar, vocab, rng, budget):
    out = random_walk(fcg.Matcher(grammar, max_tokens=budget), rng, vocab.size)
    assert len(out) <= budget
    return out


# walks per preset x tool_choice case; raise it for a longer adversarial run (the same test, more seeds)
WALKS_PER_CASE = int(os.environ.get("FCGRAMMAR_TOOL_WALKS", "1"))
SEED_SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in SEED_TOOLS}


@pytest.mark.parametrize("preset", PRESETS)
def test_random_walks_parse_into_valid_calls(preset):
    vocab, compiler, _ = family_vocab(preset)
    rng = random.Random(zlib.crc32(preset.encode()))  # not hash(): salted per process
    cases = [("auto", True), ("none", True), ("required", True), ("required", False),
             ({"type": "function", "function": {"name": "plan_trip"}}, True)]
    for choice, parallel in cases:
        g = compiler.compile_tools(SEED_TOOLS, format=preset, tool_choice=choice, parallel_tool_calls=parallel)
        for _ in range(WALKS_PER_CASE):
            ids = _walk(g, vocab, rng, 120)
            msg = fcg.parse(g, ids)
            calls = msg.get("tool_calls", [])
            if choice == "none":
                assert not calls
            elif choice != "auto":
                assert calls
            if isinstance(choice, dict):
                assert {c["function"]["name"] for c in calls} == {"plan_trip"}
            if not parallel:
                assert len(calls) <= 1
            for c in calls:
                jsonschema.validate(json.loads(c["function"]["arguments"]), SEED_SCHEMAS[c["function"]["name"]])
            # streaming gives the same message
            sp = fcg.StreamingParser(g)
            deltas = []
            for t in ids:
                deltas += sp.feed([t])
            deltas += sp.finish()
            content = "".join(d.get("content", "") for d in deltas)
            assert content.strip() == (msg["content"] or "").strip()
            names = [tc["function"]["name"] for d in deltas for tc in d.get("tool_calls", [])
                     if "name" in tc.get("function", {})]
            assert names == [c["function"]["name"] for c in calls]
            for i, c in enumerate(calls):
                args = "".join(tc["function"].get("arguments", "") for d in deltas
                               for tc in d.get("tool_calls", []) if tc["index"] == i)
                assert json.loads(args) == json.loads(c["function"]["arguments"])


def test_strict_function_gets_openai_strict_semantics():
    vocab, compiler, encode = family_vocab("qwen")
    tool = {"type": "function", "function": {"name": "book", "strict": True, "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "nights": {"type": "integer"}}}}}
    loose = dict(tool, function=dict(tool["function"], strict=False))
    partial = {"name": "book", "arguments": {"city": "Oslo"}}
    full = {"name": "book", "arguments": {"city": "Oslo", "nights": 2}}
    g_strict = compiler.compile_tools([tool], format="qwen", tool_choice="required")
    g_loose = compiler.compile_tools([loose], format="qwen", tool_choice="required")
    # strict: every declared property is required, nothing else allowed
    assert not _accepts(g_strict, render(g_strict, _message([partial]), encode=encode))
    assert _accepts(g_strict, render(g_strict, _message([full]), encode=encode))
    assert _accepts(g_loose, render(g_loose, _message([partial]), encode=encode))


def test_custom_format_defined_like_the_presets():
    vocab, compiler, encode = family_vocab("qwen")
    fmt = fcg.formats.ToolFormat(name="test-custom-call", description="'<call>name|{...}</call>' blocks",
                                 call="<call>$name|$args</call>", call_sep="\n", end_text=("<|im_end|>",),
                                 end_calls=("<|im_end|>",), text_forbid=("<call>",))
    fcg.formats.register(fmt, replace=True)
    try:
        _check_custom_format(fmt, compiler, encode)
    finally:
        fcg.formats._REGISTRY.pop(fmt.name, None)  # keep the registry to the presets for other tests


def _check_custom_format(fmt, compiler, encode):
    with pytest.raises(ValueError, match="already exists"):
        fcg.formats.register(fmt)
    assert "test-custom-call" in fcg.formats.names()
    g = compiler.compile_tools(WEATHER, format="test-custom-call")
    ids = render(g, _message([CALL_A, CALL_C], content="Checking."), encode=encode)
    assert render(g, _message([CALL_A]), encode=str).startswith('<call>get_weather|{"city": "Paris"}</call>')
    assert _accepts(g, ids)
    msg = fcg.parse(g, ids)
    assert msg["content"] == "Checking." and _same_calls(msg, [CALL_A, CALL_C])
    g_none = compiler.compile_tools(WEATHER, format=fmt, tool_choice="none")
    body = encode("Sure <call>get_weather|")
    assert fcg.Matcher(g_none).validate_tokens(body) < len(body)
