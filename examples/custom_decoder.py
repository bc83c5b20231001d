"""A hand-written constrained decoding loop with fcgrammar (numpy only), three ways:

1. plain: one mask per token (constrained_step: fill_next_token_bitmask -> apply_token_bitmask_inplace -> sample
   -> accept_token);
2. jump-forward: tokens the grammar forces are appended without asking the model (forced_tokens);
3. speculative decoding: a cheap draft model proposes k tokens, the grammar checks them (validate_tokens), the
   target model scores all positions in one pass with one mask per position (accept_tokens ... rollback),
   and the matcher is rolled back to the accepted prefix (rollback).

The "models" are deterministic random functions of the context (an adversary: they know nothing about JSON),
so every output below is valid only because of the masks.

    python examples/custom_decoder.py                          # embedded demo vocabulary, offline
    python examples/custom_decoder.py --tokenizer tokenizer.json  # a real HF tokenizer.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
from typing import List, Optional, Sequence

import numpy as np

import fcgrammar as fcg

SCHEMA = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "maxLength": 16},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
    },
    "required": ["location", "unit", "days"],
    "additionalProperties": False,
}


# ---------------------------------------------------------------------------------------------- toy models
class ToyLM:
    """Logits are a deterministic random function of the last ``order`` tokens (seeded by a hash)."""

    def __init__(self, vocab_size: int, seed: int = 0, order: int = 3, scale: float = 3.0, noise_from=None,
                 noise: float = 0.0):
        self.V, self.seed, self.order, self.scale = vocab_size, seed, order, scale
        self.base, self.noise = noise_from, noise
        self.forward_passes = 0

    def _one(self, context: Sequence[int]) -> np.ndarray:
        key = hashlib.blake2b(repr((self.seed, list(context[-self.order:]))).encode(), digest_size=8).digest()
        x = np.random.default_rng(int.from_bytes(key, "little")).standard_normal(self.V).astype(np.float32)
        if self.base is not None:  # a draft model: the target's logits plus noise
            x = self.base._one(context) + self.noise * x
        return x * self.scale

    def logits(self, context: Sequence[int]) -> np.ndarray:
        """One forward pass: logits of the next token."""
        self.forward_passes += 1
        return self._one(context)

    def logits_many(self, context: Sequence[int], continuation: Sequence[int]) -> np.ndarray:
        """One forward pass over ``continuation``: logits after each of its prefixes ([len+1, V])."""
        self.forward_passes += 1
        ctx = list(context)
        rows = [self._one(ctx)]
        for t in continuation:
            ctx.append(int(t))
            rows.append(self._one(ctx))
        return np.stack(rows)


def sample(logits: np.ndarray, rng: Optional[np.random.Generator], temperature: float = 1.0) -> int:
    if rng is None:  # greedy
        return int(np.argmax(logits))
    z = logits / temperature
    z = z - z[np.isfinite(z)].max()
    p = np.exp(z)
    p /= p.sum()
    return int(rng.choice(len(p), p=p))


# ---------------------------------------------------------------------------------------------- decoders
def constrained_step(m, bitmask: np.ndarray, logits: np.ndarray, rng) -> int:
    """One masked decoding step: fill the mask, apply it to the logits, sample, accept the token."""
    m.fill_next_token_bitmask(bitmask, 0)
    fcg.apply_token_bitmask_inplace(logits, bitmask)
    tok = sample(logits, rng)
    assert m.accept_token(tok)
    return tok


def budget_spent(m, out: List[int], budget: int) -> bool:
    """The content budget is used up: the output is complete (the budget guarantees it), so end it with the
    stop token. (fcgrammar 0.1.0's mask is empty at that point instead of allowing the stop token.)"""
    if len(out) >= budget and m.is_accepting():
        out.append(m.grammar.stop_ids[0])
        return True
    return False


def decode_plain(grammar, model: ToyLM, prompt: List[int], max_tokens: int, rng=None) -> List[int]:
    budget = max_tokens - 1  # content tokens; the last slot is for the stop token
    m = fcg.Matcher(grammar, max_tokens=budget)
    bitmask = fcg.allocate_token_bitmask(1, grammar.vocab.size)
    out: List[int] = []
    while not m.is_terminated() and not budget_spent(m, out, budget):
        out.append(constrained_step(m, bitmask, model.logits(prompt + out), rng))
    return out


def decode_jump_forward(grammar, model: ToyLM, prompt: List[int], max_tokens: int, rng=None):
    budget = max_tokens - 1
    m = fcg.Matcher(grammar, max_tokens=budget)
    bitmask = fcg.allocate_token_bitmask(1, grammar.vocab.size)
    out: List[int] = []
    forced_total = 0
    while not m.is_terminated() and not budget_spent(m, out, budget):
        forced = m.forced_tokens()[: budget - len(out)]  # the grammar leaves no choice: no model call
        if forced and m.accept_tokens(forced):
            out.extend(forced)
            forced_total += len(forced)
            continue
        out.append(constrained_step(m, bitmask, model.logits(prompt + out), rng))
    return out, forced_total


def decode_speculative(grammar, target: ToyLM, draft: ToyLM, prompt: List[int], max_tokens: int, k: int = 4):
    """Greedy speculative decoding (the output equals decode_plain's greedy output)."""
    V = grammar.vocab.size
    budget = max_tokens - 1
    m = fcg.Matcher(grammar, max_tokens=budget)
    masks = fcg.allocate_token_bitmask(k + 1, V)
    row = fcg.allocate_token_bitmask(1, V)
    out: List[int] = []
    proposed = accepted = 0
    while not m.is_terminated() and not budget_spent(m, out, budget):
        # 1. The draft model proposes up to k tokens, guided by a fork of the matcher (cheap to copy).
        fork = m.copy()
        props: List[int] = []
        while len(props) < min(k, budget - 1 - len(out)) and not fork.is_terminated():
            lg = draft.logits(prompt + out + props)
            fork.fill_next_token_bitmask(row, 0)
            fcg.apply_token_bitmask_inplace(lg, row)
            t = sample(lg, None)
            fork.accept_token(t)
            props.append(t)
        # 2. The grammar has the last word on drafts from anywhere: keep the valid prefix (state unchanged).
        props = props[: m.validate_tokens(props)]
        # 3. One mask per draft position (+ the bonus position), advancing the matcher as we go...
        n = 0
        for i, t in enumerate(props):
            m.fill_next_token_bitmask(masks, i)
            m.accept_token(t)
            n += 1
            if m.is_terminated():
                break
        if not m.is_terminated():
            m.fill_next_token_bitmask(masks, n)
        # 4. ...the target scores all positions in one pass; verify greedily under the masks.
        logits = target.logits_many(prompt + out, props[:n])
        fcg.apply_token_bitmask_inplace(logits[: n + 1], masks[: n + 1])
        ok = 0
        while ok < n and int(np.argmax(logits[ok])) == props[ok]:
            ok += 1
        proposed += n
        accepted += ok
        # 5. Roll the matcher back to the accepted prefix, then take the target's own token there.
        m.rollback(n - ok)
        out.extend(props[:ok])
        if m.is_terminated() or budget_spent(m, out, budget):
            break
        t = int(np.argmax(logits[ok]))  # masks[ok] was filled in this very state
        assert m.accept_token(t)
        out.append(t)
    return out, proposed, accepted


# ---------------------------------------------------------------------------------------------- main
def load_vocab(tokenizer: Optional[str]):
    if tokenizer:
        return fcg.Vocabulary.from_tokenizer_json(tokenizer)
    from fcgrammar.demo_vocab import demo_vocabulary

    v = demo_vocabulary()
    text = {t: i for i, t in enumerate(v.tokens) if i not in v.special_ids}
    longest = max(len(t) for t in text)

    def greedy_encode(s: str) -> List[int]:  # longest-match tokenizer, enough for forced text
        b, ids, i = s.encode("utf-8"), [], 0
        while i < len(b):
            for n in range(min(longest, len(b) - i), 0, -1):
                if b[i:i + n] in text:
                    ids.append(text[b[i:i + n]])
                    i += n
                    break
        return ids

    return fcg.Vocabulary(v.tokens, v.special_ids, v.stop_ids, v.size, v.kind, v.add_prefix_space, v.name,
                          encoder=greedy_encode)


def run(tokenizer: Optional[str] = None, seed: int = 0, max_tokens: int = 64, quiet: bool = False) -> dict:
    vocab = load_vocab(tokenizer)
    grammar = fcg.Compiler(vocab).compile_json_schema(SCHEMA)
    prompt = [1, 2, 3]
    say = (lambda *a: None) if quiet else print

    def text(ids):
        body = [t for t in ids if t not in grammar.stop_ids]
        return vocab.decode(body).decode("utf-8")

    results = {}
    target = ToyLM(vocab.size, seed=seed)
    plain = decode_plain(grammar, target, prompt, max_tokens)
    say(f"plain        {target.forward_passes:3d} forward passes  {text(plain)}")
    results["plain"] = (plain, target.forward_passes)

    rng = np.random.default_rng(seed)
    target = ToyLM(vocab.size, seed=seed)
    sampled = decode_plain(grammar, target, prompt, max_tokens, rng=rng)
    say(f"sampled      {target.forward_passes:3d} forward passes  {text(sampled)}")
    results["sampled"] = (sampled, target.forward_passes)

    target = ToyLM(vocab.size, seed=seed)
    jf, forced = decode_jump_forward(grammar, target, prompt, max_tokens)
    say(f"jump-forward {target.forward_passes:3d} forward passes  {text(jf)}  ({forced} forced tokens)")
    results["jump_forward"] = (jf, target.forward_passes, forced)

    target = ToyLM(vocab.size, seed=seed)
    draft = ToyLM(vocab.size, seed=seed + 1, noise_from=target, noise=0.3)
    spec, proposed, accepted = decode_speculative(grammar, target, draft, prompt, max_tokens)
    say(f"speculative  {target.forward_passes:3d} target passes   {text(spec)}  "
        f"({accepted}/{proposed} draft tokens accepted)")
    results["speculative"] = (spec, target.forward_passes, proposed, accepted)
    results["texts"] = {k: text(v[0]) for k, v in results.items() if isinstance(v, tuple)}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", help="a Hugging Face tokenizer.json (default: the embedded demo vocabulary)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    res = run(args.tokenizer, args.seed, args.max_tokens)
    for name, t in res["texts"].items():
        json.loads(t)  # every output parses
    print("all outputs parse as JSON; greedy speculative == greedy plain:",
          res["speculative"][0] == res["plain"][0])


if __name__ == "__main__":
    main()
