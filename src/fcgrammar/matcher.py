"""Matcher: walks a compiled grammar token by token and writes the allowed-token bitmask.

Names follow xgrammar's so that switching engines is an import change.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import _core
from .compiler import CompiledGrammar
from .errors import MatcherError

# Longest forced run we look ahead for jump-forward decoding.
_FORCED_LIMIT = 256


def _np_view(bitmask):
    """A C-contiguous int32 numpy view of a bitmask (numpy array or CPU torch tensor)."""
    if isinstance(bitmask, np.ndarray):
        arr = bitmask
    elif hasattr(bitmask, "device") and hasattr(bitmask, "numpy"):
        if bitmask.device.type != "cpu":
            raise MatcherError("fill the bitmask on the CPU, then move it to the device "
                               "(apply_token_bitmask_inplace does that for you)")
        arr = bitmask.numpy()
    else:
        raise MatcherError(f"bitmask must be a numpy array or a torch tensor, not {type(bitmask).__name__}")
    if arr.dtype != np.int32 or arr.ndim not in (1, 2) or not arr.flags.c_contiguous:
        raise MatcherError("bitmask must be a C-contiguous int32 array of shape [batch, ceil(vocab/32)]")
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


class Matcher(_core.Matcher):
    """Per-request state over a shared :class:`CompiledGrammar`.

    ``max_tokens``: the token budget of the generation. When given, the mask only allows tokens from which a
    complete output is still reachable within the remaining budget, so a generation cut by ``max_tokens``
    still ends in a complete, parseable value.

    The per-token methods (``fill_next_token_bitmask``, ``accept_token``, ``rollback``, ``is_accepting``,
    ``is_terminated``, ``reset``) are the engine's own, called with no Python layer in between: the bitmask
    is a C-contiguous int32 numpy array or CPU torch tensor of shape ``[batch, ceil(vocab/32)]`` (or one
    row), written in place, never converted.
    """

    __slots__ = ("grammar",)

    def __init__(self, grammar: CompiledGrammar, max_tokens: Optional[int] = None):
        if grammar.vocab is None:
            raise MatcherError("this grammar was compiled without a vocabulary")
        super().__init__(grammar._core, -1 if max_tokens is None else int(max_tokens))
        self.grammar = grammar

    # -- stepping ----------------------------------------------------------------------------------------
    def accept_tokens(self, token_ids: Sequence[int]) -> bool:
        """Advance by all tokens, or by none (returns False and leaves the state unchanged)."""
        ids = [int(t) for t in token_ids]
        n = _core.Matcher.accept_tokens(self, ids)
        if n != len(ids):
            self.rollback(n)
            return False
        return True

    def accept_string(self, text) -> bool:
        """Advance by raw text (counts as one step for rollback); for prompts and tests."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return bool(self.accept_bytes(data))

    def validate_tokens(self, token_ids: Sequence[int]) -> int:
        """Length of the longest prefix of ``token_ids`` the grammar accepts; the state is unchanged."""
        return int(_core.Matcher.validate_tokens(self, [int(t) for t in token_ids]))

    def copy(self) -> "Matcher":
        """An independent matcher in the same state (for forks, speculation, beam search)."""
        new = type(self).__new__(type(self))
        _core.Matcher.__init__(new, self.grammar._core, -1)
        new._assign(self)
        new.grammar = self.grammar
        return new

    fork = copy

    # -- state ---------------------------------------------------------------------------------------------
    is_completed = _core.Matcher.is_accepting

    @property
    def min_tokens_to_finish(self) -> int:
        """An upper bound on the tokens still needed to complete (one per byte or special token)."""
        return int(self.min_cost_to_finish)

    # -- jump-forward ----------------------------------------------------------------------------------
    def forced_bytes(self) -> bytes:  # type: ignore[override]
        """The bytes the grammar forces next (one possible byte at each step)."""
        return bytes(_core.Matcher.forced_bytes(self, _FORCED_LIMIT))

    def forced_tokens(self) -> List[int]:
        """Tokens the grammar forces next, tokenized canonically, for jump-forward decoding.

        The forced bytes are tokenized with the vocabulary's own encoder; trailing tokens are dropped while a
        longer token the grammar allows could span the end of the forced text (so the result is a prefix of
        the canonical tokenization of any continuation). Empty when nothing is forced or no encoder exists.
        """
        data = _whole_characters(self.forced_bytes())
        if not data:
            return []
        vocab = self.grammar.vocab
        ids = vocab.encode(data) if hasattr(vocab, "encode") else None
        if not ids:
            return []
        if vocab.decode(ids) != data:
            return []
        # Drop trailing tokens while a grammar-allowed token starting where the last kept token starts
        # would reach past the forced text.
        kept: List[int] = []
        offsets = []
        pos = 0
        for t in ids:
            offsets.append(pos)
            pos += len(vocab.decode([t]))
        for j in range(len(ids), 0, -1):
            probe = self.copy()
            if not probe.accept_tokens(ids[: j - 1]):
                continue
            if not _longer_token_allowed(probe, data[offsets[j - 1]:]):
                kept = ids[:j]
                break
        return kept

    def __repr__(self) -> str:
        return (f"Matcher(tokens={self.num_tokens}, accepting={self.is_accepting()}, "
                f"terminated={self.is_terminated()})")


