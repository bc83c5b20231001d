"""llama.cpp integration (``llama-cpp-python``): a logits processor, a chat handler that returns OpenAI
``tool_calls`` for every ``tool_choice``, and a vocabulary read straight from a loaded ``Llama``.

```python
from llama_cpp import Llama, LogitsProcessorList
import fcgrammar as fcg
from fcgrammar import llama_cpp as fcl

llm = Llama(model_path="model.gguf", chat_handler=fcl.chat_handler())      # format detected from the GGUF template
resp = llm.create_chat_completion(messages, tools=tools, tool_choice="required")
resp["choices"][0]["message"]["tool_calls"]

vocab = fcl.vocabulary(llm)                                                  # no HF tokenizer needed
grammar = fcg.Compiler(vocab).compile_json_schema(schema)
llm.create_completion(prompt, logits_processor=LogitsProcessorList([fcl.LogitsProcessor(grammar)]), ...)
```

``llama_cpp`` is imported lazily (inside the functions that need it): importing this module needs only numpy.
"""
from __future__ import annotations

import ctypes
import re
import time
import uuid
import warnings
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from . import _integration_utils as _iu
from ._core import apply_bitmask_f32 as _apply_f32
from .compiler import CompiledGrammar
from .errors import MatcherError, TokenizerError
from .matcher import Matcher

__all__ = ["ChatHandler", "LogitsProcessor", "chat_handler", "register_chat_format", "vocabulary"]

_PAD = re.compile(rb"^\[PAD(\d+)\]$")
_NO_ROWS: List[int] = []


# --------------------------------------------------------------------------------------------------- vocabulary
def vocabulary(llm, *, source: str = "api"):
    """The :class:`fcgrammar.Vocabulary` of a loaded ``llama_cpp.Llama`` (memoised on the object).

    ``source="api"`` (default) asks llama.cpp itself, token by token (``llama_token_to_piece``,
    ``llama_vocab_get_attr``, ``llama_vocab_is_eog``), so the bytes are exactly what llama.cpp detokenizes and
    the stop tokens are its end-of-generation tokens; the vocabulary can encode text (for jump-forward) with
    the model's own tokenizer. ``source="gguf"`` reads the model file's header instead
    (:meth:`Vocabulary.from_gguf`). Works with ``Llama(..., vocab_only=True)``.
    """
    if source not in ("api", "gguf"):
        raise ValueError("source must be 'api' or 'gguf'")
    return _iu.cached_per_object(llm, ("vocab", source), lambda: _build_vocabulary(llm, source))


