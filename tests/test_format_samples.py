"""Real data for the tool-call formats: the assistant turns of Functionary's rendered prompt tests and of
Mistral's token-level samples are accepted token by token under the grammar compiled from their own tools,
and parse back into their own calls.

* Functionary (MeetKai/functionary@e240e8c tests/): prompt_test_{v1,v2,v2.llama3,v3.llama3,v3-llama3.1}.txt
  rendered from test_case_v1.json (v1) and test_case.json (the others; its tools include
  ``{"type": "code_interpreter"}``, so the turns hold code-interpreter segments). Each assistant turn is the
  text after the generation prompt up to and including its end token, tokenized with the family's tokenizer
  (Llama 2 + Functionary's added tokens for v1/v2; Llama 3.1 for the others, with <|eom_id|> and
  <|python_tag|> at their Llama 3.1 ids 128008/128010: the shared tokenizer.json has the Llama 3.0 names).
* Mistral (mistralai/mistral-common@bc022b9 tests/data/samples/): tokens_v3.json are the token ids
  mistral-common's InstructTokenizerV3 produces with mistral_instruct_tokenizer_240323.model.v3; the
  vocabulary is read from that SentencePiece model (a small protobuf reader below, no sentencepiece needed).
  The assistant parts are the ids after each [/INST] or [/TOOL_RESULTS] up to and including </s>.
"""
from __future__ import annotations

import json
import re
import struct

import pytest

import fcgrammar as fcg
from fcgrammar.render import render

from conftest import TOKENIZERS, data_path
from walks import random_walk

FUNCTIONARY = "function-calling/functionary"


# ------------------------------------------------------------------------------------ helpers
def _accepts(grammar, ids):
    m = fcg.Matcher(grammar)
    n = m.validate_tokens(ids)
    if n < len(ids):
        return False, n
    return (m.accept_tokens(ids) and m.is_terminated()), len(ids)


def _tokenize(text, vocab, encode):
    """Text with special tokens written out → ids (specials by id, the text between through ``encode``)."""
    table = {}
    for i in vocab.special_ids:
        b = vocab.tokens[i]
        if b:
            table.setdefault(b.decode("utf-8", "replace"), i)
    pat = re.compile("|".join(re.escape(t) for t in sorted(table, key=len, reverse=True)))
    ids, pos = [], 0
    for m in pat.finditer(text):
        if m.start() > pos:
            ids += encode(text[pos:m.start()])
        ids.append(table[m.group(0)])
        pos = m.end()
    if pos < len(text):
        ids += encode(text[pos:])
    return ids


def _with_specials(base, extra=(), rename=None, name=""):
    """``base`` plus extra special tokens appended, and some special tokens renamed (id → new text)."""
    toks = list(base.tokens)
    specials = set(base.special_ids)
    for i, t in (rename or {}).items():
        toks[i] = t.encode()
        specials.add(i)
    n = len(toks)
    toks += [e.encode() for e in extra]
    specials |= set(range(n, n + len(extra)))
    return fcg.Vocabulary.from_tokens(toks, special_ids=specials, stop_ids=base.stop_ids,
                                      add_prefix_space=base.add_prefix_space, name=name)


_VOCABS = {}

V1_TOKENS = ["<|START_OF_FUNCTION_CALL|>", "<|END_OF_FUNCTION_CALL|>", "<|END_OF_ASSISTANT|>", "<|END_OF_SYSTEM|>",
             "<|END_OF_USER|>", "<|END_OF_FUNCTION_RESULT|>"]
V2_TOKENS = ["<|from|>", "<|recipient|>", "<|content|>", "<|stop|>"]


