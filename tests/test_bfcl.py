"""Every BFCL v3/v4 gold call, tokenized by six real tokenizers, is allowed by the mask token by token.

Each call is serialized as ``{"name": ..., "arguments": ...}`` with ``json.dumps`` defaults (separators
``", "``/``": "``, ``ensure_ascii=True`` so non-ASCII text arrives as ``\\u`` escapes) and checked against
the entry's anyOf call schema (BFCL dialect through ``compat="bfcl"``), members in the schema's property
order (the order the grammar emits by default). A gold call that does not validate
against its own schema (jsonschema, via an independent dialect conversion) must be rejected instead.
"""
from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

import fcgrammar as fcg

from bfcl_data import V3, V4, call_schema, load, ordered_call
from conftest import DATA_DIR, TOKENIZERS, data_path

TOKENIZER_NAMES = list(TOKENIZERS)


@pytest.fixture(scope="module")
def bfcl_entries():
    data_path("function-calling/bfcl/v3/BFCL_v3_simple.json")
    entries, seen = [], set()
    for version, cats in (("v3", V3), ("v4", V4)):
        for cat in cats:
            for eid, functions, calls in load(DATA_DIR, version, cat):
                key = json.dumps([functions, calls], sort_keys=True)
                if key in seen:  # v4 repeats most of v3
                    continue
                seen.add(key)
                entries.append((f"{version}/{eid}", functions, calls))
    return entries


# The mask itself is checked for every token with these tokenizers; with the others each token goes
# through accept_token, which agrees with the mask exactly (tests/test_matcher.py checks that
# exhaustively), to keep the suite's run time reasonable.
MASK_CHECKED = {"llama3.1", "llama2"}


def _check_tokens(matcher, ids, mask, vocab, with_mask):
    for t in ids:
        if with_mask:
            matcher.fill_next_token_bitmask(mask)
            if not (int(mask[0, t >> 5]) >> (t & 31)) & 1:
                return False
            assert matcher.accept_token(t), "a token in the mask must be accepted"
        elif not matcher.accept_token(t):
            return False
    return True


@pytest.mark.parametrize("tok_name", TOKENIZER_NAMES)
def test_bfcl_gold_calls_accepted(bfcl_entries, tok_name):
    vocab = fcg.Vocabulary.from_tokenizer_json(data_path(TOKENIZERS[tok_name]))
    if vocab.encode("x") is None:
        pytest.skip(f"no encoder for {tok_name}: {getattr(vocab, 'encoder_error', '')}")
    compiler = fcg.Compiler(vocab)
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    stats = {"accepted": 0, "invalid_gold_rejected": 0}
    failures = []
    for eid, functions, calls in bfcl_entries:
        oracle = call_schema(functions, standard=True)
        try:
            grammar = compiler.compile_json_schema(call_schema(functions, standard=False), compat="bfcl",
                                                   separators=(", ", ": "))
        except fcg.GrammarError:
            # e.g. live_simple_71: an array type with string enum values admits no value at all
            grammar = None
        for call in calls:
            call = ordered_call(call, functions)
            text = json.dumps(call)
            ids = vocab.encode(text)
            assert vocab.decode(ids) == text.encode()
            try:
                jsonschema.validate(call, oracle)
                valid = True
            except jsonschema.ValidationError:
                valid = False
            if grammar is None:
                m, ok = None, False
            else:
                m = fcg.Matcher(grammar)
                ok = _check_tokens(m, ids, mask, vocab, tok_name in MASK_CHECKED) and m.is_accepting()
            if ok and valid:
                # the stop tokens are allowed at the end
                m.fill_next_token_bitmask(mask)
                assert all((int(mask[0, s >> 5]) >> (s & 31)) & 1 for s in vocab.stop_ids)
                assert m.accept_token(vocab.stop_ids[0]) and m.is_terminated()
                stats["accepted"] += 1
            elif not ok and not valid:
                stats["invalid_gold_rejected"] += 1
            else:
                failures.append((eid, valid, text[:300]))
    print(f"\n{tok_name}: {stats}, disagreements: {len(failures)}")
    assert not failures, f"{len(failures)} disagreements with jsonschema, first: {failures[:3]}"
    assert stats["accepted"] > 3000
