"""Free text under tool_choice="auto": masks of the text states are exact.

In auto mode the turn may start with text, and a tool call may begin at any character of it: the text
states call the rule of the calls. The walk takes each configuration of such a state on its own, and
skips trie subtrees the text state reads back to itself (ASCII bytes it loops on, valid UTF-8 it reads
character by character; see docs/engine.md, "Free text"). These tests compare every mask with what
accepting each token allows, on a vocabulary made to split triggers and UTF-8 characters anywhere, and on
real tokenizers.
"""
from __future__ import annotations

import numpy as np
import pytest

import fcgrammar as fcg
from fcgrammar.demo_vocab import CALL, EOS, format_specials, train_bpe
from fcgrammar.grammar import MAX_CODEPOINT, Grammar, cp, lit, seq, star
from fcgrammar.seed_tools import SEED_TOOLS
from conftest import TOKENIZERS, data_path
from families import FAMILY, family_vocabulary

PRESETS = ["hermes", "functionary-v3.1", "mistral-v11", "qwen3", "llama3-json"]

# Text that splits the presets' triggers and multi-byte characters anywhere.
_PIECES = ["<", "<t", "<to", "<tool", "<tool_", "<tool_call", "<tool_call>", "tool", "_call", "call>", ">",
           "<f", "<function", "<function=", "function=", "=", " <", "a<", "x <", "[", "[T", "TOOL", "_CALLS",
           "é", "café", "ü", "日本", "日本語", "語", "😀", "a😀", "\n\n", " ", "  ", "\t", '{"', '"}',
           # text, then a trigger inside one token
           " <tool_call>", "a<tool_call>\n", ".<function=", "é<function=get", " [TOOL_CALLS]", "ok\n\n<tool_call>",
           # 'z' then 'y' (test_text_masks_are_exact_where_characters_split)
           "az", "zy", "zya", "za", "éz"]


# Byte strings that are not UTF-8 (a lead byte, then ASCII): every byte below is valid text read from a
# character boundary, none from inside the character the lead byte opens.
_RAW = [b"\xebab", b"\xeb(", b"q\xebb"]


def _pieces():
    out = list(_RAW)
    for p in _PIECES:
        b = p.encode("utf-8")
        out += [b] + [b[:k] for k in range(1, len(b))] + [b[k:] for k in range(1, len(b))]
    return out


def _synthetic_vocab() -> fcg.Vocabulary:
    toks = [bytes([b]) for b in range(256)]
    seen = set(toks)
    for t in list(train_bpe()) + _pieces():
        if t and t not in seen:
            seen.add(t)
            toks.append(t)
    eos = len(toks)
    toks += [EOS, CALL] + [s for s in format_specials() if s not in seen]
    return fcg.Vocabulary.from_tokens(toks, special_ids=range(eos, len(toks)), stop_ids=[eos])


def _allowed(m, size) -> set:
    bm = fcg.allocate_token_bitmask(1, size)
    m.fill_next_token_bitmask(bm)
    bits = np.unpackbits(bm[0].view(np.uint8), bitorder="little")[:size]
    return set(int(i) for i in np.flatnonzero(bits))


def _check_exact(m, vocab):
    allowed = _allowed(m, vocab.size)
    for t in range(vocab.size):
        assert m.copy().accept_token(t) == (t in allowed), (t, vocab.tokens[t] if t < len(vocab.tokens) else None)
    return allowed


# Where to look: after these bytes (each state where text is possible)
PREFIXES = [b"", b"Sure", b"Let me check ", b"a <", b"x <tool", b"<function", b"[TOOL", b"caf\xc3", b"\xe6\x97",
            b"\xf0\x9f\x98", "日本語 ".encode("utf-8"), b"one\n\ntwo"]


def _text_states(grammar):
    """Matchers after each prefix the grammar accepts as the start of a turn."""
    out = []
    for p in PREFIXES:
        m = fcg.Matcher(grammar)
        if m.accept_bytes(p) if p else True:
            out.append((p, m))
    return out


@pytest.mark.parametrize("preset", PRESETS)
def test_text_masks_are_exact_on_a_splitting_vocabulary(preset):
    vocab = _synthetic_vocab()
    grammar = fcg.Compiler(vocab).compile_tools(SEED_TOOLS, format=preset, tool_choice="auto")
    states = _text_states(grammar)
    assert len(states) >= 6, [p for p, _ in states]  # text is possible, multi-byte characters included
    for p, m in states:
        allowed = _check_exact(m, vocab)
        assert allowed, p


_ANY = cp([(1, MAX_CODEPOINT)])  # any character but NUL


def _grammar(*parts) -> Grammar:
    g = Grammar()
    g.add_rule("root", seq(*parts))
    return g


@pytest.mark.parametrize("name, grammar", [
    ("text", lambda: _grammar(star(_ANY))),
    # 'z', then text: after the 'z', the next character leads into the loop, but not a 'y', which the
    # loop takes (below "z": "zy", "zya" must be walked)
    ("z, no y", lambda: _grammar(lit("z"), cp([(1, ord("x")), (ord("z"), MAX_CODEPOINT)]), star(_ANY))),
    # characters lead on from state to state without a loop: nothing is taken whole
    ("three characters", lambda: _grammar(_ANY, _ANY, _ANY)),
])
def test_text_masks_are_exact_where_characters_split(name, grammar):
    """Subtrees taken whole at a character boundary and inside a character split by a token (tokens
    that are not UTF-8 included), from every position of a character."""
    vocab = _synthetic_vocab()
    g = fcg.Compiler(vocab).compile_grammar(grammar())
    reached = 0
    # each position: start, after one or two characters, inside a 2-, 3- and 4-byte character
    for p in [b"", b"z", b"za", b"zab", b"z\xc3", b"z\xe6\x97", b"z\xf0\x9f\x98", "z日".encode(), "z日".encode() + b"\xc3",
              b"a", b"ab", b"\xc3", b"\xe6\x97", b"\xf0\x9f\x98", "日".encode(), "日".encode() + b"\xc3"]:
        m = fcg.Matcher(g)
        if not p or m.accept_bytes(p):
            reached += 1
            assert _check_exact(m, vocab), (name, p)
    assert reached >= 6, name


@pytest.mark.parametrize("preset", PRESETS)
def test_text_masks_are_exact_on_real_tokenizers(preset):
    base_name, extra = FAMILY[preset]
    base = fcg.Vocabulary.from_tokenizer_json(str(data_path(TOKENIZERS[base_name])))
    vocab = family_vocabulary(base, extra, base_name)
    grammar = fcg.Compiler(vocab).compile_tools(SEED_TOOLS, format=preset, tool_choice="auto")
    states = _text_states(grammar)
    assert len(states) >= 6, [p for p, _ in states]
    for p, m in states[:6]:  # 6 states x the whole vocabulary
        _check_exact(m, vocab)
