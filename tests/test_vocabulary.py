"""Vocabulary: exact token bytes for every supported tokenizer format.

Shared-data tests skip (with the missing file named) when ../shared/data is absent; synthetic tests always run.
Every real tokenizer is loaded once per module (the fixtures below cache them).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import struct
import sys
import types
import unicodedata
from collections import Counter
from typing import Dict, Optional

import pytest

from conftest import TOKENIZERS, data_path


def _import_vocabulary():
    """fcgrammar.vocabulary, even while the package's C++ core is not built (then without running __init__)."""
    try:
        from fcgrammar import errors as err_mod
        from fcgrammar import vocabulary as voc_mod

        return voc_mod, err_mod
    except ImportError:
        spec = importlib.util.find_spec("fcgrammar")
        if spec is None or not spec.submodule_search_locations:
            raise
        pkg = types.ModuleType("_fcgrammar_vocab_only")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["_fcgrammar_vocab_only"] = pkg
        return (
            importlib.import_module("_fcgrammar_vocab_only.vocabulary"),
            importlib.import_module("_fcgrammar_vocab_only.errors"),
        )


vocabulary, errors = _import_vocabulary()
Vocabulary = vocabulary.Vocabulary
TokenizerError = errors.TokenizerError

SPM_NAMES = ("llama2", "phi-3")
GGUF_DIR = "tokenizers/gguf"
# GGUF vocab -> the tokenizer.json it must agree with
GGUF_PAIRS = {
    "llama-bpe": "llama3.1",
    "llama-spm": "llama2",
    "phi-3": "phi-3",
    "gpt-2": "gpt2",
    "qwen2": "qwen3",
}

# ----------------------------------------------------------------------------------------- fixtures

_VOCABS: Dict[str, Vocabulary] = {}
_HF: Dict[str, object] = {}
_GGUF: Dict[str, Vocabulary] = {}


def load_vocab(name: str) -> Vocabulary:
    if name not in _VOCABS:
        _VOCABS[name] = Vocabulary.from_tokenizer_json(data_path(TOKENIZERS[name]))
    return _VOCABS[name]


def load_gguf(name: str) -> Vocabulary:
    if name not in _GGUF:
        _GGUF[name] = Vocabulary.from_gguf(data_path(f"{GGUF_DIR}/ggml-vocab-{name}.gguf"))
    return _GGUF[name]


def _fix_merges_independently(tj: dict) -> None:
    """The shared Llama 2 tokenizer.json keeps merges as "a b" strings where a piece itself can contain a
    space (pieces ' ', '  ', '▁ '); tokenizers 0.23 rejects that ("Merges text file invalid"). Rewrite every
    merge as an [a, b] pair, splitting at the space where both halves and their join are vocabulary pieces."""
    model = tj["model"]
    vocab = model["vocab"]
    fixed = []
    for m in model["merges"]:
        if not isinstance(m, str):
            fixed.append(m)
            continue
        parts = m.split(" ")
        if len(parts) == 2:
            fixed.append(parts)
            continue
        for k, c in enumerate(m):
            if c == " " and m[:k] in vocab and m[k + 1:] in vocab and m[:k] + m[k + 1:] in vocab:
                fixed.append([m[:k], m[k + 1:]])
                break
        else:
            raise AssertionError(f"cannot split merge {m!r}")
    model["merges"] = fixed


def load_hf(name: str):
    """The reference: the `tokenizers` library's own decoder for the same file."""
    tokenizers = pytest.importorskip("tokenizers")
    if name not in _HF:
        path = data_path(TOKENIZERS[name])
        try:
            tk = tokenizers.Tokenizer.from_file(str(path))
        except Exception:
            # Llama 2: old merges layout (see _fix_merges_independently). Merges only affect encoding,
            # never the decoder we compare against, so the fixed-up file is a faithful decode reference.
            tj = json.loads(path.read_text(encoding="utf-8"))
            _fix_merges_independently(tj)
            tk = tokenizers.Tokenizer.from_str(json.dumps(tj))
        tk.no_truncation()  # the shared GPT-2 file truncates at 50 tokens
        tk.no_padding()
        _HF[name] = tk
    return _HF[name]