def _vocab(kind):
    if kind not in _VOCABS:
        if kind == "llama3.1":
            base = fcg.Vocabulary.from_tokenizer_json(data_path(TOKENIZERS["llama3.1"]))
            # Llama 3.1 ids (meta-llama/llama-models tokenizer.py; formats.md): the shared file has 3.0 names
            vocab = _with_specials(base, rename={128008: "<|eom_id|>", 128010: "<|python_tag|>"}, name="llama3.1")
        else:
            base = fcg.Vocabulary.from_tokenizer_json(data_path(TOKENIZERS["llama2"]))
            vocab = _with_specials(base, V1_TOKENS if kind == "llama2+v1" else V2_TOKENS, name=kind)
        if base.encode("x") is None:
            pytest.skip(f"no encoder for {kind} (the tokenizers package is needed)")
        _VOCABS[kind] = (vocab, fcg.Compiler(vocab), base.encode)
    return _VOCABS[kind]


def _expected_calls(msg):
    """(name, arguments) of a test case's message; code-interpreter calls as {"code": raw code}."""
    calls = list(msg.get("tool_calls") or [])
    if msg.get("function_call"):
        calls.append({"function": msg["function_call"]})
    out = []
    for c in calls:
        f = c["function"]
        if f["name"] == "python":
            out.append(("python", {"code": f["arguments"]}))
        else:
            out.append((f["name"], json.loads(f["arguments"])))
    return out


def _got_calls(parsed):
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in parsed.get("tool_calls", [])]


# ------------------------------------------------------------------------------------ Functionary
# file, preset, test case, vocabulary, generation prompt (the assistant turn starts after it)
FUNCTIONARY_CASES = [
    ("prompt_test_v1.txt", "functionary-v1", "test_case_v1.json", "llama2+v1", "assistant:"),
    ("prompt_test_v2.txt", "functionary-v2", "test_case.json", "llama2+v2", "\n<|from|>assistant\n<|recipient|>"),
    ("prompt_test_v2.llama3.txt", "functionary-v2.5", "test_case.json", "llama3.1",
     "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("prompt_test_v3.llama3.txt", "functionary-v3", "test_case.json", "llama3.1",
     "<|start_header_id|>assistant<|end_header_id|>\n\n>>>"),
    ("prompt_test_v3-llama3.1.txt", "functionary-v3.1", "test_case.json", "llama3.1",
     "<|start_header_id|>assistant<|end_header_id|>\n\n"),
]


def _assistant_turns(text, gen_prompt, ends):
    """Each text after ``gen_prompt`` up to and including the first of ``ends`` (an end-of-turn token)."""
    out, pos = [], 0
    while True:
        i = text.find(gen_prompt, pos)
        if i == -1:
            return out
        start = i + len(gen_prompt)
        stop = min((j + len(e) for e in ends for j in [text.find(e, start)] if j != -1), default=len(text))
        out.append(text[start:stop])
        pos = stop


@pytest.mark.parametrize("fname,preset,case,vocab_kind,gen_prompt", FUNCTIONARY_CASES,
                         ids=[c[1] for c in FUNCTIONARY_CASES])
