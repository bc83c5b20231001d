"""The token index can be cached on disk; a corrupt, truncated or stale cache is rebuilt, never trusted."""
from __future__ import annotations

import numpy as np
import pytest

import fcgrammar as fcg
from fcgrammar import compiler as comp
from fcgrammar.demo_vocab import demo_vocabulary
from fcgrammar.grammar import ANY_CODEPOINT, Grammar, cp, lit, rep, seq


def _masks(vocab, cache_dir):
    comp._INDEX_CACHE.clear()
    c = fcg.Compiler(vocab, cache_dir=cache_dir)
    g = Grammar()
    g.add_rule("root", seq(lit('{"a":"'), rep(cp(ANY_CODEPOINT, json=True), 0, -1), lit('"}')))
    m = fcg.Matcher(c.compile_grammar(g))
    out = []
    for step in ('{"a":"', "x\\u00", "e9", '"'):
        bm = fcg.allocate_token_bitmask(1, vocab.size)
        m.fill_next_token_bitmask(bm)
        out.append(bm.copy())
        assert m.accept_string(step)
    return out


def test_cache_roundtrip_and_corruption(tmp_path):
    vocab = demo_vocabulary()
    fresh = _masks(vocab, None)
    built = _masks(vocab, tmp_path)
    files = list(tmp_path.glob("token-index-*.bin"))
    assert len(files) == 1
    loaded = _masks(vocab, tmp_path)  # from disk
    for a, b, c in zip(fresh, built, loaded):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    path = files[0]
    good = path.read_bytes()
    # flipped payload byte: checksum mismatch -> rebuilt and rewritten
    bad = bytearray(good)
    bad[-100] ^= 0xFF
    path.write_bytes(bytes(bad))
    for a, b in zip(fresh, _masks(vocab, tmp_path)):
        assert np.array_equal(a, b)
    assert path.read_bytes() == good
    # truncated file
    path.write_bytes(good[: len(good) // 2])
    for a, b in zip(fresh, _masks(vocab, tmp_path)):
        assert np.array_equal(a, b)
    assert path.read_bytes() == good
    # a valid checksum over a structurally wrong payload is still rejected by the C++ checks
    import hashlib
    head = len(comp._CACHE_MAGIC) + 64 + 32
    payload = bytearray(good[head:])
    payload[40:48] = b"\xff" * 8
    forged = good[: len(comp._CACHE_MAGIC) + 64] + hashlib.sha256(bytes(payload)).digest() + bytes(payload)
    path.write_bytes(forged)
    for a, b in zip(fresh, _masks(vocab, tmp_path)):
        assert np.array_equal(a, b)


def test_cache_of_another_vocabulary_is_not_used(tmp_path):
    vocab = demo_vocabulary()
    _masks(vocab, tmp_path)
    (src,) = tmp_path.glob("token-index-*.bin")
    other = fcg.Vocabulary.from_tokens(list(vocab.tokens), special_ids=vocab.special_ids, stop_ids=vocab.stop_ids,
                                       vocab_size=vocab.size + 5)
    target = tmp_path / f"token-index-{other.hash()}.bin"
    target.write_bytes(src.read_bytes())  # right name, wrong contents
    fresh = _masks(other, None)
    for a, b in zip(fresh, _masks(other, tmp_path)):
        assert np.array_equal(a, b)
