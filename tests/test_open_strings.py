"""Open strings: the keys of objects that allow additional properties.

Such a key is "any string but the declared names". Its states are neither literals nor a plain string
body, so the engine takes the tokens that stay inside the key from the string lexer's precomputed sets
and walks only the tokens that close it (see docs/engine.md, "Open strings"). These tests check that
the masks it gives are exactly what accepting each token allows, on a vocabulary made to hit every
corner (escapes, split UTF-8, tokens that close a key and go on), and that the fast path is taken.
"""
from __future__ import annotations

import json
import random
import zlib

import jsonschema
import numpy as np
import pytest

import fcgrammar as fcg
from conftest import TOKENIZERS, data_path

# Every byte (so any text can be written), plus tokens that cross every boundary of a key: escapes
# split anywhere, UTF-8 split anywhere, names and their prefixes, and tokens that close a key and go on.
_PIECES = [
    '"', '",', '":', '":"', '": "', '":{', '":[', '":1', '"}', '"},', '"]', ', "', ',"', '{"', ' {"', ' "', '""',
    "loc", "loca", "locale", "cale", "le", 'c"', 'c":', 'le":', 'e"', 'x"', 'xyz', 'ation"', "lo", "l", "ocale",
    "\\", "\\u", "\\u00", "\\u006", "6c", "\\u006c", "006c", "\\n", "\\\"", '\\"', '"\\', "\\u00fc", "00fc", "fc\"",
    "ü", "üb", "ünï", "nï", 'ï"', "ï", "1", "12", "true", "null", "{", "}", "[", "]", ",", ":", " ", "  ",
]


def _vocab() -> fcg.Vocabulary:
    toks = [bytes([b]) for b in range(256)]
    seen = set(toks)
    for p in _PIECES:
        for b in (p.encode("utf-8"), p.encode("utf-8")[:-1], p.encode("utf-8")[1:]):
            if b and b not in seen:
                seen.add(b)
                toks.append(b)
    toks.append(b"</s>")
    eos = len(toks) - 1
    return fcg.Vocabulary.from_tokens(toks, special_ids=[eos], stop_ids=[eos])


@pytest.fixture(scope="module")
def vocab():
    return _vocab()


SCHEMAS = {
    # names sharing prefixes and a non-ASCII one; additional values of another type than the declared
    "prefixes": {"type": "object", "properties": {"loc": {"type": "string"}, "locale": {"type": "string"},
                                                  "ünï": {"type": "integer"}},
                 "required": ["loc"], "additionalProperties": {"type": "integer"}},
    # JSON Schema's default: any additional value
    "default": {"type": "object", "properties": {"l": {"type": "boolean"}, "loc": {"type": "null"}}},
    # nested open objects
    "nested": {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}},
                                                      "required": ["b"]}}, "required": ["a"]},
}


def _allowed(m, vocab) -> set:
    bm = fcg.allocate_token_bitmask(1, vocab.size)
    m.fill_next_token_bitmask(bm)
    bits = np.unpackbits(bm[0].view(np.uint8), bitorder="little")[: vocab.size]
    return set(int(i) for i in np.flatnonzero(bits))


def _check_exact(m, vocab) -> set:
    allowed = _allowed(m, vocab)
    for t in range(vocab.size):
        probe = m.copy()
        assert probe.accept_token(t) == (t in allowed), (t, vocab.tokens[t], m._mask_path())
    return allowed


def _text(vocab, ids) -> str:
    return b"".join(vocab.tokens[t] for t in ids if t not in vocab.stop_ids).decode("utf-8")