def _build_vocabulary(llm, source: str):
    from .vocabulary import Vocabulary

    n_vocab = int(llm.n_vocab())
    if source == "gguf":
        path = getattr(llm, "model_path", None)
        if not path:
            raise TokenizerError("this Llama has no model_path to read the GGUF vocabulary from")
        v = Vocabulary.from_gguf(path, vocab_size=n_vocab)
        v._encoder = _llama_encoder(llm, v)
        return v

    import llama_cpp as L

    vp = llm._model.vocab
    n = int(L.llama_vocab_n_tokens(vp))
    size = 256
    buf = ctypes.create_string_buffer(size)
    tokens: List[bytes] = [b""] * n
    special = set()
    eog: List[int] = []
    A = L
    not_text = A.LLAMA_TOKEN_ATTR_CONTROL | A.LLAMA_TOKEN_ATTR_UNKNOWN | A.LLAMA_TOKEN_ATTR_UNUSED
    for i in range(n):
        attr = int(L.llama_vocab_get_attr(vp, i))
        k = L.llama_token_to_piece(vp, i, buf, size, 0, True)
        if k < 0:
            big = ctypes.create_string_buffer(-k)
            k = L.llama_token_to_piece(vp, i, big, -k, 0, True)
            piece = big.raw[:k]
        else:
            piece = buf.raw[:k]
        if L.llama_vocab_is_eog(vp, i):
            eog.append(i)
        if attr == A.LLAMA_TOKEN_ATTR_UNDEFINED or attr & not_text:
            special.add(i)
            # control tokens: their literal text (token_get_text), like the tokenizer.json / GGUF readers
            try:
                piece = L.llama_vocab_get_text(vp, i) or piece
            except Exception:  # pragma: no cover
                pass
        m = _PAD.match(piece)
        if m and int(m.group(1)) == i:  # converter padding: a hole
            special.add(i)
            piece = b""
        tokens[i] = piece
    # stop tokens: eos first, then eot, then llama.cpp's other end-of-generation tokens
    order = []
    for t in (int(L.llama_vocab_eos(vp)), int(L.llama_vocab_eot(vp))):
        if t in eog and t not in order:
            order.append(t)
    order += [t for t in eog if t not in order]
    meta = getattr(llm, "metadata", {}) or {}
    kind_name = meta.get("tokenizer.ggml.model", "")
    kind = "byte_level" if kind_name == "gpt2" else ("sentencepiece" if kind_name in ("llama", "t5") else "raw")
    aps = meta.get("tokenizer.ggml.add_space_prefix")
    add_prefix_space = (str(aps).lower() == "true") if aps is not None else (kind == "sentencepiece")
    name = meta.get("general.name") or "llama.cpp"
    v = Vocabulary(tokens, special, [t for t in order if tokens[t]], n_vocab, kind, add_prefix_space, str(name))
    v.source = getattr(llm, "model_path", None)
    v._encoder = _llama_encoder(llm, v)
    return v


def _llama_encoder(llm, vocab):
    """``str -> ids`` with llama.cpp's own tokenizer, without BOS and without the SentencePiece space prefix
    (the Vocabulary.encode contract). Returns [] when llama.cpp cannot tokenize the text without the prefix."""

    def encode(text: str) -> List[int]:
        data = text.encode("utf-8")
        ids = list(llm.tokenize(data, add_bos=False, special=False))
        got = vocab.decode(ids)
        if got == data:
            return ids
        if vocab.add_prefix_space and got == b" " + data and ids and vocab.tokens[ids[0]] == b" ":
            return ids[1:]
        return []

    return encode