def _utf8_ok(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _prefix_id(name: str, v: Vocabulary) -> Optional[int]:
    """For SentencePiece decoders (Strip of the first space) decode [prefix, tok] and drop the prefix.
    The prefix is the ordinary piece "a" (not its <0x61> byte-fallback twin, which would fuse with a
    following byte token)."""
    if v.kind != "sentencepiece":
        return None
    i = load_hf(name).token_to_id("a")
    assert i is not None and v.tokens[i] == b"a" and i not in v.special_ids
    return i


def _complete_utf8(b: bytes):
    """(lead, tail) bytes that turn a partial-UTF-8 token into complete characters around it."""
    k = 0
    while k < len(b) and k < 4 and 0x80 <= b[k] <= 0xBF:
        k += 1
    lead = {0: b"", 1: b"\xc2", 2: b"\xe1", 3: b"\xf1"}.get(k, b"")
    # trailing incomplete sequence
    j = len(b) - 1
    cont = 0
    while j >= 0 and 0x80 <= b[j] <= 0xBF and cont < 3:
        j -= 1
        cont += 1
    tail = b""
    if j >= 0 and b[j] >= 0xC2:
        first = b[j]
        need = 1 if first < 0xE0 else 2 if first < 0xF0 else 3
        missing = need - cont
        for m in range(missing):
            pos = cont + m  # index of the continuation byte after the lead
            if pos == 0 and first == 0xE0:
                tail += b"\xa0"
            elif pos == 0 and first == 0xF0:
                tail += b"\x90"
            else:
                tail += b"\x80"
    return lead, tail


# ------------------------------------------------------------------- token bytes vs tokenizers decode


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_token_bytes_match_tokenizers_decode(name):
    v = load_vocab(name)
    tk = load_hf(name)
    assert v.n_tokens == tk.get_vocab_size(with_added_tokens=True)
    pre = _prefix_id(name, v)
    text_ids = v.text_ids
    seqs = [[i] if pre is None else [pre, i] for i in text_ids]
    outs = tk.decode_batch(seqs, skip_special_tokens=False)
    strip = "a" if pre is not None else ""
    bad = []
    for i, out in zip(text_ids, outs):
        # a token that is a piece of a multi-byte character decodes to U+FFFD: compare with the same lossy
        # decoding of our bytes (Rust's from_utf8_lossy and Python's "replace" both substitute maximal
        # subparts); the partial tokens get an exact check in test_partial_utf8_tokens_assemble
        if out != strip + v.tokens[i].decode("utf-8", "replace"):
            bad.append((i, v.tokens[i], out))
    assert not bad, f"{len(bad)} tokens differ from tokenizers' decode, e.g. {bad[:5]}"
    # special tokens: their literal text
    sp = [i for i in sorted(v.special_ids) if v.tokens[i]]
    outs = tk.decode_batch([[i] for i in sp], skip_special_tokens=False)
    bad = [(i, v.tokens[i], o) for i, o in zip(sp, outs) if o.encode("utf-8") != v.tokens[i]]
    assert not bad, bad[:5]


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_partial_utf8_tokens_assemble(name):
    """Tokens holding part of a multi-byte character: surrounded by the single-byte tokens that complete
    the character(s), tokenizers' decode must give exactly the characters our bytes spell."""
    v = load_vocab(name)
    tk = load_hf(name)
    byte_tok = {}
    for i in v.text_ids:
        t = v.tokens[i]
        if len(t) == 1:
            if v.kind == "sentencepiece" and not tk.id_to_token(i).startswith("<0x"):
                continue  # use the byte-fallback tokens for bytes
            byte_tok.setdefault(t[0], i)
    assert len(byte_tok) == 256, f"only {len(byte_tok)} single-byte tokens"
    partial = [i for i in v.text_ids if not _utf8_ok(v.tokens[i])]
    assert partial, "every real vocabulary has partial-UTF-8 tokens"
    pre = _prefix_id(name, v)
    seqs, expect = [], []
    for i in partial:
        lead, tail = _complete_utf8(v.tokens[i])
        whole = lead + v.tokens[i] + tail
        if not _utf8_ok(whole):
            continue  # e.g. a token holding bytes that never occur in UTF-8 (0xC0, 0xF8..): checked lossily above
        seq = [byte_tok[c] for c in lead] + [i] + [byte_tok[c] for c in tail]
        if pre is not None:
            seq = [pre] + seq
            whole = b"a" + whole
        seqs.append(seq)
        expect.append(whole.decode("utf-8"))
    assert len(seqs) >= 0.9 * len(partial) - 5, (len(seqs), len(partial))
    outs = tk.decode_batch(seqs, skip_special_tokens=False)
    bad = [(s, e, o) for s, e, o in zip(seqs, expect, outs) if e != o]
    assert not bad, f"{len(bad)} of {len(seqs)} partial tokens assemble differently, e.g. {bad[:3]}"


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_multibyte_chars_split_across_tokens(name):
    v = load_vocab(name)
    if v.encode("x") is None:
        pytest.skip("tokenizers not installed")
    # rare characters are split into several partial-UTF-8 tokens by every tokenizer here
    for ch in ["𝔘", "🦜", "ꙮ", "𓀀", "ᚠᛇᚻ", "ⱥ"]:
        ids = v.encode(ch)
        assert v.decode(ids) == ch.encode("utf-8")
        parts = [v.tokens[i] for i in ids]
        if len(ch) == 1 and len(parts) > 1:
            assert not all(_utf8_ok(p) for p in parts)


# ------------------------------------------------------------------------------------- encode


ROUND_TRIP = [
    "Hello, world!",
    '{"name": "get_weather", "arguments": {"city": "Zürich", "unit": "°C", "days": [1, 2, 3]}}',
    "日本語のテキストと中文混合 — ünïcödé",
    "emoji 🎉🚀 and a family 👩\u200d👩\u200d👧 and flags 🇫🇷",
    "  two leading spaces\n\ttab and newline\r\n",
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    "text with <|eot_id|> and <|im_end|> and </s> in it",
    "x" * 300,
    "",
]


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_encode_round_trip(name):
    v = load_vocab(name)
    if v.encode("x") is None:
        pytest.skip("tokenizers not installed")
    for s in ROUND_TRIP:
        assert unicodedata.normalize("NFC", s) == s  # Qwen3 normalizes to NFC
        ids = v.encode(s)
        assert v.decode(ids) == s.encode("utf-8"), (name, s, ids)
        assert not set(ids) & v.special_ids, f"special token produced from plain text {s!r}: {ids}"
        assert v.encode(s.encode("utf-8")) == ids
    if name == "qwen3":
        # non-special added tokens are ordinary text tokens, used by the encoder
        assert v.encode("<tool_call>") == [v.token_id("<tool_call>")]


@pytest.mark.parametrize("name", SPM_NAMES)
def test_spm_encode_prefix_space(name):
    """encode() adds no ▁; the tokenizer's own encode (Prepend ▁) equals encode(" " + text)."""
    v = load_vocab(name)
    tk = load_hf(name)
    if v.encode("x") is None:
        pytest.skip("tokenizers not installed")
    assert v.add_prefix_space
    for s in ROUND_TRIP[:5]:
        if "<" in s:
            continue
        assert v.encode(" " + s) == tk.encode(s, add_special_tokens=False).ids
        assert v.decode(v.encode(s)) == s.encode()


def _vectors(gguf_name: str):
    inp = data_path(f"{GGUF_DIR}/ggml-vocab-{gguf_name}.gguf.inp").read_text(encoding="utf-8")
    out = data_path(f"{GGUF_DIR}/ggml-vocab-{gguf_name}.gguf.out").read_text(encoding="utf-8")
    texts = inp.split("\n__ggml_vocab_test__\n")
    ids = [[int(x) for x in line.split()] for line in out.split("\n")]
    assert len(ids) >= len(texts)
    return list(zip(texts, ids))


@pytest.mark.parametrize("gguf_name", list(GGUF_PAIRS))
def test_encode_matches_llama_cpp_test_vectors(gguf_name):
    """llama.cpp's tokenizer test vectors (made with the HF tokenizers) for the matching tokenizer.json."""
    v = load_vocab(GGUF_PAIRS[gguf_name])
    if v.encode("x") is None:
        pytest.skip("tokenizers not installed")
    bad = []
    for text, expected in _vectors(gguf_name):
        # SentencePiece: the reference prepends ▁ (except to empty text); our encode is exact instead
        s = " " + text if (v.add_prefix_space and text) else text
        got = v.encode(s)
        if got != expected:
            bad.append((text, expected, got))
        assert v.decode(got) == s.encode("utf-8")
    assert not bad, bad[:3]


# ---------------------------------------------------------------------------------- per-tokenizer facts


def test_llama3_stop_and_special():
    v = load_vocab("llama3.1")
    assert (v.kind, v.n_tokens, v.size, v.add_prefix_space) == ("byte_level", 128256, 128256, False)
    assert v.special_ids == frozenset(range(128000, 128256))
    assert v.tokens[128009] == b"<|eot_id|>" and v.tokens[128001] == b"<|end_of_text|>"
    assert {128009, 128001} <= set(v.stop_ids)
    assert v.stop_ids[0] == 128009  # eos_token from tokenizer_config.json comes first
    assert v.tokens[128000] == b"<|begin_of_text|>" and 128000 not in v.stop_ids
    # The shared file carries Llama 3.0's special-token names: 128008 is <|reserved_special_token_4|>
    # (Llama 3.1 renamed it <|eom_id|>). <|eom_id|> is checked on a 3.1-style copy below.
    if v.tokens[128008] == b"<|eom_id|>":
        assert 128008 in v.stop_ids
    else:
        assert v.tokens[128008] == b"<|reserved_special_token_4|>" and 128008 not in v.stop_ids
    assert v.tokens[v.token_id(" hello")] == b" hello"
    assert v.decode(v.encode("Hello world")) == b"Hello world"


def test_llama31_eom_id_is_a_stop(tmp_path):
    """A Llama 3.1-style tokenizer.json (<|eom_id|> at 128008, <|python_tag|> at 128010)."""
    src = data_path(TOKENIZERS["llama3.1"])
    tj = json.loads(src.read_text(encoding="utf-8"))
    rename = {128008: "<|eom_id|>", 128010: "<|python_tag|>", 128002: "<|finetune_right_pad_id|>"}
    for a in tj["added_tokens"]:
        if a["id"] in rename:
            a["content"] = rename[a["id"]]
    d = tmp_path / "llama3.1-style"
    d.mkdir()
    (d / "tokenizer.json").write_text(json.dumps(tj), encoding="utf-8")
    (d / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|eot_id|>"}), encoding="utf-8")
    v = Vocabulary.from_tokenizer_json(d / "tokenizer.json")
    assert {128009, 128008, 128001} <= set(v.stop_ids)
    assert 128010 in v.special_ids and 128010 not in v.stop_ids
    assert v.tokens[128008] == b"<|eom_id|>"
    # generation_config.json's eos list is honoured too
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001, 128008, 128009]}))
    (d / "tokenizer_config.json").unlink()
    v2 = Vocabulary.from_tokenizer_json(d / "tokenizer.json")
    assert v2.stop_ids[:3] == (128001, 128008, 128009)