def test_functionary_prompt_tests(fname, preset, case, vocab_kind, gen_prompt):
    text = data_path(f"{FUNCTIONARY}/{fname}").read_text(encoding="utf-8")
    tc = json.loads(data_path(f"{FUNCTIONARY}/{case}").read_text(encoding="utf-8"))
    vocab, compiler, encode = _vocab(vocab_kind)
    functions = tc.get("functions")
    if functions:
        # test_case_v1.json's get_car_price has "required": ["get_car_price"] (the function's name, not a
        # property). Functionary ignores it (the prompt renders `car_name?: string`) and so does its gold
        # call; JSON Schema would demand a "get_car_price" key. Drop required names that aren't properties.
        functions = json.loads(json.dumps(functions))
        for f in functions:
            p = f.get("parameters") or {}
            if "required" in p:
                p["required"] = [r for r in p["required"] if r in p.get("properties", {})]
    g = compiler.compile_tools(tc.get("tools"), format=preset, tool_choice="auto", functions=functions)
    fmt = fcg.formats.get(preset)
    ends = list(dict.fromkeys(fmt.end_text + fmt.end_calls))
    turns = _assistant_turns(text, gen_prompt, ends)
    expected = [m for m in tc["messages"] if m["role"] == "assistant"]
    assert len(turns) == len(expected), (preset, len(turns), len(expected))
    n_code = 0
    for turn, msg in zip(turns, expected):
        ids = _tokenize(turn, vocab, encode)
        ok, n = _accepts(g, ids)
        assert ok, (preset, turn, "rejected at token", n, vocab.tokens[ids[n]] if n < len(ids) else "<end>")
        parsed = fcg.parse(g, ids)
        assert _got_calls(parsed) == _expected_calls(msg), (preset, turn, parsed)
        assert (parsed["content"] or None) == (msg.get("content") or None), (preset, turn, parsed)
        n_code += sum(1 for c in _expected_calls(msg) if c[0] == "python")
        # streaming: the deltas add up to the same calls (code arrives as a growing {"code": ...} string)
        sp = fcg.StreamingParser(g)
        deltas = [d for t in ids for d in sp.feed([t])] + sp.finish()
        for i, (name, args) in enumerate(_got_calls(parsed)):
            frags = [tc["function"] for d in deltas for tc in d.get("tool_calls", []) if tc["index"] == i]
            assert frags[0]["name"] == name
            assert json.loads("".join(f.get("arguments", "") for f in frags)) == args
        # and the turn is what render() writes for the test case's message (the canonical spelling);
        # v1's messages use the legacy function_call with pre-indented arguments, written verbatim by
        # Functionary, while render() writes compact JSON
        if not msg.get("function_call"):
            assert render(g, msg, encode=str) == turn, (preset, turn)
    if "code_interpreter" in json.dumps(tc.get("tools")):
        assert n_code == 2


# ------------------------------------------------------------------------------------ Mistral
MISTRAL = "tokenizers/mistral-7b-v0.3"
MISTRAL_SAMPLES = ["get_weather_full", "get_weather_no_history", "get_weather_no_system_prompt", "no_tools",
                   "parallel_calls", "several_calls"]


