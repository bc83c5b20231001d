"""fcgrammar.hf against real transformers: a tiny random-weight Llama (built here) with the real Llama 3.1
tokenizer. Random weights make the model an adversary: whatever the mask lets through, it will emit."""
from __future__ import annotations

import json
import warnings

import pytest

from conftest import data_path
from tool_messages import check_tool_message

torch = pytest.importorskip("torch", reason="fcgrammar.hf needs torch (pip install torch)")
transformers = pytest.importorskip("transformers", reason="fcgrammar.hf tests need transformers")
jsonschema = pytest.importorskip("jsonschema", reason="tests validate outputs with jsonschema")

import fcgrammar as fcg  # noqa: E402
from fcgrammar import hf as fhf  # noqa: E402

VOCAB_SIZE = 128_320  # Llama 3.1 has 128,256 ids: the model's extra 64 logits are padding, never allowed

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}

SCHEMA2 = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string", "maxLength": 5},
                                                       "maxItems": 2}},
    "required": ["ok", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def tokenizer():
    path = data_path("tokenizers/llama3.1/tokenizer.json")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token="<|eot_id|>",
                                               bos_token="<|begin_of_text|>")
    cfg = path.parent / "tokenizer_config.json"
    if cfg.exists():
        tok.chat_template = json.loads(cfg.read_text())["chat_template"]
    return tok


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1234)
    cfg = transformers.LlamaConfig(vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                                   tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128009)
    m = transformers.LlamaForCausalLM(cfg).eval()
    # Sharpen the random logits so that sampling is adversarial but not uniform noise.
    with torch.no_grad():
        m.model.embed_tokens.weight.mul_(20.0)
    return m


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return fhf.vocabulary(tokenizer, VOCAB_SIZE)


@pytest.fixture(scope="module")
def grammar(vocab):
    return fcg.Compiler(vocab).compile_json_schema(SCHEMA)


@pytest.fixture(scope="module")
def grammar2(vocab):
    return fcg.Compiler(vocab).compile_json_schema(SCHEMA2)


def _prompt(tokenizer, text="Weather in Paris for three days, please:"):
    return tokenizer(text, return_tensors="pt").input_ids


def _completion(tokenizer, grammar, row) -> str:
    ids = row.tolist()
    stops = set(grammar.stop_ids)
    assert any(t in stops for t in ids), f"row never emitted a stop token: {ids}"
    cut = next(k for k, t in enumerate(ids) if t in stops)
    return grammar.vocab.decode(ids[:cut]).decode("utf-8")


def _check(text, schema):
    value = json.loads(text)
    jsonschema.validate(value, schema)
    return value