def test_qwen3_added_tokens():
    v = load_vocab("qwen3")
    assert (v.kind, v.n_tokens) == ("byte_level", 151669)
    assert v.special_ids == frozenset(range(151643, 151657))
    assert set(v.stop_ids) == {151645, 151643} and v.stop_ids[0] == 151645  # <|im_end|> first (eos_token)
    for i, text in [(151657, b"<tool_call>"), (151658, b"</tool_call>"), (151667, b"<think>"), (151668, b"</think>")]:
        assert v.tokens[i] == text and i not in v.special_ids  # added with special=false: ordinary text
    assert v.token_id("<tool_call>") == 151657


def test_deepseek_v3_logit_padding():
    v = Vocabulary.from_tokenizer_json(data_path(TOKENIZERS["deepseek-v3"]), vocab_size=129280)
    assert (v.size, v.n_tokens, len(v.tokens)) == (129280, 128815, 128815)
    assert v.stop_ids == (1,) and v.tokens[1] == "<｜end▁of▁sentence｜>".encode()
    assert {0, 1, 2} <= v.special_ids and 128000 in v.special_ids  # place holders are special
    tc = v.token_id("<｜tool▁calls▁begin｜>")
    assert tc == 128806 and tc not in v.special_ids  # special=false in the file: text
    assert v.decode([128814, 129279]) == "<｜tool▁sep｜>".encode()  # padding ids decode to nothing
    with pytest.raises(TokenizerError):
        v.decode([129280])
    assert v.hash() != load_vocab("deepseek-v3").hash()  # size is part of the key