def _varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def _fields(buf):
    """(field number, wire type, value) of one protobuf message (value: int, bytes or float)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = _varint(buf, i)
        elif w == 1:
            v, i = buf[i:i + 8], i + 8
        elif w == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif w == 5:
            v, i = struct.unpack("<f", buf[i:i + 4])[0], i + 4
        else:
            raise ValueError(f"protobuf wire type {w} not supported")
        yield f, w, v


def sentencepiece_vocab(path):
    """A Vocabulary from a SentencePiece ``.model`` (ModelProto: field 1 = pieces {1: piece, 2: score,
    3: type}; type 2 unknown, 3 control, 6 byte ``<0xNN>``; ``▁`` is a space)."""
    toks, specials = [], set()
    for f, w, v in _fields(path.read_bytes()):
        if f != 1 or w != 2:
            continue
        piece, typ = "", 1
        for f2, _, v2 in _fields(v):
            if f2 == 1:
                piece = v2.decode("utf-8")
            elif f2 == 3:
                typ = v2
        if typ in (2, 3):
            specials.add(len(toks))
            toks.append(piece.encode())
        elif typ == 6 and re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):
            toks.append(bytes([int(piece[3:5], 16)]))
        else:
            toks.append(piece.replace("\u2581", " ").encode())
    eos = toks.index(b"</s>")
    return fcg.Vocabulary.from_tokens(toks, special_ids=specials, stop_ids=[eos], add_prefix_space=True,
                                      name="mistral-v3-spm")


@pytest.fixture(scope="module")
def mistral():
    vocab = sentencepiece_vocab(data_path(f"{MISTRAL}/tokenizer.model.v3"))
    return vocab, fcg.Compiler(vocab)


def test_mistral_vocabulary_matches_sentencepiece(mistral):
    vocab, _ = mistral
    assert vocab.n_tokens == 32768
    for i, t in [(1, b"<s>"), (2, b"</s>"), (3, b"[INST]"), (4, b"[/INST]"), (5, b"[TOOL_CALLS]")]:
        assert vocab.tokens[i] == t and i in vocab.special_ids
    spm = pytest.importorskip("sentencepiece")
    sp = spm.SentencePieceProcessor(model_file=str(data_path(f"{MISTRAL}/tokenizer.model.v3")))
    for i in range(0, sp.get_piece_size(), 97):
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i)):
            assert vocab.tokens[i] == sp.id_to_piece(i).replace("\u2581", " ").encode(), i


def _mistral_assistant_parts(ids, vocab):
    """The ids after each [/INST] / [/TOOL_RESULTS] up to and including </s> (turns that end otherwise are
    the prompt's last, unanswered one)."""
    tid = {vocab.tokens[i]: i for i in vocab.special_ids}
    starts = {tid[b"[/INST]"], tid[b"[/TOOL_RESULTS]"]}
    eos = tid[b"</s>"]
    out, cur = [], None
    for t in ids:
        if t in starts:
            cur = []
        elif cur is not None:
            cur.append(t)
            if t == eos:
                out.append(cur)
                cur = None
    return out


@pytest.mark.parametrize("sample", MISTRAL_SAMPLES)
def test_mistral_v3_token_samples(mistral, sample):
    vocab, compiler = mistral
    s = json.loads(data_path(f"{MISTRAL}/samples/{sample}/sample.json").read_text(encoding="utf-8"))
    ids = json.loads(data_path(f"{MISTRAL}/samples/{sample}/tokens_v3.json").read_text(encoding="utf-8"))["tokens"]
    parts = _mistral_assistant_parts(ids, vocab)
    expected = [m for m in s["messages"] if m["role"] == "assistant"]
    assert len(parts) == len(expected), (sample, len(parts), len(expected))
    tools = s.get("tools") or None
    g = compiler.compile_tools(tools, format="mistral-v3", tool_choice="auto")
    for part, msg in zip(parts, expected):
        ok, n = _accepts(g, part)
        assert ok, (sample, vocab.decode(part) if hasattr(vocab, "decode") else part, "rejected at", n)
        parsed = fcg.parse(g, part)
        want = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in msg.get("tool_calls") or []]
        assert _got_calls(parsed) == want, (sample, parsed)
        assert [c["id"] for c in parsed.get("tool_calls", [])] == [c["id"] for c in msg.get("tool_calls") or []]
        assert (parsed["content"] or None) == (msg.get("content") or None), (sample, parsed)
        if msg.get("tool_calls"):  # the preset's canonical spelling is the sample's
            text = b"".join(vocab.tokens[t] for t in part).decode("utf-8")
            assert render(g, msg, encode=str) == text, (sample, text)


# ------------------------------------------------------------------------------------ code interpreter
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CODE = {"type": "code_interpreter"}


def _code_call(code):
    return {"type": "function", "function": {"name": "python", "arguments": json.dumps({"code": code})}}


def _fn_call(city):
    return {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}


