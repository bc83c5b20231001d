"""Hugging Face ``transformers`` integration: a logits processor for ``model.generate``, jump-forward
decoding, and a one-call ``generate_with_tools``.

```python
import fcgrammar as fcg
from fcgrammar.hf import LogitsProcessor

vocab = fcg.Vocabulary.from_hf(tokenizer, vocab_size=model.config.vocab_size)
grammar = fcg.Compiler(vocab).compile_json_schema(schema)
proc = LogitsProcessor(grammar)
out = model.generate(input_ids, logits_processor=[proc], eos_token_id=grammar.stop_ids, max_new_tokens=128)
```

Importing this module needs ``torch``; ``transformers`` is only needed for :func:`generate_with_tools` (the
processor subclasses ``transformers.LogitsProcessor`` when transformers is installed, and is a plain callable
otherwise). ``import fcgrammar`` never imports either.
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from . import _integration_utils as _iu
from .compiler import CompiledGrammar
from .errors import MatcherError
from ._core import apply_bitmask_f32 as _apply_f32
from .matcher import Matcher, apply_token_bitmask_inplace, fill_next_token_bitmask_batch

try:  # subclass transformers' base when it is there (isinstance checks, continuous-batching flag)
    from transformers import LogitsProcessor as _HFLogitsProcessor
except Exception:  # pragma: no cover - transformers absent
    _HFLogitsProcessor = object  # type: ignore

_NO_ROWS: List[int] = []

__all__ = ["LogitsProcessor", "JumpForwardResult", "generate_jump_forward", "generate_with_tools", "vocabulary"]


def vocabulary(tokenizer, vocab_size: Optional[int] = None):
    """``Vocabulary.from_hf(tokenizer, vocab_size)``, memoised on the tokenizer object."""
    from .vocabulary import Vocabulary

    return _iu.cached_per_object(tokenizer, ("vocab", vocab_size),
                                 lambda: Vocabulary.from_hf(tokenizer, vocab_size=vocab_size))


def _generate_config_from_stack(max_depth: int = 12):
    """The ``GenerationConfig`` of the ``generate`` call we are running inside, if any (looked up once per
    generation: transformers passes processors no other way to learn ``max_new_tokens`` or the eos ids)."""
    try:
        f = sys._getframe(2)
    except ValueError:  # pragma: no cover
        return None
    for _ in range(max_depth):
        if f is None:
            return None
        gc = f.f_locals.get("generation_config") if f.f_code.co_name in ("_sample", "generate", "_beam_search",
                                                                       "_assisted_decoding") else None
        if gc is not None and hasattr(gc, "max_length"):
            return gc
        f = f.f_back
    return None


def _as_id_list(v) -> List[int]:
    if v is None:
        return []
    if isinstance(v, torch.Tensor):
        return [int(x) for x in v.reshape(-1).tolist()]
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v]
    return [int(v)]


def _content_budget(budget: Optional[int], g: CompiledGrammar) -> Optional[int]:
    """A Matcher's ``max_tokens`` bounds the output before its stop token; generation budgets count the stop
    token too, so leave room for it."""
    if budget is None:
        return None
    return max(1, budget - 1) if g.stop_ids else budget


class LogitsProcessor(_HFLogitsProcessor):
    """Grammar-constrained decoding for ``model.generate(..., logits_processor=[proc])``.

    ``grammar``: a :class:`~fcgrammar.CompiledGrammar` shared by every row, or a list with one grammar per
    row. One :class:`~fcgrammar.Matcher` per row is created on the first call (the batch size is learned
    then). Works with greedy search, sampling (the mask is applied before temperature/top-k/top-p, which
    transformers runs after user processors) and batched, left-padded inputs.

    * Rows whose grammar has terminated (their stop token was accepted) are ignored: their scores allow only
      a stop token (``generate`` replaces it by the pad token for finished rows).
    * A row can only end when its grammar is complete: stop tokens are masked until then. Pass
      ``eos_token_id=grammar.stop_ids`` to ``generate`` (a warning says so when generate's eos ids miss them).
    * ``max_tokens``: the token budget, stop token included; masks then only allow tokens from which the
      output can still be completed (and its stop token emitted) in time. ``None`` takes ``max_new_tokens`` (``max_length`` minus the prompt) from the running
      ``generate`` call; ``0`` disables the budget.
    * Reusable: a new ``generate`` call (different prompt, batch size or length) is detected and the matchers
      are recreated; :meth:`reset` does it explicitly.

    After a generation, :attr:`matchers` hold the final states, :attr:`num_steps` counts masked steps and
    :attr:`mask_seconds` the time spent in this processor.
    """

    supports_continuous_batching = False  # per-row state is positional

    def __init__(self, grammar: Union[CompiledGrammar, Sequence[CompiledGrammar]], max_tokens: Optional[int] = None,
                 *, threads: int = 0):
        if isinstance(grammar, CompiledGrammar):
            self._grammars: Optional[List[CompiledGrammar]] = None
            self.grammar = grammar
        else:
            self._grammars = list(grammar)
            if not self._grammars:
                raise ValueError("LogitsProcessor needs a grammar (or a non-empty list of grammars)")
            self.grammar = self._grammars[0]
        for g in self._grammars or [self.grammar]:
            if not isinstance(g, CompiledGrammar):
                raise TypeError(f"expected a CompiledGrammar, got {type(g).__name__}")
            if g.vocab is None:
                raise MatcherError("this grammar was compiled without a vocabulary")
        self.max_tokens = max_tokens
        self.threads = int(threads)
        self.num_steps = 0
        self.mask_seconds = 0.0
        self.reset()

    # -- state ----------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the current generation; the next call starts a new one."""
        self.matchers: List[Matcher] = []
        self.budget: Optional[int] = None
        self._done: List[bool] = []
        self._exhausted: List[bool] = []
        self._bitmask: Optional[torch.Tensor] = None
        self._bitmask_np = None  # numpy view of _bitmask (same memory)
        self._last_T = -1
        # Continuity check, one gather per step: columns (first, last of the prompt, previous, new) of each
        # row, and what the first three must be for a call to continue this generation.
        self._probe: Optional[torch.Tensor] = None
        self._prompt_len = 0
        self._expect: List[List[int]] = []
        self._finish_ids: List[int] = []

    @property
    def finished(self) -> List[bool]:
        """Per row: the output is complete (its grammar terminated, or is complete and waiting for the stop
        token that ``generate`` sampled last: the processor is not called after the final step)."""
        return [(d and not x) or m.is_accepting() for d, x, m in zip(self._done, self._exhausted, self.matchers)]

    def _grammar(self, row: int) -> CompiledGrammar:
        if self._grammars is None:
            return self.grammar
        if row >= len(self._grammars):
            raise ValueError(f"LogitsProcessor got {len(self._grammars)} grammars for a batch of at least {row + 1} rows")
        return self._grammars[row]

    def _continued(self, input_ids: torch.Tensor) -> Optional[List[int]]:
        """The new token of each row when this call continues the current generation (same rows, one more
        column, same first and last prompt token, the previous column what this processor saw last),
        else None. One gather and one ``tolist`` per step: every torch call costs 5-20 µs here, because
        the model's forward pass has just evicted the caches."""
        if not self.matchers or all(self._done):
            return None
        B, T = input_ids.shape
        if B != len(self.matchers) or T != self._last_T + 1:
            return None
        if input_ids.device.type == "cpu":  # numpy item reads: cheaper than a torch gather
            a = input_ids.numpy()
            P = self._prompt_len
            cols = [[int(a[i, 0]), int(a[i, P - 1]), int(a[i, T - 2]), int(a[i, T - 1])] for i in range(B)]
        else:
            cols = input_ids[:, self._probe].tolist()
        if any(c[:3] != e for c, e in zip(cols, self._expect)):
            return None
        return [c[3] for c in cols]

    def _start(self, input_ids: torch.Tensor, width: int) -> None:
        B, T = input_ids.shape
        gc = _generate_config_from_stack()
        budget = self.max_tokens
        if budget is None and gc is not None and getattr(gc, "max_length", None):
            budget = int(gc.max_length) - T
        if budget is not None and budget <= 0:
            budget = None
        self.budget = budget
        grammars = [self._grammar(i) for i in range(B)]
        for g in grammars:
            if width < g.vocab.size:
                raise ValueError(f"the model's logits have {width} columns but the grammar's vocabulary has "
                                 f"{g.vocab.size} ids; build the Vocabulary with vocab_size=model.config.vocab_size")
        self.matchers = [Matcher(g, max_tokens=_content_budget(budget, g)) for g in grammars]
        self._done = [False] * B
        self._exhausted = [False] * B
        words = (width + 31) // 32
        if self._bitmask is None or tuple(self._bitmask.shape) != (B, words):
            self._bitmask = torch.full((B, words), -1, dtype=torch.int32)
            self._bitmask_np = self._bitmask.numpy()
        self._probe = torch.tensor([0, T - 1, -2, -1], dtype=torch.long, device=input_ids.device)
        self._prompt_len = T
        first_last = input_ids[:, [0, T - 1]].tolist()
        self._expect = [[f, l, l] for f, l in first_last]
        # The token a finished row is given: generate's pad token when set, else the row's first stop token.
        pad = None
        if gc is not None:
            pad = getattr(gc, "pad_token_id", None)
            eos = set(_as_id_list(getattr(gc, "eos_token_id", None)))
            if eos:
                missing = [s for s in grammars[0].stop_ids if s not in eos]
                if len(missing) == len(grammars[0].stop_ids):
                    warnings.warn(f"fcgrammar: none of the grammar's stop tokens {grammars[0].stop_ids} is an eos "
                                  f"token of this generate call ({sorted(eos)}): rows will not stop when their "
                                  "output is complete; pass eos_token_id=grammar.stop_ids", stacklevel=4)
        pad_list = _as_id_list(pad)
        self._finish_ids = [(pad_list[0] if pad_list else (g.stop_ids[0] if g.stop_ids else 0)) for g in grammars]

    def _advance(self, last: List[int]) -> None:
        for i, m in enumerate(self.matchers):
            if self._done[i]:
                continue
            if not m.accept_token(last[i]):
                raise MatcherError(
                    f"fcgrammar.hf.LogitsProcessor: row {i} emitted token {last[i]}, which its grammar does not "
                    "allow; is another processor running after this one, or is the processor shared between "
                    "concurrent generate calls?")
            if m.is_terminated():
                self._done[i] = True

    # -- the call ----------------------------------------------------------------------------------------
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        t0 = time.perf_counter()
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        squeeze = scores.dim() == 1
        sc = scores.unsqueeze(0) if squeeze else scores
        new_tokens = self._continued(input_ids)
        if new_tokens is None:
            self._start(input_ids, sc.shape[-1])
        else:
            self._advance(new_tokens)
            for e, t in zip(self._expect, new_tokens):
                e[2] = t
        B = input_ids.shape[0]
        arr = self._bitmask_np
        active = [i for i in range(B) if not self._done[i]]
        if len(active) > 1 and self.threads != 1:
            fill_next_token_bitmask_batch([self.matchers[i] for i in active], arr, active, threads=self.threads)
        else:
            for i in active:
                self.matchers[i].fill_next_token_bitmask(arr, i)
        if self.budget is not None:
            for i in active:
                m = self.matchers[i]
                # The mask is empty exactly when the budget is spent before the output is complete: the row
                # is ended (the budget was too small for any complete output).
                if 0 <= m.max_tokens <= m.num_tokens and not m.is_accepting():
                    self._done[i] = True
                    self._exhausted[i] = True
                    warnings.warn(f"fcgrammar: row {i} cannot complete its grammar within {self.budget} tokens; "
                                  "ending it (the output is incomplete)", stacklevel=2)
                    _iu.set_only(arr[i], [self._finish_ids[i]])
        for i in range(B):
            if self._done[i] and i not in active:
                _iu.set_only(arr[i], [self._finish_ids[i]])
        if sc.device.type == "cpu" and sc.dtype == torch.float32 and sc.stride(-1) == 1 and not sc.requires_grad:
            _apply_f32(sc.numpy(), arr, _NO_ROWS)  # the common CPU case, without the generic checks
        else:
            apply_token_bitmask_inplace(sc, self._bitmask)
        self._last_T = input_ids.shape[1]
        self.num_steps += 1
        self.mask_seconds += time.perf_counter() - t0
        return scores


# --------------------------------------------------------------------------------------------------- jump-forward
@dataclass
class JumpForwardResult:
    """What :func:`generate_jump_forward` produced."""

    sequences: torch.Tensor  # [1, prompt + generated]
    generated: List[int] = field(default_factory=list)
    forward_passes: int = 0  # model forward calls, the prefill included
    forced_tokens: int = 0  # tokens appended from the grammar without their own forward pass
    finished: bool = False  # the grammar terminated (its stop token was emitted)

    @property
    def saved_forward_passes(self) -> int:
        """Decoding steps that did not need a forward pass of their own."""
        return self.forced_tokens


def _sample(logits: torch.Tensor, do_sample: bool, temperature: float, top_k: int, top_p: float,
            generator: Optional[torch.Generator]) -> int:
    if not do_sample:
        return int(torch.argmax(logits).item())
    x = logits / max(float(temperature), 1e-6)
    if top_k and top_k > 0:
        kth = torch.topk(x, min(int(top_k), x.shape[-1])).values[-1]
        x = x.masked_fill(x < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_x, idx = torch.sort(x, descending=True)
        probs = torch.softmax(sorted_x, -1)
        cum = torch.cumsum(probs, -1)
        drop = cum - probs > top_p
        sorted_x = sorted_x.masked_fill(drop, float("-inf"))
        x = torch.full_like(x, float("-inf")).scatter(0, idx, sorted_x)
    probs = torch.softmax(x, -1)
    return int(torch.multinomial(probs, 1, generator=generator).item())


@torch.no_grad()
def generate_jump_forward(model, input_ids: torch.Tensor, grammar: CompiledGrammar, *, max_new_tokens: int = 256,
                          do_sample: bool = False, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                          generator: Optional[torch.Generator] = None, budget: bool = True,
                          attention_mask: Optional[torch.Tensor] = None) -> JumpForwardResult:
    """Constrained decoding of one sequence (batch 1) with jump-forward.

    After each sampled token, the tokens the grammar forces next (``Matcher.forced_tokens``: the only bytes
    the grammar allows, tokenized canonically) are appended at once and fed to the model in the same forward
    pass as the sampled token, so each forced token saves one forward pass. ``result.forced_tokens`` reports
    how many. Uses the model's KV cache; stops when the grammar terminates or after ``max_new_tokens``.
    """
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    if input_ids.shape[0] != 1:
        raise ValueError("generate_jump_forward decodes one sequence at a time (batch size 1)")
    device = input_ids.device
    m = Matcher(grammar, max_tokens=_content_budget(max_new_tokens, grammar) if budget else None)
    bitmask = torch.full((1, (grammar.vocab.size + 31) // 32), -1, dtype=torch.int32)
    res = JumpForwardResult(sequences=input_ids)
    am = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    out = model(input_ids=input_ids, attention_mask=am, use_cache=True)
    res.forward_passes = 1
    past = out.past_key_values
    logits = out.logits[0, -1].to(torch.float32)
    generated: List[int] = []
    while len(generated) < max_new_tokens and not m.is_terminated():
        if logits.shape[-1] < grammar.vocab.size:
            raise ValueError("the model's logits are narrower than the grammar's vocabulary")
        m.fill_next_token_bitmask(bitmask.numpy(), 0)
        if not bitmask.numpy().any():  # the budget is spent
            if m.is_accepting() and grammar.stop_ids:
                generated.append(grammar.stop_ids[0])  # complete: end it (the matcher refuses stops past budget)
                res.finished = True
            break
        lg = logits.unsqueeze(0).contiguous()
        apply_token_bitmask_inplace(lg, bitmask)
        tok = _sample(lg[0], do_sample, temperature, top_k, top_p, generator)
        if not m.accept_token(tok):  # pragma: no cover - the mask allowed it
            raise MatcherError(f"token {tok} was allowed by the mask but rejected by the matcher")
        new = [tok]
        if not m.is_terminated():
            forced = m.forced_tokens()[: max(0, max_new_tokens - len(generated) - 1)]
            if forced and m.accept_tokens(forced):
                new.extend(forced)
                res.forced_tokens += len(forced)
        generated.extend(new)
        if m.is_terminated() or len(generated) >= max_new_tokens:
            break
        step = torch.tensor([new], dtype=input_ids.dtype, device=device)
        am = torch.cat([am, torch.ones_like(step)], dim=1)
        out = model(input_ids=step, attention_mask=am, past_key_values=past, use_cache=True)
        res.forward_passes += 1
        past = out.past_key_values
        logits = out.logits[0, -1].to(torch.float32)
    res.generated = generated
    res.finished = res.finished or m.is_terminated()
    res.sequences = torch.cat([input_ids, torch.tensor([generated], dtype=input_ids.dtype, device=device)], dim=1)
    return res


# --------------------------------------------------------------------------------------------------- tools
def _chat_template(tokenizer) -> Optional[str]:
    t = getattr(tokenizer, "chat_template", None)
    if isinstance(t, dict):  # several named templates
        t = t.get("tool_use") or t.get("default") or next(iter(t.values()), None)
    return t if isinstance(t, str) else None


def compile_tools(tokenizer, tools: Sequence[dict], *, tool_choice: Any = "auto", format: Optional[str] = None,
                  parallel_tool_calls: bool = True, vocab_size: Optional[int] = None, **schema_options) -> CompiledGrammar:
    """The grammar of one assistant turn for ``tools`` in the tokenizer's tool-call format (detected from its
    chat template unless ``format`` is given). Memoised: the same tools cost one compile per process."""
    vocab = vocabulary(tokenizer, vocab_size)
    fmt = _iu.require_format(_chat_template(tokenizer), format, "fcgrammar.hf")
    return _iu.compile_tools_cached(vocab, tools, format=fmt, tool_choice=tool_choice,
                                    parallel_tool_calls=parallel_tool_calls, **schema_options)


def generate_with_tools(model, tokenizer, messages: Sequence[dict], tools: Sequence[dict], *,
                        tool_choice: Any = "auto", format: Optional[str] = None, parallel_tool_calls: bool = True,
                        max_new_tokens: int = 256, schema_options: Optional[Dict[str, Any]] = None,
                        chat_template_kwargs: Optional[Dict[str, Any]] = None, return_details: bool = False,
                        **generate_kwargs) -> dict:
    """Run one constrained assistant turn and return the parsed OpenAI message
    (``{"role": "assistant", "content": ..., "tool_calls": [...]}``).

    The prompt is the tokenizer's chat template applied to ``messages`` with ``tools``; the output follows the
    model's own tool-call format (``format``, default detected from the chat template) and honours
    ``tool_choice`` (``"auto"``, ``"none"``, ``"required"`` or ``{"type": "function", "function": {"name": ...}}``)
    and ``parallel_tool_calls``. Extra keyword arguments go to ``model.generate`` (``do_sample``,
    ``temperature``...). With ``return_details=True`` returns ``(message, details)`` where details holds the
    generated ids and the processor.
    """
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    grammar = compile_tools(tokenizer, tools, tool_choice=tool_choice, format=format,
                            parallel_tool_calls=parallel_tool_calls, vocab_size=vocab_size, **(schema_options or {}))
    prompt = tokenizer.apply_chat_template(list(messages), tools=list(tools) or None, add_generation_prompt=True,
                                           tokenize=False, **(chat_template_kwargs or {}))
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    device = getattr(model, "device", None)
    input_ids = enc["input_ids"].to(device) if device is not None else enc["input_ids"]
    attention_mask = enc.get("attention_mask")
    if attention_mask is not None and device is not None:
        attention_mask = attention_mask.to(device)
    proc = LogitsProcessor(grammar, max_tokens=max_new_tokens)
    stops = grammar.stop_ids
    kwargs = dict(generate_kwargs)
    kwargs.setdefault("pad_token_id", tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0])
    out = model.generate(input_ids, attention_mask=attention_mask, logits_processor=[proc], eos_token_id=stops,
                         max_new_tokens=max_new_tokens, **kwargs)
    gen = out[0, input_ids.shape[1]:].tolist()
    # drop what follows the end of the turn (padding) but keep the stop token for the parser
    for k, t in enumerate(gen):
        if t in stops:
            gen = gen[: k + 1]
            break
    msg = _iu.parse_output(grammar, gen)
    if return_details:
        return msg, {"token_ids": gen, "processor": proc, "grammar": grammar, "prompt": prompt}
    return msg
