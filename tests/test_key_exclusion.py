"""The key-exclusion node: "a JSON string whose decoded value is none of these names".

The engine builds it as a trie with a small decoder per character (grammar.excluding); the same language
as a regular expression is json_schema.expand_excluding. Both must accept exactly the spellings whose
decoded value (json.loads) is no name, whatever mix of raw characters, short escapes, \\u escapes in
either case and surrogate pairs spells them.
"""
from __future__ import annotations

import json
import random
import zlib

import pytest

from fcgrammar._testing import accepts, compile_bytes, prefix_ok
from fcgrammar.grammar import ANY_CODEPOINT, EXCL, LIT, SEQ, Grammar, excluding
from fcgrammar.json_schema import expand_excluding, key_excluding, open_key_names
from fcgrammar.regex import UNIVERSE

_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _hex4(v: int, rng: random.Random) -> str:
    return "\\u" + "".join(d.upper() if rng.random() < 0.5 else d for d in "%04x" % v)


def spell(s: str, rng: random.Random) -> str:
    """``s`` as a JSON string body, each character spelled one of its valid ways at random."""
    out = []
    for c in s:
        o = ord(c)
        ways = []
        if o >= 0x20 and c not in '"\\' and not 0xD800 <= o <= 0xDFFF:
            ways.append(c)
        if c in _SHORT:
            ways.append(_SHORT[c])
        if o <= 0xFFFF:
            ways.append(_hex4(o, rng))
        else:
            v = o - 0x10000
            ways.append(_hex4(0xD800 + (v >> 10), rng) + _hex4(0xDC00 + (v & 0x3FF), rng))
        out.append(rng.choice(ways))
    return "".join(out)


def _grammar(body) -> Grammar:
    g = Grammar()
    g.add_rule("key", (SEQ, ((LIT, b'"'), body, (LIT, b'"'))))
    return g


def _truth(body: str, names, universe) -> bool:
    try:
        v = json.loads('"' + body + '"')
    except ValueError:
        return False
    if not all(any(lo <= ord(c) <= hi for lo, hi in universe) for c in v):
        return False
    return v not in names


NAME_SETS = [
    ["location", "unit"],
    ["ab", "abc", "b", "é😀"],             # a prefix of another, a supplementary character
    ["", "a"],                             # the empty key is a name
    ['"q"', "back\\slash", "tab\there", "/", "x\u0001"],  # names only escapes (or one of several) can spell
    ["é", "ü", "日本", "日本語"],           # non-ASCII names, a prefix of another
    ["😀"],
    ["a"],
    ["ä\uffff", "\ue000"],                # the top of the BMP, the first private-use character
]


def _candidates(names, rng):
    extra = ["x", "a", "é", "😀", "\n", '"', "\\", "\u0000", "\uffff", "\ud800"]
    alphabet = sorted({c for n in names for c in n} | set(extra))
    cands = {""}
    for n in names:
        cands.add(n)
        for i in range(len(n)):
            cands.add(n[:i])                                # proper prefixes
            cands.add(n[:i] + rng.choice(alphabet) + n[i + 1:])  # one character changed
        for e in extra:
            cands.add(n + e)
            cands.add(e + n)
    for _ in range(60):
        cands.add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
    return sorted(cands)


@pytest.mark.parametrize("names", NAME_SETS, ids=[",".join(map(repr, n))[:40] for n in NAME_SETS])
def test_native_and_expanded_accept_exactly_the_other_keys(names):
    rng = random.Random(zlib.crc32(repr(names).encode()))
    universe = ANY_CODEPOINT if open_key_names(names) else UNIVERSE
    node = excluding(names, universe)
    assert node[0] == EXCL
    native, expanded = compile_bytes(_grammar(node)), compile_bytes(_grammar(expand_excluding(node)))
    checked = 0
    for s in _candidates(names, rng):
        for _ in range(3):
            body = spell(s, rng)
            want = _truth(body, names, universe)
            got = accepts(native, '"' + body + '"')
            assert got == want, (names, s, body)
            assert accepts(expanded, '"' + body + '"') == want, (names, s, body)
            checked += 1
    # spellings JSON does not allow: a bad escape, a raw control character, a lone quote
    for bad in ("\\x", "\\u12", "\\u12g4", "\n", 'a"b', "\\"):
        assert not accepts(native, '"' + bad + '"') and not accepts(expanded, '"' + bad + '"')
    assert checked > 100


def test_prefixes_of_open_keys_can_always_be_completed():
    # The engine's open-string masks rely on it (a key prefix never dead-ends).
    names = ["location", "unit", "loc", "é"]
    assert open_key_names(names)
    g = compile_bytes(_grammar(excluding(names)))
    rng = random.Random(7)
    for s in _candidates(names, rng):
        body = spell(s, rng)
        for i in range(len(body) + 1):
            assert prefix_ok(g, '"' + body[:i]), body[:i]


def test_key_excluding_is_one_node_and_much_smaller():
    import fcgrammar as fcg
    from fcgrammar.demo_vocab import demo_vocabulary

    names = ["location", "unit", "format", "days", "include_forecast"]
    key = key_excluding(names)
    assert key[1][1][0] == EXCL
    compiler = fcg.Compiler(demo_vocabulary())
    native = compiler.compile_grammar(_grammar(key[1][1]))._core.num_nfa_states
    expanded = compiler.compile_grammar(_grammar(expand_excluding(key[1][1])))._core.num_nfa_states
    assert native * 3 < expanded, (native, expanded)


def test_bad_universes_are_refused():
    with pytest.raises(ValueError):
        excluding(["a"], [(0, 0xD900)])  # some surrogates, not all
    with pytest.raises(ValueError):
        excluding(["😀"], ANY_CODEPOINT)  # a pair would read as two lone escapes


def test_identifier_exclusion_native_and_expanded():
    # Keyword arguments' names (Python-syntax tool calls): ASCII identifiers that are no declared name and
    # no Python keyword.
    import keyword

    from fcgrammar.grammar import excluding_identifier
    from fcgrammar.json_schema import identifier_excluding

    names = ["location", "loc", "unit", "_x", "a1"] + keyword.kwlist
    node = identifier_excluding(["location", "loc", "unit", "_x", "a1", "not an identifier", "é"])
    assert node[0] == EXCL and node == excluding_identifier(names)  # non-identifiers cannot occur: dropped
    g = Grammar()
    g.add_rule("id", node)
    native = compile_bytes(g)
    g2 = Grammar()
    g2.add_rule("id", expand_excluding(node))
    expanded = compile_bytes(g2)
    rng = random.Random(3)
    alphabet = "lociatnu_x1aAZ9 é-"
    cands = set(names) | {"", "_", "9a", "a", "lo", "locat", "locationx", "unitx", "Location", "__x", "a12", "If"}
    cands |= {n[:i] for n in names for i in range(len(n))}
    cands |= {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)}
    for s in sorted(cands):
        want = s.isascii() and s.isidentifier() and s not in names
        assert accepts(native, s) == want, s
        assert accepts(expanded, s) == want, s