def test_vocab_size_smaller_than_tokenizer_is_an_error():
    with pytest.raises(TokenizerError) as ei:
        Vocabulary.from_tokenizer_json(data_path(TOKENIZERS["deepseek-v3"]), vocab_size=128000)
    assert "128000" in str(ei.value) and "128815" in str(ei.value)


def test_sentencepiece_pieces():
    v = load_vocab("llama2")
    tk = load_hf("llama2")
    assert (v.kind, v.n_tokens, v.add_prefix_space) == ("sentencepiece", 32000, True)
    assert v.special_ids == frozenset({0, 1, 2}) and v.stop_ids == (2,)
    assert [v.tokens[i] for i in range(3)] == [b"<unk>", b"<s>", b"</s>"]
    assert v.tokens[tk.token_to_id("<0x0A>")] == b"\n"
    assert v.tokens[tk.token_to_id("<0xE2>")] == b"\xe2"  # byte fallback: one raw byte
    assert v.tokens[tk.token_to_id("▁the")] == b" the"
    assert v.tokens[tk.token_to_id("▁")] == b" "


def test_phi3_specials():
    v = load_vocab("phi-3")
    assert (v.kind, v.n_tokens, v.add_prefix_space) == ("sentencepiece", 32011, True)
    # </s> (id 2) is added with special=false in this file, but it is the SentencePiece EOS: a stop
    assert set(v.stop_ids) == {32000, 32007, 2} and v.stop_ids[0] == 32000
    assert v.special_ids == frozenset({0, 1, 2} | set(range(32000, 32011)))


def test_gpt2():
    v = load_vocab("gpt2")
    assert (v.kind, v.n_tokens, v.stop_ids, v.special_ids) == ("byte_level", 50257, (50256,), frozenset({50256}))
    assert v.tokens[v.token_id(" the")] == b" the"
    assert len(v.encode(" word" * 100)) == 100  # the file truncates at 50 tokens; our encoder does not


def test_from_tokenizer_json_timing():
    import time

    path = data_path(TOKENIZERS["llama3.1"])
    Vocabulary.from_tokenizer_json(path)  # warm the file cache
    t = time.perf_counter()
    v = Vocabulary.from_tokenizer_json(path)
    dt = time.perf_counter() - t
    assert v.n_tokens == 128256
    assert dt < 2.0, f"from_tokenizer_json took {dt:.2f}s on the 128k Llama 3 vocabulary"


# ------------------------------------------------------------------------------------------ GGUF


@pytest.mark.parametrize("gguf_name", list(GGUF_PAIRS))
def test_gguf_agrees_with_tokenizer_json(gguf_name):
    g = load_gguf(gguf_name)
    j = load_vocab(GGUF_PAIRS[gguf_name])
    assert (g.kind, g.add_prefix_space) == (j.kind, j.add_prefix_space)
    assert g.encode("x") is None  # no encoder for GGUF
    common = min(g.n_tokens, j.n_tokens)
    text = [i for i in range(common) if i not in g.special_ids and i not in j.special_ids]
    diff = [(i, g.tokens[i], j.tokens[i]) for i in text if g.tokens[i] != j.tokens[i]]
    sg = {i for i in g.special_ids if i < common}
    sj = {i for i in j.special_ids if i < common}
    if gguf_name == "llama-spm":
        # The Llama 2 SentencePiece model has 4 pieces made of U+00A0 (NBSP); the shared tokenizer.json
        # stores them with ASCII spaces. Each file decodes them its own way, and so do we.
        assert sorted(i for i, _, _ in diff) == [8655, 17891, 20246, 30081]
        assert all(a.replace("\u00a0".encode(), b" ") == b for _, a, b in diff)
    else:
        assert not diff, diff[:5]
    assert set(g.stop_ids) == set(j.stop_ids)
    if gguf_name == "qwen2":
        # qwen2's GGUF (151,936 entries = the model's logit width) knows only 3 control tokens; the other
        # ids past 151,645 are converter padding "[PAD<id>]" (holes). Qwen3's tokenizer.json defines
        # 151,646..151,668: 11 more specials and 12 text tokens (<tool_call>, <think>, ...).
        assert (g.n_tokens, g.size, j.n_tokens) == (151936, 151936, 151669)
        assert sg - sj == set(range(151657, 151669))  # holes in the GGUF, text tokens in Qwen3
        assert sj <= sg
        assert all(g.tokens[i] == b"" for i in range(151646, 151936))
        assert g.special_ids >= set(range(151643, 151936))
        assert len(text) == 151643
    elif gguf_name == "phi-3":
        # phi-3's GGUF pads to the model's 32,064 logits with "[PAD<id>]" (type UNKNOWN): holes
        assert (g.n_tokens, j.n_tokens) == (32064, 32011)
        assert all(g.tokens[i] == b"" and i in g.special_ids for i in range(32011, 32064))
        assert sg == sj
    else:
        assert g.n_tokens == j.n_tokens
        assert sg == sj


