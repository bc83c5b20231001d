"""Adversarial random walks with a token budget over BFCL tool sets and real tokenizers.

A uniform choice among the allowed tokens is the worst model there is: inside a string almost every token
is allowed. With ``max_tokens`` the mask only lets through tokens from which a complete value is still
reachable, so every walk must end (stop token, or budget exhausted in an accepting state) and its output
must parse and validate against the call schema.
"""
from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal

import jsonschema
import pytest

import fcgrammar as fcg

from bfcl_data import call_schema, load
from conftest import DATA_DIR, TOKENIZERS, data_path
from walks import random_walk

WALK_TOKENIZERS = ["llama3.1", "qwen3", "phi-3", "llama2"]
BUDGET = 300
WALKS_PER_TOKENIZER = 250


def _tool_sets():
    data_path("function-calling/bfcl/v3/BFCL_v3_simple.json")
    sets = []
    for cat in ("simple", "multiple", "live_simple", "live_multiple"):
        sets += [functions for _eid, functions, _calls in load(DATA_DIR, "v3", cat)]
    return sets


def _parse_float(text: str):
    """JSON numbers with a fraction or exponent: an int when integral (JSON Schema's integers include 1.0
    and 400-digit values, which Python's float would turn into inf), else a float."""
    try:
        d = Decimal(text)
        if d.adjusted() < 4000 and d == d.to_integral_value():
            return int(d)
    except ArithmeticError:  # exponents beyond the decimal context
        pass
    return float(text)


@pytest.mark.parametrize("tok_name", WALK_TOKENIZERS)
def test_random_walks_end_within_budget_and_validate(tok_name):
    tool_sets = _tool_sets()
    vocab = fcg.Vocabulary.from_tokenizer_json(data_path(TOKENIZERS[tok_name]))
    compiler = fcg.Compiler(vocab)
    rng = random.Random(zlib.crc32(tok_name.encode()))
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    ended_by_stop = 0
    for i in range(WALKS_PER_TOKENIZER):
        functions = tool_sets[rng.randrange(len(tool_sets))]
        schema = call_schema(functions, standard=False)
        try:
            grammar = compiler.compile_json_schema(schema, compat="bfcl")
        except fcg.GrammarError:
            continue  # a tool set whose schemas admit no value at all (live_simple_71)
        m = fcg.Matcher(grammar, max_tokens=BUDGET)
        assert m.min_tokens_to_finish <= BUDGET, functions[0]["name"]
        ids = random_walk(m, rng, vocab.size, mask, BUDGET)
        assert len(ids) <= BUDGET
        assert m.is_accepting(), f"walk {i} ended incomplete: {vocab.decode(ids)[:200]!r}"
        ended_by_stop += m.is_terminated()
        text = vocab.decode([t for t in ids if t not in vocab.stop_ids])
        if vocab.add_prefix_space and text.startswith(b" "):
            text = text[1:]  # the SentencePiece decoder drops the output's leading space
        value = json.loads(text, parse_float=_parse_float)
        jsonschema.validate(value, call_schema(functions, standard=True))
    print(f"\n{tok_name}: {WALKS_PER_TOKENIZER} walks, {ended_by_stop} ended by a stop token, all within "
          f"{BUDGET} tokens and valid")
