"""fcgrammar.llama_cpp against the real llama-cpp-python: tiny random-weight GGUF models are written here with
the ``gguf`` package from llama.cpp's vocab-only GGUFs (shared data), then loaded by llama.cpp itself.
Random weights make the model an adversary: whatever the mask lets through, it will emit."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import data_path
from tool_messages import check_tool_message

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (pip install llama-cpp-python==0.3.36; builds from source)")
gguf = pytest.importorskip("gguf", reason="the gguf package writes the test models (pip install gguf)")
jsonschema = pytest.importorskip("jsonschema", reason="tests validate outputs with jsonschema")

import fcgrammar as fcg  # noqa: E402
from fcgrammar import llama_cpp as fcl  # noqa: E402
from fcgrammar.vocabulary import read_gguf_metadata  # noqa: E402

_TOK_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
             "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
             "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.unknown_token_id",
             "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
             "tokenizer.ggml.add_space_prefix", "tokenizer.chat_template")


def build_tiny_gguf(vocab_gguf, out, *, n_embd=64, n_layer=2, n_head=2, n_head_kv=1, n_ff=128, seed=0,
                    chat_template=None):
    """A random-weight Llama-architecture GGUF with the tokenizer of ``vocab_gguf`` (a llama.cpp vocab file)."""
    meta = read_gguf_metadata(vocab_gguf, keys=_TOK_KEYS)
    toks = meta["tokenizer.ggml.tokens"]
    n_vocab = len(toks)

    def s(v):
        return v.decode("utf-8") if isinstance(v, bytes) else v

    w = gguf.GGUFWriter(str(out), arch="llama")
    w.add_name("fcgrammar-tiny-random")
    w.add_block_count(n_layer)
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model(s(meta["tokenizer.ggml.model"]))
    if "tokenizer.ggml.pre" in meta:
        w.add_tokenizer_pre(s(meta["tokenizer.ggml.pre"]))
    w.add_token_list(list(toks))
    if "tokenizer.ggml.scores" in meta:
        w.add_token_scores(np.asarray(meta["tokenizer.ggml.scores"], dtype=np.float32).tolist())
    if "tokenizer.ggml.token_type" in meta:
        w.add_token_types(np.asarray(meta["tokenizer.ggml.token_type"], dtype=np.int32).tolist())
    if "tokenizer.ggml.merges" in meta:
        w.add_token_merges(list(meta["tokenizer.ggml.merges"]))
    for key, fn in (("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id),
                    ("unknown_token_id", w.add_unk_token_id), ("padding_token_id", w.add_pad_token_id)):
        v = meta.get("tokenizer.ggml." + key)
        if v is not None:
            fn(int(v))
    for key, fn in (("add_bos_token", w.add_add_bos_token), ("add_eos_token", w.add_add_eos_token),
                    ("add_space_prefix", w.add_add_space_prefix)):
        v = meta.get("tokenizer.ggml." + key)
        if v is not None:
            fn(bool(v))
    tmpl = chat_template if chat_template is not None else meta.get("tokenizer.chat_template")
    if tmpl:
        w.add_chat_template(s(tmpl))
    rng = np.random.default_rng(seed)

    def rnd(*shape, std=0.2):
        return rng.standard_normal(shape, dtype=np.float32) * std

    hd = n_embd // n_head
    w.add_tensor("token_embd.weight", rnd(n_vocab, n_embd, std=1.0))  # tied output: peaky random logits
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", rnd(n_embd, n_embd))
        w.add_tensor(p + "attn_k.weight", rnd(n_head_kv * hd, n_embd))
        w.add_tensor(p + "attn_v.weight", rnd(n_head_kv * hd, n_embd))
        w.add_tensor(p + "attn_output.weight", rnd(n_embd, n_embd))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", rnd(n_ff, n_embd))
        w.add_tensor(p + "ffn_up.weight", rnd(n_ff, n_embd))
        w.add_tensor(p + "ffn_down.weight", rnd(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 10}, "n": {"type": "integer", "minimum": 0},
                   "ok": {"type": "boolean"}},
    "required": ["city", "n"],
    "additionalProperties": False,
}

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                                        "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                       "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "send_email",
        "parameters": {"type": "object", "properties": {"to": {"type": "string", "maxLength": 20},
                                                        "urgent": {"type": "boolean"}},
                       "required": ["to", "urgent"], "additionalProperties": False}}},
]
TOOL_SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
MESSAGES = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("gguf")
    spm = build_tiny_gguf(data_path("tokenizers/gguf/ggml-vocab-llama-spm.gguf"), d / "spm.gguf")
    tmpl = data_path("tokenizers/chat_templates/Qwen-Qwen2.5-7B-Instruct.jinja").read_text()
    qwen = build_tiny_gguf(data_path("tokenizers/gguf/ggml-vocab-qwen2.gguf"), d / "qwen2.gguf", chat_template=tmpl)
    return {"spm": str(spm), "qwen2": str(qwen)}


@pytest.fixture(scope="module")
def spm_llm(models):
    return llama_cpp.Llama(model_path=models["spm"], n_ctx=512, verbose=False, seed=1)


@pytest.fixture(scope="module")
def qwen_llm(models):
    return llama_cpp.Llama(model_path=models["qwen2"], n_ctx=1024, verbose=False, seed=1,
                           chat_handler=fcl.chat_handler())


def _completion_json(text):
    return json.loads(text)


@pytest.mark.parametrize("which", ["spm", "qwen2"])
def test_vocabulary_from_llama_matches_the_gguf(models, which):
    llm = llama_cpp.Llama(model_path=models[which], vocab_only=True, verbose=False)
    api = fcl.vocabulary(llm)
    assert fcl.vocabulary(llm) is api  # memoised on the Llama object
    file = fcg.Vocabulary.from_gguf(models[which])
    assert api.n_tokens == file.n_tokens == llm.n_vocab()
    assert api.kind == file.kind and api.add_prefix_space == file.add_prefix_space
    assert file.special_ids <= api.special_ids  # llama.cpp may call a few more tokens end-of-generation
    text_ids = [i for i in range(file.n_tokens) if i not in api.special_ids]
    assert all(api.tokens[i] == file.tokens[i] for i in text_ids)
    assert set(file.stop_ids) <= set(api.stop_ids)
    via_file = fcl.vocabulary(llm, source="gguf")
    assert via_file.tokens == file.tokens
    # the API vocabulary encodes with llama.cpp's tokenizer (exact round trip, no BOS)
    ids = api.encode('{"a": 1}')
    if ids:
        assert api.decode(ids) == b'{"a": 1}'
    else:
        assert api.add_prefix_space  # SentencePiece without a splittable prefix space: no encoder


@pytest.mark.parametrize("which", ["spm", "qwen2"])
def test_logits_processor_json_schema_sampling(models, which):
    llm = llama_cpp.Llama(model_path=models[which], n_ctx=512, verbose=False, seed=1)
    g = fcg.Compiler(fcl.vocabulary(llm)).compile_json_schema(SCHEMA)
    proc = fcl.LogitsProcessor(g, max_tokens=40)  # one instance, reused by every call
    outs = set()
    for seed in range(4):
        out = llm.create_completion("Give JSON:", max_tokens=40, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0,
                                    seed=seed, logits_processor=llama_cpp.LogitsProcessorList([proc]))
        text = out["choices"][0]["text"]
        assert out["choices"][0]["finish_reason"] == "stop", text  # ended by the grammar's stop token in budget
        jsonschema.validate(_completion_json(text), SCHEMA)
        outs.add(text)
    assert len(outs) > 1


def test_logits_processor_greedy_and_unconstrained_differs(spm_llm):
    g = fcg.Compiler(fcl.vocabulary(spm_llm)).compile_json_schema(SCHEMA)
    proc = fcl.LogitsProcessor(g, max_tokens=30)
    out = spm_llm.create_completion("JSON:", max_tokens=30, temperature=0,
                                    logits_processor=llama_cpp.LogitsProcessorList([proc]))
    jsonschema.validate(_completion_json(out["choices"][0]["text"]), SCHEMA)
    free = spm_llm.create_completion("JSON:", max_tokens=15, temperature=0)
    with pytest.raises(Exception):
        jsonschema.validate(json.loads(free["choices"][0]["text"]), SCHEMA)


@pytest.mark.parametrize("choice", ["auto", "none", "required", {"type": "function", "function": {"name": "send_email"}}])
def test_chat_handler_tool_choice(qwen_llm, choice):
    for seed in range(2):
        r = qwen_llm.create_chat_completion(MESSAGES, tools=TOOLS, tool_choice=choice, temperature=1.2, seed=seed,
                                            max_tokens=80)
        ch = r["choices"][0]
        calls = check_tool_message(ch["message"], choice, TOOL_SCHEMAS)
        assert ch["finish_reason"] == ("tool_calls" if calls else "stop")
        assert r["usage"]["completion_tokens"] <= 80


def test_chat_handler_auto_can_call_when_the_model_wants(qwen_llm):
    # A user processor (runs before the grammar mask) makes the model want "<tool_call>": auto then calls.
    vocab = fcl.vocabulary(qwen_llm)
    trigger = vocab.encode("<tool_call>")
    assert vocab.decode(trigger) == b"<tool_call>"

    def want_call(input_ids, scores):  # boost the next token of the trigger
        ids = list(input_ids[-len(trigger):])
        k = next((k for k in range(len(trigger) - 1, 0, -1) if ids[-k:] == trigger[:k]), 0)
        scores[trigger[k]] += 50.0
        return scores

    r = qwen_llm.create_chat_completion(MESSAGES, tools=TOOLS, tool_choice="auto", temperature=1.0, seed=0,
                                        max_tokens=80, logits_processor=llama_cpp.LogitsProcessorList([want_call]))
    calls = check_tool_message(r["choices"][0]["message"], "auto", TOOL_SCHEMAS)
    assert calls and r["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_handler_parallel_tool_calls_false(models):
    handler = fcl.chat_handler(parallel_tool_calls=False)
    llm = llama_cpp.Llama(model_path=models["qwen2"], n_ctx=1024, verbose=False, chat_handler=handler)
    for seed in range(3):
        r = llm.create_chat_completion(MESSAGES, tools=TOOLS, tool_choice="required", temperature=1.5, seed=seed,
                                       max_tokens=100)
        assert len(check_tool_message(r["choices"][0]["message"], "required", TOOL_SCHEMAS)) == 1


def test_chat_handler_streaming_matches_non_streaming(qwen_llm):
    kw = dict(tools=TOOLS, tool_choice="required", temperature=1.0, seed=11, max_tokens=80)
    whole = qwen_llm.create_chat_completion(MESSAGES, **kw)["choices"][0]["message"]
    chunks = list(qwen_llm.create_chat_completion(MESSAGES, stream=True, **kw))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    calls = {}
    for c in chunks:
        for tc in c["choices"][0]["delta"].get("tool_calls") or []:
            cur = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
            f = tc.get("function") or {}
            cur["name"] += f.get("name") or ""
            cur["arguments"] += f.get("arguments") or ""
    got = [(calls[i]["name"], json.loads(calls[i]["arguments"])) for i in sorted(calls)]
    want = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in whole["tool_calls"]]
    assert got == want


def test_chat_handler_response_format_without_tools(qwen_llm):
    r = qwen_llm.create_chat_completion(
        MESSAGES, temperature=1.3, seed=2, max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}})
    jsonschema.validate(json.loads(r["choices"][0]["message"]["content"]), SCHEMA)


def test_register_chat_format(models):
    fcl.register_chat_format("fcgrammar-test")
    llm = llama_cpp.Llama(model_path=models["qwen2"], n_ctx=1024, verbose=False, chat_format="fcgrammar-test")
    r = llm.create_chat_completion(MESSAGES, tools=TOOLS, tool_choice="required", temperature=1.0, seed=4,
                                   max_tokens=80)
    check_tool_message(r["choices"][0]["message"], "required", TOOL_SCHEMAS)


def test_llama_cpp_own_handler_fails_on_required(models):
    """The gap this integration fills: llama-cpp-python's chatml-function-calling asserts on 'required'."""
    llm = llama_cpp.Llama(model_path=models["qwen2"], n_ctx=1024, verbose=False,
                          chat_format="chatml-function-calling")
    with pytest.raises(AssertionError):
        llm.create_chat_completion(MESSAGES, tools=TOOLS, tool_choice="required", max_tokens=5)