ALL_GGUF = ["llama-bpe", "qwen2", "llama-spm", "phi-3", "gpt-2", "deepseek-coder", "deepseek-llm", "command-r"]


@pytest.mark.parametrize("gguf_name", ALL_GGUF)
def test_gguf_decodes_llama_cpp_test_vectors(gguf_name):
    """Independent of tokenizers: the GGUF token bytes of llama.cpp's expected ids spell each input exactly
    (SentencePiece vocabularies: with the ▁ that the tokenizer prepends to non-empty text)."""
    v = load_gguf(gguf_name)
    for text, ids in _vectors(gguf_name):
        assert not set(ids) & v.special_ids
        expected = (" " + text if v.add_prefix_space and text else text).encode("utf-8")
        assert v.decode(ids) == expected, (text, ids)


def test_gguf_llama_bpe_stops():
    g = load_gguf("llama-bpe")
    assert g.stop_ids[0] == 128001  # tokenizer.ggml.eos_token_id
    assert 128009 in g.stop_ids  # <|eot_id|> by name
    assert g.size == 128256


def test_gguf_reader_matches_gguf_package():
    gguf = pytest.importorskip("gguf")
    path = data_path(f"{GGUF_DIR}/ggml-vocab-llama-spm.gguf")  # small: the gguf package is slow on big ones
    ours = vocabulary.read_gguf_metadata(path)
    r = gguf.GGUFReader(str(path))
    tok = r.fields["tokenizer.ggml.tokens"]
    typ = r.fields["tokenizer.ggml.token_type"]
    assert ours["tokenizer.ggml.tokens"] == [bytes(tok.parts[i]) for i in tok.data]
    assert ours["tokenizer.ggml.token_type"].tolist() == [int(typ.parts[i][0]) for i in typ.data]
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token"):
        assert ours[key] == r.fields[key].contents()
    assert ours["tokenizer.ggml.model"] == b"llama"


# ------------------------------------------------------------------------------- synthetic: from_tokens


def test_from_tokens_partial_utf8():
    toks = [b"\xe2", b"\x82", b"\xac", b"\xe2\x82", b"a", b" b", b"<|end|>", b"\xf0\x9f", b"\x8e\x89"]
    v = Vocabulary.from_tokens(toks, special_ids=[6], stop_ids=[6])
    assert (v.n_tokens, v.size, v.kind, v.add_prefix_space) == (9, 9, "raw", False)
    assert v.decode([0, 1, 2]) == "€".encode() == v.decode([3, 2])
    assert v.decode([7, 8]).decode() == "🎉"
    assert v.stop_ids == (6,) and 6 in v.special_ids
    assert v.decode([4, 6, 5]) == b"a<|end|> b"  # special tokens contribute their text
    assert v.encode("a") is None  # no encoder
    assert v.token_id(b"\xe2\x82") == 3 and v.token_id("nope") is None
    assert v.text_ids == [0, 1, 2, 3, 4, 5, 7, 8]
    assert v.special_mask().tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0]