# --------------------------------------------------------------------------------------------------- processor
class LogitsProcessor:
    """A llama-cpp-python logits processor: ``proc(input_ids, scores) -> scores`` (numpy, one sequence).

    Pass it in a ``llama_cpp.LogitsProcessorList`` to ``Llama.create_completion`` / ``generate`` /
    ``create_chat_completion``. The processor learns each sampled token from ``input_ids`` on the next call
    and detects a new generation (a different prompt, or a length that is not one more than last time), so
    one instance can serve successive calls. ``max_tokens``: the budget (stop token included) within which the
    output must complete. Stop with the grammar's stop tokens (``grammar.stop_ids``), which it allows exactly
    when the output is complete.
    """

    def __init__(self, grammar: CompiledGrammar, max_tokens: Optional[int] = None):
        if grammar.vocab is None:
            raise MatcherError("this grammar was compiled without a vocabulary")
        self.grammar = grammar
        self.max_tokens = max_tokens
        self._bitmask = np.full((1, (grammar.vocab.size + 31) // 32), -1, dtype=np.int32)
        self.reset()

    def reset(self) -> None:
        self.matcher: Optional[Matcher] = None
        self._prompt: Optional[np.ndarray] = None
        self._last_n = -1
        self.done = False
        self.num_steps = 0

    def _start(self, input_ids: np.ndarray) -> None:
        budget = self.max_tokens
        content = None if budget is None else (max(1, budget - 1) if self.grammar.stop_ids else budget)
        self.matcher = Matcher(self.grammar, max_tokens=content)
        self._prompt = np.array(input_ids, dtype=np.int64, copy=True)
        self.done = False

    def _is_new(self, input_ids: np.ndarray) -> bool:
        if self.matcher is None or len(input_ids) != self._last_n + 1 or self.done:
            return True
        P = len(self._prompt)
        return not np.array_equal(np.asarray(input_ids[:P]), self._prompt)

    def __call__(self, input_ids, scores):
        ids = np.asarray(input_ids)
        if self._is_new(ids):
            self._start(ids)
        else:
            tok = int(ids[-1])
            if not self.matcher.accept_token(tok):
                raise MatcherError(f"fcgrammar.llama_cpp.LogitsProcessor: token {tok} is not allowed by the grammar "
                                   "(was the processor shared between concurrent generations?)")
        self._last_n = len(ids)
        m = self.matcher
        row = self._bitmask[0]
        if m.is_terminated():
            _iu.set_only(row, self.grammar.stop_ids[:1])
        else:
            m.fill_next_token_bitmask(self._bitmask, 0)
            if not row.any():
                # The budget is spent before the output is complete (a complete output would have its
                # stop tokens in the mask): end the generation rather than let llama.cpp sample anything.
                warnings.warn("fcgrammar: the output cannot be completed within the token budget", stacklevel=2)
                _iu.set_only(row, self.grammar.stop_ids[:1])
                self.done = True
        _mask_numpy(scores, row)
        self.num_steps += 1
        return scores


def _mask_numpy(scores: np.ndarray, row: np.ndarray) -> None:
    """scores[t] = -inf for every token the bitmask row does not allow (scores may be a strided view)."""
    if scores.dtype == np.float32 and scores.ndim == 1 and scores.strides[0] == 4:
        # llama-cpp-python's case (a contiguous float32 row): the engine's word-level apply, ~15 µs
        # over 128k logits where unpacking the bits in numpy takes ~0.5 ms
        _apply_f32(scores.reshape(1, -1), row.reshape(1, -1), _NO_ROWS)
        return
    n = scores.shape[-1]
    bits = np.unpackbits(row.view(np.uint8), bitorder="little")
    if bits.shape[0] < n:
        bits = np.concatenate([bits, np.zeros(n - bits.shape[0], dtype=np.uint8)])
    scores[bits[:n] == 0] = -np.inf


# --------------------------------------------------------------------------------------------------- chat handler
def _tools_from_functions(functions, function_call):
    tools = [{"type": "function", "function": f} for f in functions or []]
    if function_call is None:
        choice = "auto"
    elif isinstance(function_call, str):
        choice = {"none": "none", "auto": "auto"}.get(function_call, "auto")
    else:
        choice = {"type": "function", "function": {"name": function_call["name"]}}
    return tools, choice


class ChatHandler:
    """A ``llama_cpp`` chat completion handler (``Llama(chat_handler=...)``) that enforces tool calls.

    The prompt is the model's chat template (from the GGUF, or ``chat_template``) rendered with the tools; the
    output is constrained to the model's tool-call format (``format``: a preset name, default detected from
    the template) under ``tool_choice`` (``"auto"``, ``"none"``, ``"required"``, or a named function) and
    ``parallel_tool_calls``, and parsed into an OpenAI message with ``tool_calls``. Without tools, a
    ``response_format`` of type ``json_object`` / ``json_schema`` is enforced; otherwise decoding is free.
    ``stream=True`` yields OpenAI chunks with tool-call deltas.
    """

    def __init__(self, format: Optional[str] = None, *, chat_template: Optional[str] = None,
                 parallel_tool_calls: bool = True, schema_options: Optional[Dict[str, Any]] = None):
        self.format = format
        self.chat_template = chat_template
        self.parallel_tool_calls = parallel_tool_calls
        self.schema_options = dict(schema_options or {})
        self.last_processor: Optional[LogitsProcessor] = None
        self.last_token_ids: List[int] = []

    # -- pieces ---------------------------------------------------------------------------------------------
    def _template(self, llama) -> str:
        t = self.chat_template or (getattr(llama, "metadata", {}) or {}).get("tokenizer.chat_template")
        if not t:
            raise ValueError("fcgrammar.llama_cpp: the model has no chat template; pass chat_template=...")
        return t

    def _prompt_tokens(self, llama, template: str, messages, tools, tool_choice) -> List[int]:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        m = llama._model
        bos = m.token_get_text(m.token_bos()) if m.token_bos() >= 0 else ""
        eos = m.token_get_text(m.token_eos()) if m.token_eos() >= 0 else ""
        fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        res = fmt(messages=list(messages), tools=tools or None, tool_choice=tool_choice)
        return list(llama.tokenize(res.prompt.encode("utf-8"), add_bos=not res.added_special, special=True))

    def grammar_for(self, llama, tools, tool_choice, parallel_tool_calls: Optional[bool] = None,
                    response_format=None) -> Optional[CompiledGrammar]:
        vocab = vocabulary(llama)
        if tools:
            fmt = _iu.require_format(self._template(llama), self.format, "fcgrammar.llama_cpp.chat_handler")
            ptc = self.parallel_tool_calls if parallel_tool_calls is None else parallel_tool_calls
            return _iu.compile_tools_cached(vocab, tools, format=fmt, tool_choice=tool_choice or "auto",
                                            parallel_tool_calls=ptc, **self.schema_options)
        if response_format and response_format.get("type") in ("json_object", "json_schema"):
            schema: Any = True
            if response_format.get("type") == "json_schema":
                js = response_format.get("json_schema") or {}
                schema = js.get("schema", True)
            elif response_format.get("schema") is not None:
                schema = response_format["schema"]
            return _iu.compile_json_schema_cached(vocab, schema, **self.schema_options)
        return None

    # -- the call -----------------------------------------------------------------------------------------
    def __call__(self, *, llama, messages, functions=None, function_call=None, tools=None, tool_choice=None,
                 temperature: float = 0.2, top_p: float = 0.95, top_k: int = 40, min_p: float = 0.05,
                 typical_p: float = 1.0, stream: bool = False, stop=None, seed: Optional[int] = None,
                 response_format=None, max_tokens: Optional[int] = None, presence_penalty: float = 0.0,
                 frequency_penalty: float = 0.0, repeat_penalty: float = 1.1, tfs_z: float = 1.0,
                 mirostat_mode: int = 0, mirostat_tau: float = 5.0, mirostat_eta: float = 0.1, model=None,
                 logits_processor=None, grammar=None, logit_bias=None, logprobs=None, top_logprobs=None,
                 parallel_tool_calls: Optional[bool] = None, **kwargs):
        import llama_cpp

        if grammar is not None:
            raise ValueError("fcgrammar.llama_cpp.chat_handler enforces its own grammar; do not pass grammar=")
        if functions and not tools:
            tools, tool_choice = _tools_from_functions(functions, function_call)
        if tool_choice is None:
            tool_choice = "auto"
        template = self._template(llama)
        prompt = self._prompt_tokens(llama, template, messages, tools, tool_choice)
        g = self.grammar_for(llama, tools, tool_choice, parallel_tool_calls, response_format)
        n_ctx = int(llama.n_ctx())
        limit = n_ctx - len(prompt)
        if limit <= 0:
            raise ValueError(f"the prompt ({len(prompt)} tokens) does not fit the context ({n_ctx})")
        if max_tokens is None or max_tokens <= 0:
            max_tokens = limit
        max_tokens = min(int(max_tokens), limit)
        procs = list(logits_processor or [])
        proc = None
        if g is not None:
            proc = LogitsProcessor(g, max_tokens=max_tokens)
            procs.append(proc)  # last: nothing runs after the mask
        self.last_processor = proc
        if seed is not None:
            llama.set_seed(seed)
        stop_ids = set(g.stop_ids) if g is not None else set(vocabulary(llama).stop_ids)
        gen = llama.generate(prompt, top_k=top_k, top_p=top_p, min_p=min_p, typical_p=typical_p, temp=temperature,
                             repeat_penalty=repeat_penalty, frequency_penalty=frequency_penalty,
                             presence_penalty=presence_penalty, tfs_z=tfs_z, mirostat_mode=mirostat_mode,
                             mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta,
                             logits_processor=llama_cpp.LogitsProcessorList(procs) if procs else None)
        meta = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "created": int(time.time()),
                "model": model or getattr(llama, "model_path", "llama.cpp")}
        if stream:
            return self._stream(gen, g, stop_ids, max_tokens, meta, llama, prompt)
        out: List[int] = []
        finish = "length"
        for tok in gen:
            out.append(int(tok))
            if tok in stop_ids:
                finish = "stop"
                break
            if len(out) >= max_tokens:
                break
        self.last_token_ids = out
        msg = self._message(llama, g, out)
        if msg.get("tool_calls"):
            finish = "tool_calls"
        return {
            "id": meta["id"], "object": "chat.completion", "created": meta["created"], "model": meta["model"],
            "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(out),
                      "total_tokens": len(prompt) + len(out)},
        }

    def _message(self, llama, g, out: List[int]) -> dict:
        if g is not None and getattr(g, "tool_format", None) is not None:
            msg = dict(_iu.parse_output(g, out))
            msg.setdefault("role", "assistant")
            if not msg.get("tool_calls"):
                msg.pop("tool_calls", None)
            return msg
        stops = set(g.stop_ids) if g is not None else set(vocabulary(llama).stop_ids)
        body = [t for t in out if t not in stops]
        text = llama.detokenize(body).decode("utf-8", errors="replace")
        return {"role": "assistant", "content": text}

    def _stream(self, gen, g, stop_ids, max_tokens, meta, llama, prompt) -> Iterator[dict]:
        import fcgrammar

        def chunk(delta, finish=None):
            return {"id": meta["id"], "object": "chat.completion.chunk", "created": meta["created"],
                    "model": meta["model"],
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": None})
        use_parser = g is not None and getattr(g, "tool_format", None) is not None \
            and hasattr(fcgrammar, "StreamingParser")
        sp = fcgrammar.StreamingParser(g) if use_parser else None
        out: List[int] = []
        finish = "length"
        saw_calls = False
        pending = b""
        for tok in gen:
            out.append(int(tok))
            is_stop = tok in stop_ids
            if sp is not None:
                for d in sp.feed([int(tok)]):
                    saw_calls = saw_calls or bool(d.get("tool_calls"))
                    yield chunk(d)
            elif not is_stop:
                pending += llama.detokenize([int(tok)])
                try:
                    text = pending.decode("utf-8")
                    pending = b""
                    yield chunk({"content": text})
                except UnicodeDecodeError:
                    pass
            if is_stop:
                finish = "stop"
                break
            if len(out) >= max_tokens:
                break
        if sp is not None:
            for d in sp.finish():
                saw_calls = saw_calls or bool(d.get("tool_calls"))
                yield chunk(d)
        elif pending:
            yield chunk({"content": pending.decode("utf-8", errors="replace")})
        self.last_token_ids = out
        yield chunk({}, "tool_calls" if saw_calls else finish)


def chat_handler(format: Optional[str] = None, **options) -> ChatHandler:
    """A chat handler for ``Llama(chat_handler=...)``; see :class:`ChatHandler` for the options."""
    return ChatHandler(format=format, **options)


def register_chat_format(name: str = "fcgrammar", format: Optional[str] = None, *, overwrite: bool = True,
                         **options) -> ChatHandler:
    """Register a :class:`ChatHandler` in llama-cpp-python's registry, so ``Llama(chat_format=name)`` uses it."""
    from llama_cpp.llama_chat_format import LlamaChatCompletionHandlerRegistry

    handler = ChatHandler(format=format, **options)
    LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(name, handler, overwrite=overwrite)
    return handler