def test_import_fcgrammar_does_not_import_engines():
    import subprocess
    import sys

    code = ("import sys, fcgrammar; bad = [m for m in ('torch', 'transformers', 'llama_cpp', 'sglang') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_greedy_output_parses_and_validates(model, tokenizer, grammar):
    ids = _prompt(tokenizer)
    proc = fhf.LogitsProcessor(grammar)
    out = model.generate(ids, logits_processor=[proc], eos_token_id=grammar.stop_ids, pad_token_id=128004,
                         max_new_tokens=60, do_sample=False)
    _check(_completion(tokenizer, grammar, out[0, ids.shape[1]:]), SCHEMA)
    assert proc.budget == 60  # taken from generate's max_new_tokens
    assert proc.finished == [True]
    # unconstrained, the same random model does not produce JSON
    free = model.generate(ids, max_new_tokens=20, do_sample=False, pad_token_id=128004)
    with pytest.raises(Exception):
        _check(tokenizer.decode(free[0, ids.shape[1]:]), SCHEMA)


def test_sampling_many_seeds_and_reuse_across_generate_calls(model, tokenizer, grammar):
    ids = _prompt(tokenizer)
    proc = fhf.LogitsProcessor(grammar)  # one processor, reused by every call
    seen = set()
    for seed in range(4):
        torch.manual_seed(seed)
        out = model.generate(ids, logits_processor=[proc], eos_token_id=grammar.stop_ids, pad_token_id=128004,
                             max_new_tokens=48, do_sample=True, temperature=1.5, top_k=0, top_p=1.0)
        text = _completion(tokenizer, grammar, out[0, ids.shape[1]:])
        _check(text, SCHEMA)
        seen.add(text)
    assert len(seen) > 1  # sampling really varied the outputs


def test_batched_rows_finish_independently(model, tokenizer, grammar):
    tokenizer.pad_token = "<|reserved_special_token_2|>"
    tokenizer.padding_side = "left"
    enc = tokenizer(["Paris?", "A much longer prompt about the weather in Lyon for a week:", "Oslo"],
                    return_tensors="pt", padding=True)
    proc = fhf.LogitsProcessor(grammar)
    torch.manual_seed(7)
    out = model.generate(**enc, logits_processor=[proc], eos_token_id=grammar.stop_ids,
                         pad_token_id=tokenizer.pad_token_id, max_new_tokens=64, do_sample=True, temperature=1.3)
    P = enc["input_ids"].shape[1]
    lengths = []
    for r in range(3):
        row = out[r, P:]
        _check(_completion(tokenizer, grammar, row), SCHEMA)
        ids = row.tolist()
        end = next(k for k, t in enumerate(ids) if t in grammar.stop_ids)
        assert all(t == tokenizer.pad_token_id for t in ids[end + 1:])  # finished rows only get padding
        lengths.append(end)
    assert all(proc.finished)
    assert len(proc.matchers) == 3
    # the same processor then serves a batch of one (a new generation is detected)
    ids1 = _prompt(tokenizer)
    out = model.generate(ids1, logits_processor=[proc], eos_token_id=grammar.stop_ids, pad_token_id=128004,
                         max_new_tokens=48, do_sample=False)
    _check(_completion(tokenizer, grammar, out[0, ids1.shape[1]:]), SCHEMA)
    assert len(proc.matchers) == 1


def test_one_grammar_per_row(model, tokenizer, grammar, grammar2):
    tokenizer.pad_token = "<|reserved_special_token_2|>"
    tokenizer.padding_side = "left"
    enc = tokenizer(["first", "second one"], return_tensors="pt", padding=True)
    proc = fhf.LogitsProcessor([grammar, grammar2])
    torch.manual_seed(3)
    out = model.generate(**enc, logits_processor=[proc], eos_token_id=grammar.stop_ids,
                         pad_token_id=tokenizer.pad_token_id, max_new_tokens=64, do_sample=True)
    P = enc["input_ids"].shape[1]
    _check(_completion(tokenizer, grammar, out[0, P:]), SCHEMA)
    _check(_completion(tokenizer, grammar2, out[1, P:]), SCHEMA2)


@pytest.mark.parametrize("budget", [24, 32])
def test_budget_from_max_new_tokens_always_completes(model, tokenizer, grammar, budget):
    # Strings and whitespace could run forever; the budget makes every sampled row end complete in time.
    ids = _prompt(tokenizer)
    proc = fhf.LogitsProcessor(grammar)
    for seed in range(4):
        torch.manual_seed(100 + seed)
        out = model.generate(ids, logits_processor=[proc], eos_token_id=grammar.stop_ids, pad_token_id=128004,
                             max_new_tokens=budget, do_sample=True, temperature=2.0)
        gen = out[0, ids.shape[1]:]
        assert gen.shape[0] <= budget
        _check(_completion(tokenizer, grammar, gen), SCHEMA)


def test_eos_mismatch_warns(model, tokenizer, grammar):
    ids = _prompt(tokenizer)
    proc = fhf.LogitsProcessor(grammar, max_tokens=8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model.generate(ids, logits_processor=[proc], eos_token_id=128000, pad_token_id=128004, max_new_tokens=3)
    assert any("eos_token_id=grammar.stop_ids" in str(x.message) for x in w)


def test_jump_forward_saves_forward_passes(model, tokenizer, vocab):
    schema = {"type": "object", "properties": {"location": {"type": "string", "maxLength": 8},
                                               "temperature_unit": {"enum": ["celsius"]}},
              "required": ["location", "temperature_unit"], "additionalProperties": False}
    g = fcg.Compiler(vocab).compile_json_schema(schema)
    ids = _prompt(tokenizer)
    res = fhf.generate_jump_forward(model, ids, g, max_new_tokens=64)
    assert res.finished
    assert res.forced_tokens > 0
    # every generated token either had its own forward pass or was forced: prefill + sampled tokens
    assert res.forward_passes + res.forced_tokens == len(res.generated)
    text = g.vocab.decode(res.generated[:-1]).decode()
    v = _check(text, schema)
    assert v["temperature_unit"] == "celsius"
    # the same with sampling
    gen = torch.Generator().manual_seed(5)
    res2 = fhf.generate_jump_forward(model, ids, g, max_new_tokens=64, do_sample=True, temperature=1.5, generator=gen)
    assert res2.finished and res2.saved_forward_passes > 0
    _check(g.vocab.decode(res2.generated[:-1]).decode(), schema)


def test_processor_rejects_foreign_token(model, tokenizer, grammar):
    proc = fhf.LogitsProcessor(grammar, max_tokens=20)
    ids = _prompt(tokenizer)
    scores = torch.zeros(1, VOCAB_SIZE)
    proc(ids, scores)
    assert torch.isinf(scores[0, ord("x")])  # the output must start with "{"
    bad = torch.cat([ids, torch.tensor([[tokenizer.convert_tokens_to_ids("x")]])], dim=1)
    with pytest.raises(fcg.MatcherError):
        proc(bad, torch.zeros(1, VOCAB_SIZE))


def test_padding_logits_never_allowed(tokenizer, grammar):
    proc = fhf.LogitsProcessor(grammar)
    scores = torch.zeros(2, VOCAB_SIZE)
    proc(torch.tensor([[1, 2], [3, 4]]), scores)
    assert torch.isinf(scores[:, 128_256:]).all()
    allowed = (~torch.isinf(scores[0])).nonzero().flatten().tolist()
    assert allowed and all(grammar.vocab.decode([t]).startswith(b"{") or grammar.vocab.decode([t]).isspace()
                           for t in allowed)


# ------------------------------------------------------------------------------------------- generate_with_tools
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                                        "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                       "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "send_email",
        "parameters": {"type": "object", "properties": {"to": {"type": "string", "maxLength": 16},
                                                        "urgent": {"type": "boolean"}},
                       "required": ["to", "urgent"], "additionalProperties": False}}},
]
TOOL_SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