def test_custom_encoder():
    v = Vocabulary([b"a", b"b", b"ab"], encoder=lambda s: [2] * (len(s) // 2) + [0] * (len(s) % 2), name="toy")
    assert v.encode("ababa") == [2, 2, 0] and v.decode(v.encode("ababa")) == b"ababa"
    assert v.encode(b"ab") == [2]
    with pytest.raises(TokenizerError):
        v.encode(b"\xff")  # encode() takes text: bytes must be UTF-8
    assert "toy" in repr(v)


def test_from_tokens_padding_holes_and_strs():
    v = Vocabulary.from_tokens(["a", None, b"", "é"], stop_ids=[0], vocab_size=8)
    assert v.tokens == [b"a", b"", b"", "é".encode()]
    assert v.special_ids == frozenset({0, 1, 2})  # stop ids and empty tokens are always special
    assert (v.n_tokens, v.size) == (4, 8)
    assert v.decode([3, 5, 7]) == "é".encode()
    assert v.is_special(5) and v.is_special(1) and not v.is_special(3)


def test_from_tokens_errors():
    with pytest.raises(TokenizerError) as ei:
        Vocabulary.from_tokens([b"a", b"b", b"c"], vocab_size=2)
    assert "2" in str(ei.value) and "3" in str(ei.value)
    with pytest.raises(TokenizerError):
        Vocabulary.from_tokens([b"a"], special_ids=[1])
    with pytest.raises(TokenizerError):
        Vocabulary.from_tokens([b"a"], stop_ids=[5])
    with pytest.raises(TokenizerError):
        Vocabulary.from_tokens([b"a", 3])
    with pytest.raises(TokenizerError):
        Vocabulary.from_tokens([])
    with pytest.raises(TokenizerError):
        Vocabulary.from_tokens(b"abc")
    with pytest.raises(TokenizerError):
        Vocabulary([b"a"], kind="wordpiece")
    with pytest.raises(TokenizerError):
        Vocabulary.from_tokens([b"a"]).decode([1])
    assert issubclass(TokenizerError, ValueError)


def test_hash_is_stable_and_sensitive():
    base = dict(special_ids=[2], stop_ids=[2], vocab_size=4)
    toks = [b"a", b"b", b"<e>"]
    h = Vocabulary.from_tokens(toks, **base).hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert Vocabulary.from_tokens(list(toks), **base).hash() == h
    assert Vocabulary.from_tokens(toks, **base) == Vocabulary.from_tokens(toks, **base)
    variants = [
        Vocabulary.from_tokens([b"a", b"c", b"<e>"], **base),
        Vocabulary.from_tokens([b"ab", b"", b"<e>"], **base),  # same concatenation, different split
        Vocabulary.from_tokens(toks, special_ids=[1, 2], stop_ids=[2], vocab_size=4),
        Vocabulary.from_tokens(toks, special_ids=[2], stop_ids=[], vocab_size=4),
        Vocabulary.from_tokens(toks, special_ids=[2], stop_ids=[2], vocab_size=5),
        Vocabulary.from_tokens(toks, add_prefix_space=True, **base),
    ]
    hashes = {v.hash() for v in variants}
    assert h not in hashes and len(hashes) == len(variants)


def test_byte_level_table():
    # GPT-2's map, spelled out independently: printable latin-1 maps to itself, the other 68 bytes to
    # U+0100.. in byte order ('Ġ' is space, 'Ċ' newline, 'ĉ' tab)
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    moved = [b for b in range(256) if b not in keep]
    expected = {b: chr(b) for b in keep}
    expected.update({b: chr(0x100 + k) for k, b in enumerate(moved)})
    assert vocabulary.bytes_to_unicode() == expected
    for b, c in expected.items():
        assert vocabulary.byte_level_decode(c) == bytes([b])
    assert vocabulary.byte_level_decode("ĠhelloĊĉ") == b" hello\n\t"
    assert vocabulary.byte_level_decode("a b") is None  # a literal space is not a byte-level character
    assert vocabulary.byte_level_decode("日") is None


# ------------------------------------------------------------------ synthetic: tokenizer.json variants


def _bl(s) -> str:
    """Byte-level spelling of text (str) or of raw bytes."""
    enc = vocabulary.bytes_to_unicode()
    return "".join(enc[b] for b in (s.encode("utf-8") if isinstance(s, str) else s))


def _byte_level_json(extra_added=()):
    pieces = [_bl(chr(c)) for c in range(128)] + [_bl(" hello"), _bl("é"), _bl(b"\xe2\x80")]
    assert _bl(b"\xe2\x80") == "\u00e2\u0122"  # part of a 3-byte character
    vocab = {p: i for i, p in enumerate(pieces)}
    n = len(vocab)
    added = [
        {"id": n, "content": "<|endoftext|>", "special": True},
        {"id": n + 1, "content": "<tool_call>", "special": False},
        {"id": n + 3, "content": "<|im_end|>", "special": True},  # leaves a hole at n + 2
    ] + list(extra_added)
    return {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": vocab, "merges": []},
    }, n


def test_synthetic_byte_level_json(tmp_path):
    tj, n = _byte_level_json()
    (tmp_path / "tokenizer.json").write_text(json.dumps(tj), encoding="utf-8")
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": n + 10}))
    v = Vocabulary.from_tokenizer_json(tmp_path / "tokenizer.json", tokenizer_config={"eos_token": {"content": "<|endoftext|>"}})
    assert v.name == tmp_path.name and v.kind == "byte_level"
    assert (v.n_tokens, v.size) == (n + 4, n + 10)  # size from config.json
    assert v.tokens[ord(" ")] == b" " and v.tokens[128] == b" hello" and v.tokens[129] == "é".encode()
    assert v.tokens[130] == b"\xe2\x80"
    assert v.tokens[n + 2] == b"" and n + 2 in v.special_ids  # hole
    assert v.tokens[n + 1] == b"<tool_call>" and n + 1 not in v.special_ids
    assert v.stop_ids == (n, n + 3)  # eos first, then <|im_end|> by name
    # explicit stop ids override, by id or by text
    v2 = Vocabulary.from_tokenizer_json(tmp_path, stop_ids=["<|im_end|>"], vocab_size=n + 4)
    assert v2.stop_ids == (n + 3,) and v2.size == n + 4
    assert n in v2.special_ids  # still special (added with special=true), just not a stop
    with pytest.raises(TokenizerError):
        Vocabulary.from_tokenizer_json(tmp_path, stop_ids=["<nope>"])
    if v.encode("x") is not None:
        assert v.decode(v.encode(" hello <tool_call>")) == b" hello <tool_call>"  # no merges: byte by byte


def test_synthetic_metaspace_unigram(tmp_path):
    pieces = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0], ["▁", -1.0], ["▁hello", -2.0], ["▁world", -2.0],
              ["h", -5.0], ["e", -5.0], ["l", -5.0], ["o", -5.0], ["w", -5.0], ["r", -5.0], ["d", -5.0]]
    pieces += [[f"<0x{b:02X}>", -10.0] for b in range(256)]
    tj = {
        "version": "1.0",
        "added_tokens": [
            {"id": 0, "content": "<unk>", "special": True},
            {"id": 1, "content": "<s>", "special": True},
            {"id": 2, "content": "</s>", "special": True},
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "post_processor": None,
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": 0, "vocab": pieces, "byte_fallback": True},
    }
    p = tmp_path / "tok.json"
    p.write_text(json.dumps(tj), encoding="utf-8")
    v = Vocabulary.from_tokenizer_json(p)
    assert v.name == "tok"
    assert (v.kind, v.add_prefix_space, v.n_tokens) == ("sentencepiece", True, 13 + 256)
    assert v.tokens[4] == b" hello" and v.tokens[3] == b" "
    assert v.tokens[13 + 0xE2] == b"\xe2"
    assert v.special_ids == frozenset({0, 1, 2}) and v.stop_ids == (2,)
    ids = v.encode("hello world")
    if ids is not None:
        assert v.decode(ids) == b"hello world"  # no ▁ prepended
        assert v.encode(" hello world") == [4, 5]
        assert v.decode(v.encode("€")) == "€".encode()  # byte fallback


def test_tokenizer_json_errors(tmp_path):
    missing = tmp_path / "nope" / "tokenizer.json"
    with pytest.raises(TokenizerError) as ei:
        Vocabulary.from_tokenizer_json(missing)
    assert str(missing) in str(ei.value)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerError) as ei:
        Vocabulary.from_tokenizer_json(bad)
    assert "bad.json" in str(ei.value) and "JSON" in str(ei.value)
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(TokenizerError, match="model"):
        Vocabulary.from_tokenizer_json(bad)
    bad.write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}}, "decoder": {"type": "WordPiece"}}))
    with pytest.raises(TokenizerError, match="WordPiece"):
        Vocabulary.from_tokenizer_json(bad)
    bad.write_text(json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}))
    with pytest.raises(TokenizerError, match="token id 0"):
        Vocabulary.from_tokenizer_json(bad)
    tj, _ = _byte_level_json()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(tj))
    with pytest.raises(TokenizerError, match="does not exist"):
        Vocabulary.from_tokenizer_json(good, tokenizer_config=tmp_path / "missing_config.json")