# where each schema's object allows an additional key next (compact; with spaces)
OPEN_AT = {"prefixes": ('{"loc":"v",', '{"loc": "v", '), "default": ("{", "{"), "nested": ('{"a":{"b":1,', '{"a": {"b": 1, ')}
KEY_PREFIXES = ['"', '"lo', '"loc', '"loca', '"x', '"\\', '"\\u00', '"\\u006', '"\\u006c', '"l\\u006f',
                '"\xfc', '"\xfcn', '"\\u00fc', '"\\uD83D', '"\\uD83D\\u', '"loc\\"', '"l"', '""']


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("separators", [None, (", ", ": ")])
def test_masks_inside_open_keys_are_exact(vocab, name, separators):
    schema = SCHEMAS[name]
    opts = {"separators": separators} if separators else {}
    grammar = fcg.Compiler(vocab).compile_json_schema(schema, **opts)
    paths = []
    for key in KEY_PREFIXES:
        m = fcg.Matcher(grammar)
        assert m.accept_bytes((OPEN_AT[name][bool(separators)] + key).encode("utf-8")), key
        paths.append(m._mask_path())
        _check_exact(m, vocab)
    # inside the key, up to its closing quote, the open-string path decides the mask
    assert all("open string" in p for p in paths[:-2]), paths


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("budget", [None, 12, 40])
def test_random_walks_through_open_objects(vocab, name, budget):
    """An adversarial sampler over exact masks: every walk ends (within its budget) in valid JSON."""
    schema = SCHEMAS[name]
    grammar = fcg.Compiler(vocab).compile_json_schema(schema)
    rng = random.Random(zlib.crc32(("%s-%s" % (name, budget)).encode()))  # not hash(): salted per process
    saw_open = False
    for walk in range(30):  # six walks, more until one has entered an additional key
        if walk >= 6 and (saw_open or budget == 12):
            break
        m = fcg.Matcher(grammar, max_tokens=budget) if budget else fcg.Matcher(grammar)
        ids = []
        while not m.is_terminated() and len(ids) < 80:
            saw_open |= "open string" in m._mask_path()
            if budget:  # the budget narrows the mask below what accepting allows
                allowed = _allowed(m, vocab)
                assert all(m.copy().accept_token(t) for t in allowed)
            else:
                allowed = _check_exact(m, vocab)
            assert allowed
            t = rng.choice(sorted(allowed))
            assert m.accept_token(t)
            ids.append(t)
        if budget:
            assert m.is_terminated() and len(ids) - 1 <= budget  # the stop token is not counted
        if m.is_terminated():
            jsonschema.validate(json.loads(_text(vocab, ids)), schema)
    assert saw_open or budget == 12


def test_escaped_names_are_still_declared(vocab):
    """A declared name spelled with escapes is the declared property, never an additional one."""
    schema = SCHEMAS["prefixes"]
    grammar = fcg.Compiler(vocab).compile_json_schema(schema)
    m = fcg.Matcher(grammar)
    assert m.accept_bytes(b'{"\\u006coc":')
    assert not m.copy().accept_bytes(b"1")   # loc is a string, not an additional integer
    assert m.accept_bytes(b'"x"}')


def test_open_keys_on_a_real_tokenizer():
    """Llama 3.1: the key state after ', "' (the one the general walk took ~10 ms for) is exact."""
    vocab = fcg.Vocabulary.from_tokenizer_json(str(data_path(TOKENIZERS["llama3.1"])))
    schema = {"type": "object", "properties": {"user_name": {"type": "string"}, "partner_name": {"type": "string"},
                                               "relationship": {"type": "string", "enum": ["wife", "husband"]}},
              "required": ["user_name", "partner_name"]}
    grammar = fcg.Compiler(vocab).compile_json_schema(schema, separators=(", ", ": "))
    m = fcg.Matcher(grammar)
    assert m.accept_bytes(b'{"user_name": "a", "partner_name": "b", "')
    sizes = {}
    for extra in (b"", b"relationship", b"rel\\u0061", b"x\xc3"):
        probe = m.copy()
        assert probe.accept_bytes(extra)
        assert "open string" in probe._mask_path()
        bm = fcg.allocate_token_bitmask(1, vocab.size)
        probe.fill_next_token_bitmask(bm)
        allowed = set(np.flatnonzero(np.unpackbits(bm[0].view(np.uint8), bitorder="little")[: vocab.size]).tolist())
        ids = np.arange(vocab.size)
        rng = np.random.default_rng(len(extra))
        sample = set(rng.choice(ids, 4000, replace=False).tolist()) | {i for i, t in enumerate(vocab.tokens)
                                                                        if b'"' in t}
        for t in sorted(sample):
            assert probe.copy().accept_token(t) == (t in allowed), (extra, vocab.tokens[t])
        sizes[extra] = len(allowed)
    assert sizes[b""] > 100_000  # nearly every token can go on inside a key