def _whole_characters(data: bytes) -> bytes:
    """The forced bytes up to the last whole UTF-8 character; empty when they start inside one (after a
    token that ended mid-character: its other bytes have no canonical tokenization of their own)."""
    while data:
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError as e:
            if e.start == 0:
                return b""
            data = data[:e.start]
    return data


def _longer_token_allowed(m: Matcher, tail: bytes) -> bool:
    """Is there a token the grammar allows now whose bytes start with ``tail`` and are longer?"""
    vocab = m.grammar.vocab
    mask = allocate_token_bitmask(1, vocab.size)
    m.fill_next_token_bitmask(mask)
    bits = np.unpackbits(mask.view(np.uint8), bitorder="little")[: vocab.size]
    for t in np.flatnonzero(bits):
        if t < len(vocab.tokens):
            b = vocab.tokens[t]
            if len(b) > len(tail) and b.startswith(tail) and t not in vocab.special_ids:
                return True
    return False


def allocate_token_bitmask(batch_size: int, vocab_size: int, *, backend: str = "numpy"):
    """An int32 bitmask of shape ``[batch_size, ceil(vocab_size / 32)]``, all tokens allowed (-1).

    ``backend="torch"`` returns a CPU torch tensor (torch must be installed).
    """
    words = (int(vocab_size) + 31) // 32
    if backend == "numpy":
        return np.full((int(batch_size), words), -1, dtype=np.int32)
    if backend == "torch":
        import torch

        return torch.full((int(batch_size), words), -1, dtype=torch.int32)
    raise ValueError(f"unknown backend {backend!r} (use 'numpy' or 'torch')")


def fill_next_token_bitmask_batch(matchers: Sequence[Matcher], bitmask, indices: Optional[Sequence[int]] = None,
                                  *, threads: int = 0) -> None:
    """Fill one row per matcher (row ``indices[i]``, default ``i``) across threads (GIL released)."""
    import os

    arr = _np_view(bitmask)
    rows = list(range(len(matchers))) if indices is None else [int(i) for i in indices]
    n = threads or min(len(matchers), os.cpu_count() or 1)
    _core.batch_fill(list(matchers), arr, rows, int(n))


def apply_token_bitmask_inplace(logits, bitmask, *, vocab_size: Optional[int] = None,
                                indices: Optional[Sequence[int]] = None) -> None:
    """Set the logits of disallowed tokens to -inf, in place.

    ``logits``: ``[batch, vocab]`` or ``[vocab]``, numpy or torch (any device: on CUDA the mask is applied on the
    device, with no host round trip of the logits). ``indices``: only these rows (rows of both tensors).
    Columns at or beyond ``vocab_size`` (default: the logits' width) are masked as well.
    """
    if isinstance(logits, np.ndarray):
        _apply_numpy(logits, bitmask, vocab_size, indices)
        return
    _apply_torch(logits, bitmask, vocab_size, indices)


def _apply_numpy(logits, bitmask, vocab_size, indices) -> None:
    lg = logits.reshape(1, -1) if logits.ndim == 1 else logits
    bm = np.ascontiguousarray(bitmask, dtype=np.int32)
    bm = bm.reshape(1, -1) if bm.ndim == 1 else bm
    rows = [] if indices is None else [int(i) for i in indices]
    if lg.dtype == np.float32 and lg.strides[1] == 4 and vocab_size is None:
        _core.apply_bitmask_f32(lg, bm, rows)
        return
    V = lg.shape[1] if vocab_size is None else min(int(vocab_size), lg.shape[1])
    sel = range(lg.shape[0]) if indices is None else rows
    for r in sel:
        bits = np.unpackbits(bm[r].view(np.uint8), bitorder="little")
        allowed = np.zeros(lg.shape[1], dtype=bool)
        n = min(V, bits.size)
        allowed[:n] = bits[:n].astype(bool)
        lg[r, ~allowed] = -np.inf


def _apply_torch(logits, bitmask, vocab_size, indices) -> None:
    import torch

    lg = logits.unsqueeze(0) if logits.dim() == 1 else logits
    bm = bitmask if isinstance(bitmask, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(bitmask))
    bm = bm.unsqueeze(0) if bm.dim() == 1 else bm
    if lg.device.type == "cpu" and lg.dtype == torch.float32 and lg.stride(1) == 1 and vocab_size is None:
        rows = [] if indices is None else [int(i) for i in indices]
        _core.apply_bitmask_f32(lg.detach().numpy(), bm.numpy() if bm.device.type == "cpu" else bm.cpu().numpy(),
                                rows)
        return
    bm = bm.to(lg.device, non_blocking=True)
    V = lg.shape[1] if vocab_size is None else min(int(vocab_size), lg.shape[1])
    if indices is not None:
        idx = torch.as_tensor(list(indices), device=lg.device, dtype=torch.long)
        sub_bits = bm.index_select(0, idx)
    else:
        idx = None
        sub_bits = bm[: lg.shape[0]]
    shifts = torch.arange(32, device=lg.device, dtype=torch.int32)
    allowed = ((sub_bits.unsqueeze(-1) >> shifts) & 1).bool().reshape(sub_bits.shape[0], -1)
    full = torch.zeros((sub_bits.shape[0], lg.shape[1]), dtype=torch.bool, device=lg.device)
    n = min(V, allowed.shape[1])
    full[:, :n] = allowed[:, :n]
    if idx is None:
        lg.masked_fill_(~full, float("-inf"))
    else:
        rows = lg.index_select(0, idx)
        rows.masked_fill_(~full, float("-inf"))
        lg.index_copy_(0, idx, rows)