def test_from_hf_tokenizers_object():
    tokenizers = pytest.importorskip("tokenizers")
    tk = tokenizers.Tokenizer.from_file(str(data_path(TOKENIZERS["gpt2"])))
    v = Vocabulary.from_hf(tk)
    ref = load_vocab("gpt2")
    assert v.tokens == ref.tokens and v.special_ids == ref.special_ids and v.stop_ids == ref.stop_ids
    assert v.hash() == ref.hash()
    assert v.decode(v.encode("hello " * 40)) == b"hello " * 40
    assert tk.truncation is not None  # the caller's tokenizer is not modified (the encoder is a copy)


def test_from_hf_rejects_slow_tokenizers():
    with pytest.raises(TokenizerError, match="slow"):
        Vocabulary.from_hf(object())


def test_from_hf_transformers():
    pytest.importorskip("transformers")
    from transformers import PreTrainedTokenizerFast

    path = data_path(TOKENIZERS["phi-3"])
    hf = PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token="<|end|>")
    v = Vocabulary.from_hf(hf, vocab_size=32064)
    ref = load_vocab("phi-3")
    assert v.tokens == ref.tokens and v.size == 32064 and v.add_prefix_space
    assert v.stop_ids[0] == 32007  # the HF tokenizer's eos_token comes first
    assert set(v.stop_ids) == set(ref.stop_ids)
    assert v.decode(v.encode("Hi there")) == b"Hi there"


# ---------------------------------------------------------------------------- synthetic GGUF files


def _gguf_bytes(kv: list, version: int = 3) -> bytes:
    """A minimal GGUF (no tensors) from [(key, type, value)] with type 'str', 'u32', 'bool', 'strs', 'i32s'."""

    def s(x: bytes) -> bytes:
        return struct.pack("<Q", len(x)) + x

    out = [b"GGUF", struct.pack("<IQQ", version, 0, len(kv))]
    for key, typ, val in kv:
        out.append(s(key.encode()))
        if typ == "str":
            out += [struct.pack("<I", 8), s(val)]
        elif typ == "u32":
            out += [struct.pack("<I", 4), struct.pack("<I", val)]
        elif typ == "bool":
            out += [struct.pack("<I", 7), struct.pack("<?", val)]
        elif typ == "strs":
            out += [struct.pack("<IIQ", 9, 8, len(val))] + [s(x) for x in val]
        elif typ == "i32s":
            out += [struct.pack("<IIQ", 9, 5, len(val)), struct.pack(f"<{len(val)}i", *val)]
        elif typ == "f32s":
            out += [struct.pack("<IIQ", 9, 6, len(val)), struct.pack(f"<{len(val)}f", *val)]
    return b"".join(out)


