"""The adversarial model of the walk tests: a uniform choice among the tokens the mask allows.

Whatever the mask lets through, a random-weight model eventually emits; a walk that always picks uniformly
among the allowed tokens (inside a string, almost every token) is the worst such model there is.
"""
from __future__ import annotations

import random
from typing import List, Optional

import numpy as np

import fcgrammar as fcg


def byte_vocabulary(stop: bytes = b"<|end|>") -> fcg.Vocabulary:
    """The 256 single bytes (ids 0-255) and one special stop token (id 256)."""
    return fcg.Vocabulary.from_tokens([bytes([b]) for b in range(256)] + [stop], special_ids=[256],
                                      stop_ids=[256])


def allowed_ids(mask: np.ndarray, size: int, row: int = 0) -> np.ndarray:
    """The token ids whose bit is set in row `row` of an int32 bitmask, below `size`."""
    return np.flatnonzero(np.unpackbits(mask[row].view(np.uint8), bitorder="little")[:size])


def random_walk(matcher: fcg.Matcher, rng: random.Random, size: int, mask: Optional[np.ndarray] = None,
                max_tokens: Optional[int] = None) -> List[int]:
    """Uniform choices among the allowed tokens until the matcher terminates (or holds `max_tokens` tokens);
    every mask must allow something and every choice must be accepted. Returns the ids taken."""
    if mask is None:
        mask = fcg.allocate_token_bitmask(1, size)
    out: List[int] = []
    while not matcher.is_terminated() and (max_tokens is None or matcher.num_tokens < max_tokens):
        matcher.fill_next_token_bitmask(mask)
        allowed = allowed_ids(mask, size)
        assert allowed.size, f"the mask went empty before the output was complete, after {out[-20:]}"
        t = int(allowed[rng.randrange(allowed.size)])
        assert matcher.accept_token(t)
        out.append(t)
    return out