@pytest.mark.parametrize("preset", ["functionary-v3", "functionary-v3.1", "functionary-v2.5"])
def test_code_interpreter_semantics(preset):
    vocab, compiler, encode = _vocab("llama3.1")
    g = compiler.compile_tools([WEATHER, CODE], format=preset)
    code = "import math\nx = [1, 2]  # >> not a delimiter\nprint(math.pi, x)\n"
    msg = {"role": "assistant", "content": "Let me compute.",
           "tool_calls": [_code_call(code), _fn_call("Oslo"), _code_call("print(1)")]}
    ids = render(g, msg, encode=encode)
    assert _accepts(g, ids)[0], render(g, msg, encode=str)
    out = fcg.parse(g, ids)
    assert out["content"] == "Let me compute."
    assert _got_calls(out) == [("python", {"code": code}), ("get_weather", {"city": "Oslo"}),
                               ("python", {"code": "print(1)"})]
    only_code = render(g, {"role": "assistant", "content": None, "tool_calls": [_code_call("1+1")]}, encode=encode)
    # tool_choice: none never runs code; a named function excludes it; "python" names the code interpreter
    for choice, ok in [("none", False), ("required", True), ({"type": "function", "function": {"name": "get_weather"}},
                       False), ({"type": "function", "function": {"name": "python"}}, True),
                       ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [CODE]}}, True),
                       ({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [WEATHER]}}, False)]:
        gc = compiler.compile_tools([WEATHER, CODE], format=preset, tool_choice=choice)
        assert _accepts(gc, only_code)[0] == ok, (preset, choice)
    # without a code_interpreter tool there is no code segment
    g_fn = compiler.compile_tools([WEATHER], format=preset)
    assert not _accepts(g_fn, only_code)[0]
    # code alone is a tool list too
    g_code = compiler.compile_tools([CODE], format=preset, tool_choice="required")
    assert _accepts(g_code, only_code)[0]
    assert _got_calls(fcg.parse(g_code, only_code)) == [("python", {"code": "1+1"})]
    # parallel_tool_calls=False: one call, code included
    g_one = compiler.compile_tools([WEATHER, CODE], format=preset, parallel_tool_calls=False)
    assert _accepts(g_one, only_code)[0] and not _accepts(g_one, ids)[0]


def test_code_cannot_hold_the_delimiters():
    vocab, compiler, encode = _vocab("llama3.1")
    g = compiler.compile_tools([WEATHER, CODE], format="functionary-v3")
    eot = 128009
    ok = encode("python\nprint('a')>>>get_weather\n{\"city\": \"X\"}") + [eot]  # '>>>' ends the code
    assert _accepts(g, ok)[0]
    assert _got_calls(fcg.parse(g, ok)) == [("python", {"code": "print('a')"}), ("get_weather", {"city": "X"})]
    bad = encode("python\nprint('>>>')")  # so the code can't spell it
    assert fcg.Matcher(g).validate_tokens(bad) < len(bad)
    g31 = compiler.compile_tools([WEATHER, CODE], format="functionary-v3.1")
    bad = [128010] + encode("s = '<function=get_weather>'")
    assert fcg.Matcher(g31).validate_tokens(bad) < len(bad)


def test_code_interpreter_needs_a_format_with_code():
    vocab, compiler, _ = _vocab("llama3.1")
    with pytest.raises(fcg.SchemaError) as e:
        compiler.compile_tools([WEATHER, CODE], format="llama3-json")
    assert e.value.pointer == "/tools/1/type" and "code-interpreter" in str(e.value)
    with pytest.raises(fcg.SchemaError):  # its name is taken
        compiler.compile_tools([CODE, {"type": "function", "function": {"name": "python"}}], format="functionary-v3")


def test_code_interpreter_streaming_and_walks():
    import random

    vocab, compiler, _ = _vocab("llama3.1")
    rng = random.Random(7)
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    for preset in ["functionary-v3", "functionary-v3.1"]:
        g = compiler.compile_tools([WEATHER, CODE], format=preset, tool_choice="required")
        for _ in range(3):
            ids = random_walk(fcg.Matcher(g, max_tokens=60), rng, vocab.size, mask)
            msg = fcg.parse(g, ids)
            assert msg["tool_calls"]
            sp = fcg.StreamingParser(g)
            deltas = [d for t in ids for d in sp.feed([t])] + sp.finish()
            for i, c in enumerate(msg["tool_calls"]):
                frags = [tc["function"] for d in deltas for tc in d.get("tool_calls", []) if tc["index"] == i]
                assert frags[0]["name"] == c["function"]["name"]
                assert json.loads("".join(f.get("arguments", "") for f in frags)) == json.loads(
                    c["function"]["arguments"])