@pytest.fixture(scope="module")
def qwen():
    path = data_path("tokenizers/qwen3/tokenizer.json")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token="<|im_end|>",
                                               pad_token="<|endoftext|>")
    tok.chat_template = json.loads((path.parent / "tokenizer_config.json").read_text())["chat_template"]
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(vocab_size=151_680, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                                   max_position_embeddings=4096)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(20.0)
    return model, tok


@pytest.mark.parametrize("choice", ["auto", "none", "required", {"type": "function", "function": {"name": "send_email"}}])
def test_generate_with_tools(qwen, choice):
    model, tok = qwen
    msgs = [{"role": "user", "content": "Weather in Paris, then mail Bob?"}]
    torch.manual_seed(1)
    msg, det = fhf.generate_with_tools(model, tok, msgs, TOOLS, tool_choice=choice, max_new_tokens=64,
                                       do_sample=True, temperature=1.2, return_details=True)
    assert det["grammar"].tool_format.name == "qwen3"  # detected from the chat template
    check_tool_message(msg, choice, TOOL_SCHEMAS)
    assert len(det["token_ids"]) <= 64 and det["token_ids"][-1] in det["grammar"].stop_ids


def test_generate_with_tools_single_call(qwen):
    model, tok = qwen
    msgs = [{"role": "user", "content": "Do everything."}]
    for seed in range(2):
        torch.manual_seed(seed)
        msg = fhf.generate_with_tools(model, tok, msgs, TOOLS, tool_choice="required", parallel_tool_calls=False,
                                      max_new_tokens=48, do_sample=True, temperature=1.5)
        assert len(check_tool_message(msg, "required", TOOL_SCHEMAS)) == 1