def test_synthetic_gguf_spm(tmp_path):
    toks = [b"<unk>", b"<s>", b"</s>", b"<0x0A>", b"<0xE2>", "▁hello".encode(), b"world", b"<tool>",
            b"<|unused|>", b"[PAD9]"]
    types_ = [2, 3, 3, 6, 6, 1, 1, 4, 5, 4]
    p = tmp_path / "spm.gguf"
    p.write_bytes(_gguf_bytes([
        ("general.name", "str", b"tiny-spm"),
        ("tokenizer.ggml.model", "str", b"llama"),
        ("tokenizer.ggml.tokens", "strs", toks),
        ("tokenizer.ggml.scores", "f32s", [0.0] * len(toks)),
        ("tokenizer.ggml.token_type", "i32s", types_),
        ("tokenizer.ggml.eos_token_id", "u32", 2),
        ("tokenizer.ggml.add_space_prefix", "bool", False),
    ]))
    v = Vocabulary.from_gguf(p, vocab_size=16)
    assert (v.name, v.kind, v.add_prefix_space, v.n_tokens, v.size) == ("tiny-spm", "sentencepiece", False, 10, 16)
    assert v.tokens == [b"<unk>", b"<s>", b"</s>", b"\n", b"\xe2", b" hello", b"world", b"<tool>", b"<|unused|>", b""]
    assert v.special_ids == frozenset({0, 1, 2, 8, 9})  # unknown, control, unused, [PAD] hole
    assert v.stop_ids == (2,)
    assert Vocabulary.from_gguf(p, stop_ids=[7]).stop_ids == (7,)


def test_synthetic_gguf_byte_level_and_errors(tmp_path):
    toks = [_bl(x).encode() for x in ["a", " b", "\n"]] + [b"<|endoftext|>", b"<|eot_id|>", "õ".encode()]
    p = tmp_path / "bpe.gguf"
    p.write_bytes(_gguf_bytes([
        ("tokenizer.ggml.model", "str", b"gpt2"),
        ("tokenizer.ggml.tokens", "strs", toks),
        ("tokenizer.ggml.token_type", "i32s", [1, 1, 1, 3, 3, 4]),
        ("tokenizer.ggml.eos_token_id", "u32", 3),
    ], version=2))
    v = Vocabulary.from_gguf(p)
    assert (v.name, v.kind, v.add_prefix_space) == ("bpe", "byte_level", False)
    assert v.tokens == [b"a", b" b", b"\n", b"<|endoftext|>", b"<|eot_id|>", "õ".encode()]
    assert v.stop_ids == (3, 4) and v.special_ids == frozenset({3, 4})  # user-defined õ is literal text

    with pytest.raises(TokenizerError) as ei:
        Vocabulary.from_gguf(tmp_path / "missing.gguf")
    assert "missing.gguf" in str(ei.value)
    notg = tmp_path / "not.gguf"
    notg.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(TokenizerError, match="not a GGUF"):
        Vocabulary.from_gguf(notg)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(TokenizerError):
        Vocabulary.from_gguf(empty)
    trunc = tmp_path / "trunc.gguf"
    trunc.write_bytes(p.read_bytes()[:60])
    with pytest.raises(TokenizerError, match="truncated"):
        Vocabulary.from_gguf(trunc)
    bert = tmp_path / "bert.gguf"
    bert.write_bytes(_gguf_bytes([("tokenizer.ggml.model", "str", b"bert"), ("tokenizer.ggml.tokens", "strs", [b"a"])]))
    with pytest.raises(TokenizerError, match="bert"):
        Vocabulary.from_gguf(bert)
    notok = tmp_path / "notok.gguf"
    notok.write_bytes(_gguf_bytes([("general.name", "str", b"x")]))
    with pytest.raises(TokenizerError, match="no tokenizer"):
        Vocabulary.from_gguf(notok)


# ------------------------------------------------------------------------------ vocabulary facts


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_vocabulary_shape(name):
    """Counts that the engine relies on; documented in docs/vocabulary.md."""
    v = load_vocab(name)
    expected = {
        # name: (n_tokens, special, stops, partial-UTF-8 text tokens, text tokens duplicating another's bytes)
        "llama3.1": (128256, 256, 2, 1352, 0),
        "qwen3": (151669, 14, 2, 1448, 0),
        "deepseek-v3": (128815, 804, 1, 1470, 0),
        "llama2": (32000, 3, 1, 128, 100),
        "phi-3": (32011, 14, 3, 128, 96),
        "gpt2": (50257, 1, 1, 344, 0),
    }[name]
    text = v.text_ids
    partial = sum(1 for i in text if not _utf8_ok(v.tokens[i]))
    dups = sum(c - 1 for c in Counter(v.tokens[i] for i in text).values() if c > 1)
    assert (v.n_tokens, len(v.special_ids), len(v.stop_ids), partial, dups) == expected
    assert set(v.stop_ids) <= v.special_ids
    assert all(v.tokens[i] for i in text)  # no empty text token
    assert v.size == v.n_tokens == len(v.tokens)
