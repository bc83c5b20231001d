"""Vocabulary: the exact bytes every token id contributes to decoded text.

This is the layer between a tokenizer (HF ``tokenizer.json``, a ``transformers`` tokenizer, a llama.cpp
GGUF, or a plain list of byte strings) and the C++ engine, which builds its token trie from
:attr:`Vocabulary.tokens`. See ``docs/vocabulary.md`` for the design.

Only the standard library and numpy are needed at import time. ``tokenizers`` is imported lazily, on the
first :meth:`Vocabulary.encode`; ``transformers`` objects are duck-typed (never imported); GGUF files are read
by a small built-in reader of the GGUF key/value header (the ``gguf`` package is not required).
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
import threading
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import TokenizerError

__all__ = [
    "Vocabulary",
    "KNOWN_STOP_TOKENS",
    "byte_level_decode",
    "bytes_to_unicode",
    "read_gguf_metadata",
]

KINDS = ("byte_level", "sentencepiece", "raw")

#: End-of-generation tokens recognised by their text when present as an added/control token.
KNOWN_STOP_TOKENS: Tuple[str, ...] = (
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|endoftext|>",
    "</s>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>",  # DeepSeek: <｜end▁of▁sentence｜>
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<eos>",
    "<end_of_turn>",
)

_SPM_SPACE = "\u2581"  # ▁
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_GGUF_PAD = re.compile(rb"^\[PAD(\d+)\]$")


def _is_gguf_pad(raw: bytes, i: int) -> bool:
    """llama.cpp's converter fills ids the tokenizer lacks with "[PAD<id>]"."""
    m = _GGUF_PAD.match(raw)
    return bool(m) and int(m.group(1)) == i

# --------------------------------------------------------------------------------------------------
# Byte-level BPE (GPT-2 bytes_to_unicode); tables built once at import (cheap: 256 entries).
# --------------------------------------------------------------------------------------------------


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character map (byte value -> character)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(
        range(ord("\xae"), ord("\xff") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


_BYTE_ENCODER: Dict[int, str] = bytes_to_unicode()
_BYTE_DECODER: Dict[str, int] = {c: b for b, c in _BYTE_ENCODER.items()}
# str.translate table: byte-level character -> the latin-1 character whose code is that byte. Code points
# below 256 that are NOT byte-level characters map to U+FFFF so that the following .encode("latin-1")
# fails on them (as it fails on every other unmapped character), sending the token to the slow path.
_BL_TRANSLATE: Dict[int, int] = {ord(c): b for c, b in _BYTE_DECODER.items()}
for _cp in range(256):
    _BL_TRANSLATE.setdefault(_cp, 0xFFFF)
del _cp


def byte_level_decode(token: str) -> Optional[bytes]:
    """Bytes of one byte-level BPE token string, or None if it holds a character outside the map."""
    try:
        return token.translate(_BL_TRANSLATE).encode("latin-1")
    except UnicodeEncodeError:
        return None


def _byte_level_bytes(token: str) -> bytes:
    b = byte_level_decode(token)
    # Like tokenizers' ByteLevel decoder: a token with any unmapped character is taken as its UTF-8 text.
    return b if b is not None else token.encode("utf-8", "surrogatepass")


_NOT_LATIN1 = re.compile("[^\x00-\xff]")


def _byte_level_into(tokens: List[bytes], pieces: Dict[int, str]) -> None:
    """tokens[i] = bytes of byte-level piece i, for all pieces, with one C-level translate over all of them.

    Every byte-level character stands for exactly one byte, so character offsets in the joined string are
    byte offsets; pieces holding a character outside the map are found by a regex scan and redone one by one.
    """
    ids = list(pieces.keys())
    strs = list(pieces.values())
    translated = "".join(strs).translate(_BL_TRANSLATE)
    blob = translated.encode("latin-1", "replace")
    bad_pos = [m.start() for m in _NOT_LATIN1.finditer(translated)]
    del translated
    off = 0
    for i, s in zip(ids, strs):
        e = off + len(s)
        tokens[i] = blob[off:e]
        off = e
    if bad_pos:
        import bisect
        import itertools

        ends = list(itertools.accumulate(len(s) for s in strs))
        for k in sorted({bisect.bisect_right(ends, p) for p in bad_pos}):
            tokens[ids[k]] = strs[k].encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------------------------------
# The Vocabulary
# --------------------------------------------------------------------------------------------------

EncoderLike = Union[Callable[[str], Sequence[int]], Any]


class Vocabulary:
    """Token id -> bytes, plus which ids are special, which stop generation, and the logit width.

    Attributes
    ----------
    tokens: the bytes each token adds to the decoded text (``len(tokens) == n_tokens``). Special tokens hold
        their literal text (``b"<|eot_id|>"``); holes (ids the tokenizer does not define) hold ``b""``.
    special_ids: ids never produced by matching text (special/control tokens, holes, stop tokens, and any
        token whose bytes are empty). A grammar may still name them by id.
    stop_ids: end-of-generation ids (always a subset of ``special_ids``).
    size: the logit vocabulary size (``>= n_tokens``); ids in ``[n_tokens, size)`` are padding.
    kind: ``"byte_level"``, ``"sentencepiece"`` or ``"raw"``.
    add_prefix_space: the tokenizer's decoder drops the leading space of the decoded output (SentencePiece
        ``▁`` prepending, e.g. Llama 2 / Mistral / Phi-3), so the first generated token ``▁Hello`` shows as
        ``Hello``. Token bytes always keep the space.
    name: short human-readable name.
    """

    __slots__ = (
        "tokens",
        "special_ids",
        "stop_ids",
        "size",
        "kind",
        "add_prefix_space",
        "name",
        "source",
        "_encoder",
        "_encoder_factory",
        "_encoder_lock",
        "_encoder_error",
        "_hash",
        "_bytes_index",
    )

    def __init__(
        self,
        tokens: Sequence[Union[bytes, bytearray, memoryview, str]],
        special_ids: Iterable[int] = (),
        stop_ids: Iterable[int] = (),
        size: Optional[int] = None,
        kind: str = "raw",
        add_prefix_space: bool = False,
        name: str = "",
        encoder: Optional[EncoderLike] = None,
    ):
        if type(tokens) is list and set(map(type, tokens)) == {bytes}:
            toks: List[bytes] = list(tokens)  # fast path: already bytes
        else:
            toks = self._coerce_tokens(tokens, name)
        n = len(toks)
        if n == 0:
            raise TokenizerError(f"vocabulary {name or '<unnamed>'!r} has no tokens")
        if kind not in KINDS:
            raise TokenizerError(f"unknown vocabulary kind {kind!r} (expected one of {', '.join(KINDS)})")
        if size is None:
            size = n
        size = _as_int(size, "vocab_size")
        if size < n:
            raise TokenizerError(
                f"vocab_size {size} is smaller than the tokenizer's {n} tokens"
                + (f" ({name})" if name else "")
                + "; the logit vocabulary must cover every token id"
            )
        specials = set()
        for s in special_ids:
            s = _as_int(s, "special id")
            if not 0 <= s < n:
                raise TokenizerError(f"special token id {s} out of range [0, {n})")
            specials.add(s)
        stops: List[int] = []
        for s in stop_ids:
            s = _as_int(s, "stop id")
            if not 0 <= s < n:
                raise TokenizerError(f"stop token id {s} out of range [0, {n}) (n_tokens={n}, size={size})")
            if s not in stops:
                stops.append(s)
        specials.update(stops)
        # An empty token would match the empty string: never let text matching see one.
        if b"" in toks:
            specials.update(i for i, t in enumerate(toks) if not t)

        self.tokens: List[bytes] = toks
        self.special_ids: FrozenSet[int] = frozenset(specials)
        self.stop_ids: Tuple[int, ...] = tuple(stops)
        self.size: int = size
        self.kind: str = kind
        self.add_prefix_space: bool = bool(add_prefix_space)
        self.name: str = name
        self.source: Optional[str] = None
        self._encoder = encoder
        self._encoder_factory: Optional[Callable[[], Any]] = None
        self._encoder_lock = threading.Lock()
        self._encoder_error: Optional[str] = None
        self._hash: Optional[str] = None
        self._bytes_index: Optional[Dict[bytes, List[int]]] = None

    @staticmethod
    def _coerce_tokens(tokens: Iterable[Any], name: str) -> List[bytes]:
        toks: List[bytes] = []
        for i, t in enumerate(tokens):
            if isinstance(t, bytes):
                toks.append(t)
            elif isinstance(t, (bytearray, memoryview)):
                toks.append(bytes(t))
            elif isinstance(t, str):
                toks.append(t.encode("utf-8"))
            elif t is None:
                toks.append(b"")
            else:
                raise TokenizerError(f"token {i} of vocabulary {name or '<unnamed>'!r} is {type(t).__name__}, expected bytes")
        return toks

    # ---------------------------------------------------------------------------------------- basics
    @property
    def n_tokens(self) -> int:
        """Number of token ids the tokenizer defines (highest id + 1)."""
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return (
            f"Vocabulary(name={self.name!r}, kind={self.kind!r}, n_tokens={self.n_tokens}, size={self.size}, "
            f"special={len(self.special_ids)}, stop_ids={list(self.stop_ids)}, add_prefix_space={self.add_prefix_space})"
        )

    def is_special(self, token_id: int) -> bool:
        """True for special/control tokens, holes and padding ids."""
        return token_id in self.special_ids or not 0 <= token_id < self.n_tokens

    @property
    def text_ids(self) -> List[int]:
        """Ids of the ordinary (text-matchable) tokens, ascending."""
        sp = self.special_ids
        return [i for i in range(self.n_tokens) if i not in sp]

    def special_mask(self) -> np.ndarray:
        """uint8 array of length n_tokens, 1 for special ids."""
        m = np.zeros(self.n_tokens, dtype=np.uint8)
        if self.special_ids:
            m[np.fromiter(self.special_ids, dtype=np.int64, count=len(self.special_ids))] = 1
        return m

    def token_ids(self, content: Union[str, bytes], special: Optional[bool] = None) -> List[int]:
        """All ids whose bytes equal ``content`` (optionally only special or only text tokens)."""
        if isinstance(content, str):
            content = content.encode("utf-8")
        if self._bytes_index is None:
            idx: Dict[bytes, List[int]] = {}
            for i, t in enumerate(self.tokens):
                if t:
                    idx.setdefault(t, []).append(i)
            self._bytes_index = idx
        ids = self._bytes_index.get(content, [])
        if special is None:
            return list(ids)
        return [i for i in ids if (i in self.special_ids) == special]

    def token_id(self, content: Union[str, bytes]) -> Optional[int]:
        """The id of a token by its text: a special token if one has this text, else the lowest text token."""
        ids = self.token_ids(content)
        if not ids:
            return None
        for i in ids:
            if i in self.special_ids:
                return i
        return ids[0]

    def decode(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of ``ids`` (special tokens contribute their text, padding nothing)."""
        toks = self.tokens
        n = len(toks)
        out = []
        for i in ids:
            i = int(i)
            if 0 <= i < n:
                out.append(toks[i])
            elif not n <= i < self.size:
                raise TokenizerError(f"token id {i} out of range [0, {self.size}) for vocabulary {self.name!r}")
        return b"".join(out)

    # ------------------------------------------------------------------------------------------ hash
    def hash(self) -> str:
        """Stable sha256 (hex) of everything the engine depends on; use as a cache key."""
        if self._hash is None:
            h = hashlib.sha256()
            h.update(b"fcgrammar.Vocabulary.v1\0")
            h.update(struct.pack("<qqB", self.n_tokens, self.size, 1 if self.add_prefix_space else 0))
            lens = np.fromiter((len(t) for t in self.tokens), dtype="<u4", count=self.n_tokens)
            h.update(lens.tobytes())
            h.update(b"".join(self.tokens))
            h.update(np.array(sorted(self.special_ids), dtype="<i8").tobytes())
            h.update(b"\0stop\0")
            h.update(np.array(self.stop_ids, dtype="<i8").tobytes())
            self._hash = h.hexdigest()
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.hash() == other.hash()

    def __hash__(self) -> int:
        return hash(self.hash())

    # ---------------------------------------------------------------------------------------- encode
    @property
    def has_encoder(self) -> bool:
        return self._encoder is not None or self._encoder_factory is not None

    @property
    def encoder_error(self) -> Optional[str]:
        """Why :meth:`encode` returns None for a vocabulary that had an encoder source (else None)."""
        return self._encoder_error

    def _get_encoder(self) -> Optional[Any]:
        if self._encoder is None and self._encoder_factory is not None:
            with self._encoder_lock:
                if self._encoder is None and self._encoder_factory is not None:
                    try:
                        self._encoder = self._encoder_factory()
                    except ImportError as e:  # tokenizers not installed: may be installed later, retry then
                        self._encoder_error = f"the 'tokenizers' package is needed for encode(): {e}"
                        return None
                    except Exception as e:
                        self._encoder_error = f"the tokenizers library cannot load this tokenizer: {e}"
                        self._encoder_factory = None
                        return None
                    self._encoder_factory = None
                    self._encoder_error = None
        return self._encoder

    def encode(self, data: Union[bytes, str]) -> Optional[List[int]]:
        """Canonical tokenization of plain text: no BOS/EOS, special-token text treated as text.

        Exact: ``decode(encode(s)) == s`` (for tokenizers with a normalizer, for normalized ``s``). For
        ``add_prefix_space`` vocabularies no ``▁`` is prepended; ``encode(" " + s)`` gives the usual
        SentencePiece tokenization of ``s`` as the start of a text. Returns None when no encoder is available
        (GGUF, :meth:`from_tokens`, or ``tokenizers`` not installed).
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as e:
                raise TokenizerError(f"encode() needs UTF-8 text: {e}") from None
        else:
            text = data
        enc = self._get_encoder()
        if enc is None:
            return None
        if hasattr(enc, "encode") and hasattr(enc, "get_vocab_size"):  # tokenizers.Tokenizer
            return list(enc.encode(text, add_special_tokens=False).ids)
        return [int(i) for i in enc(text)]

    # ------------------------------------------------------------------------------------ factories
    @classmethod
    def from_tokens(
        cls,
        tokens: Sequence[Union[bytes, str]],
        special_ids: Iterable[int] = (),
        stop_ids: Iterable[int] = (),
        vocab_size: Optional[int] = None,
        add_prefix_space: bool = False,
        name: str = "",
    ) -> "Vocabulary":
        """A vocabulary from explicit token bytes (``str`` entries are UTF-8 encoded; ``None`` is a hole)."""
        if isinstance(tokens, (bytes, str)):
            raise TokenizerError("from_tokens() needs a sequence of tokens, not a single bytes/str")
        return cls(tokens, special_ids, stop_ids, vocab_size, "raw", add_prefix_space, name)

    @classmethod
    def from_tokenizer_json(
        cls,
        path: Union[str, os.PathLike],
        vocab_size: Optional[int] = None,
        stop_ids: Optional[Iterable[Union[int, str]]] = None,
        tokenizer_config: Union[None, str, os.PathLike, Dict[str, Any]] = None,
    ) -> "Vocabulary":
        """Read a Hugging Face ``tokenizer.json`` directly (json module; works where ``tokenizers`` refuses).

        ``tokenizer_config``: path or dict; by default ``tokenizer_config.json`` beside ``path`` is used when
        present (its ``eos_token`` is a stop token). ``generation_config.json`` beside it (``eos_token_id``)
        adds stop ids, and ``config.json`` beside it supplies ``vocab_size`` when the argument is None.
        """
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise TokenizerError(f"cannot read tokenizer file {str(p)!r}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise TokenizerError(f"tokenizer file {str(p)!r} is not UTF-8 text: {e}") from None
        try:
            tj = json.loads(text)
        except json.JSONDecodeError as e:
            raise TokenizerError(f"tokenizer file {str(p)!r} is not valid JSON: {e}") from None
        del text

        cfg = _load_side_json(tokenizer_config, p.parent / "tokenizer_config.json", "tokenizer_config")
        gen = _load_side_json(None, p.parent / "generation_config.json", "generation_config")
        if vocab_size is None:
            vocab_size = _config_vocab_size(_load_side_json(None, p.parent / "config.json", "config"))
        name = p.parent.name if p.name == "tokenizer.json" and p.parent.name else p.stem

        parsed = _parse_tokenizer_json(tj, str(p))
        vocab = _build_from_parsed(parsed, cfg, gen, vocab_size, stop_ids, name, str(p))
        vocab.source = str(p)
        spath = str(p)
        vocab._encoder_factory = _encoder_factory(
            parsed,
            vocab,
            lambda: json.loads(Path(spath).read_text("utf-8")),
            lambda tokenizers: tokenizers.Tokenizer.from_file(spath),
            spath,
        )
        return vocab

    @classmethod
    def from_hf(
        cls,
        hf_tokenizer: Any,
        vocab_size: Optional[int] = None,
        stop_ids: Optional[Iterable[Union[int, str]]] = None,
    ) -> "Vocabulary":
        """From a ``transformers`` fast tokenizer (``PreTrainedTokenizerFast``) or a ``tokenizers.Tokenizer``."""
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend is None and hasattr(hf_tokenizer, "to_str") and hasattr(hf_tokenizer, "get_vocab_size"):
            backend = hf_tokenizer  # a tokenizers.Tokenizer
            hf = None
        else:
            hf = hf_tokenizer
        if backend is None:
            raise TokenizerError(
                f"{type(hf_tokenizer).__name__} has no Rust backend (a 'slow' tokenizer); load it with "
                "AutoTokenizer.from_pretrained(..., use_fast=True) or pass its tokenizer.json to from_tokenizer_json"
            )
        try:
            tj = json.loads(backend.to_str())
        except Exception as e:
            raise TokenizerError(f"cannot serialise {type(backend).__name__} to JSON: {e}") from None
        name = str(getattr(hf, "name_or_path", "") or "") if hf is not None else ""
        name = Path(name).name if name else "hf"
        cfg: Dict[str, Any] = {}
        extra_special: List[int] = []
        if hf is not None:
            eos = getattr(hf, "eos_token", None)
            if eos:
                cfg["eos_token"] = str(eos)
            try:
                extra_special = [int(i) for i in (getattr(hf, "all_special_ids", None) or []) if i is not None]
            except Exception:
                extra_special = []
        parsed = _parse_tokenizer_json(tj, name)
        parsed.special.update(i for i in extra_special if 0 <= i < parsed.n_tokens)
        vocab = _build_from_parsed(parsed, cfg, None, vocab_size, stop_ids, name, name)
        vocab._encoder_factory = _encoder_factory(
            parsed,
            vocab,
            lambda: json.loads(backend.to_str()),
            lambda tokenizers: tokenizers.Tokenizer.from_str(backend.to_str()),  # a private copy
            name,
        )
        return vocab

    @classmethod
    def from_gguf(
        cls,
        path: Union[str, os.PathLike],
        vocab_size: Optional[int] = None,
        stop_ids: Optional[Iterable[Union[int, str]]] = None,
    ) -> "Vocabulary":
        """Read the vocabulary of a llama.cpp GGUF file (vocab-only files work; tensors are never read)."""
        p = str(path)
        meta = read_gguf_metadata(p, keys=_GGUF_KEYS)
        model = meta.get("tokenizer.ggml.model")
        if isinstance(model, bytes):
            model = model.decode("utf-8", "replace")
        raw_tokens = meta.get("tokenizer.ggml.tokens")
        if model is None or raw_tokens is None:
            raise TokenizerError(f"GGUF file {p!r} has no tokenizer (tokenizer.ggml.model / tokenizer.ggml.tokens missing)")
        if model in ("llama", "t5"):
            kind = "sentencepiece"
        elif model == "gpt2":
            kind = "byte_level"
        else:
            raise TokenizerError(
                f"GGUF file {p!r}: tokenizer model {model!r} is not supported (supported: 'llama' and 't5' "
                "SentencePiece, 'gpt2' byte-level BPE)"
            )
        n = len(raw_tokens)
        types = meta.get("tokenizer.ggml.token_type")
        if types is None:
            types = np.ones(n, dtype=np.int32)
        types = np.asarray(types)
        if len(types) != n:
            raise TokenizerError(f"GGUF file {p!r}: {n} tokens but {len(types)} token types")

        tokens: List[bytes] = [b""] * n
        special: set = set()
        candidates: Dict[str, int] = {}  # text of non-normal tokens, for stop detection
        tr = _BL_TRANSLATE
        spm_space = _SPM_SPACE.encode("utf-8")
        type_list = types.tolist()
        for i in range(n):
            raw = raw_tokens[i]
            t = type_list[i]
            if t == 1 or t == 0:  # normal (0: undefined, treated as normal like llama.cpp)
                if raw[:4] == b"[PAD" and _is_gguf_pad(raw, i):
                    special.add(i)  # converter padding ("[PAD151646]"): a hole
                elif kind == "byte_level":
                    try:
                        tokens[i] = raw.decode("utf-8").translate(tr).encode("latin-1")
                    except UnicodeError:  # not a byte-level string: its UTF-8 text, like tokenizers
                        tokens[i] = raw
                else:
                    tokens[i] = raw.replace(spm_space, b" ")
                continue
            if raw[:4] == b"[PAD" and _is_gguf_pad(raw, i):
                special.add(i)
                continue
            if t == 6:  # byte
                mb = _BYTE_PIECE.match(raw.decode("utf-8", "replace"))
                if mb:
                    tokens[i] = bytes([int(mb.group(1), 16)])
                elif kind == "byte_level":
                    tokens[i] = _byte_level_bytes(raw.decode("utf-8", "replace"))
                else:
                    tokens[i] = raw
            elif t == 4:  # user-defined: literal text, matched as text
                tokens[i] = raw
                candidates.setdefault(raw.decode("utf-8", "replace"), i)
            else:  # 2 unknown, 3 control, 5 unused
                tokens[i] = raw
                special.add(i)
                candidates.setdefault(raw.decode("utf-8", "replace"), i)

        auto_stops: List[int] = []
        for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"):
            v = meta.get(key)
            if isinstance(v, (int, np.integer)) and 0 <= int(v) < n and tokens[int(v)]:
                auto_stops.append(int(v))
        for s in KNOWN_STOP_TOKENS:
            if s in candidates:
                auto_stops.append(candidates[s])
        text_index = {raw_tokens[i].decode("utf-8", "replace"): i for i in candidates.values()}
        stops = _resolve_stop_ids(stop_ids, auto_stops, text_index, tokens, p)

        aps = meta.get("tokenizer.ggml.add_space_prefix")
        add_prefix_space = bool(aps) if aps is not None else (kind == "sentencepiece")
        gname = meta.get("general.name")
        if isinstance(gname, bytes):
            gname = gname.decode("utf-8", "replace")
        name = gname or Path(p).stem
        if vocab_size is None:
            vocab_size = n
        vocab = cls(tokens, special, stops, vocab_size, kind, add_prefix_space, str(name))
        vocab.source = p
        return vocab


# --------------------------------------------------------------------------------------------------
# tokenizer.json parsing
# --------------------------------------------------------------------------------------------------


class _Parsed:
    __slots__ = (
        "tokens", "special", "added_text", "kind", "add_prefix_space", "n_tokens", "encoder_patches", "holes",
        "added_text_ids",
    )

    def __init__(self) -> None:
        self.tokens: List[bytes] = []
        self.special: set = set()
        self.added_text: Dict[str, int] = {}  # content of added tokens -> id (for stop detection)
        self.kind = "raw"
        self.add_prefix_space = False
        self.n_tokens = 0
        self.encoder_patches: List[str] = []
        self.holes = 0
        self.added_text_ids: set = set()  # added tokens with special=false


def _walk(node: Any, key: str) -> List[Dict[str, Any]]:
    """Flatten a (possibly nested Sequence) normalizer/pre_tokenizer/decoder into a list of components."""
    if not isinstance(node, dict):
        return []
    if node.get("type") == "Sequence":
        out: List[Dict[str, Any]] = []
        for sub in node.get(key) or []:
            out.extend(_walk(sub, key))
        return out
    return [node]


def _metaspace_prepends(comp: Dict[str, Any]) -> bool:
    scheme = comp.get("prepend_scheme")
    if scheme is not None:
        return scheme in ("always", "first")
    return bool(comp.get("add_prefix_space", True))


def _parse_tokenizer_json(tj: Any, where: str) -> _Parsed:
    if not isinstance(tj, dict) or not isinstance(tj.get("model"), dict):
        raise TokenizerError(f"{where!r} is not a Hugging Face tokenizer.json (no 'model' object)")
    model = tj["model"]
    mtype = model.get("type")
    vocab = model.get("vocab")
    if mtype is None:  # very old files omit the type
        mtype = "BPE" if "merges" in model else ("Unigram" if isinstance(vocab, list) else "WordLevel")
    if mtype == "WordPiece":
        raise TokenizerError(
            f"{where!r}: WordPiece tokenizers are not supported (their decoder inserts spaces between "
            "tokens depending on '##' continuation, so token bytes are not context-free)"
        )
    if mtype not in ("BPE", "Unigram", "WordLevel"):
        raise TokenizerError(f"{where!r}: unsupported tokenizer model type {mtype!r}")

    # id -> piece string from the model
    pieces: Dict[int, str] = {}
    if mtype == "Unigram":
        if not isinstance(vocab, list):
            raise TokenizerError(f"{where!r}: Unigram model.vocab must be a list of [piece, score]")
        for i, ent in enumerate(vocab):
            pieces[i] = ent[0] if isinstance(ent, (list, tuple)) else str(ent)
    else:
        if not isinstance(vocab, dict):
            raise TokenizerError(f"{where!r}: {mtype} model.vocab must be an object token -> id")
        for s, i in vocab.items():
            if not isinstance(i, int) or i < 0:
                raise TokenizerError(f"{where!r}: model.vocab[{s!r}] = {i!r} is not a token id")
            prev = pieces.get(i)
            if prev is not None and prev != s:
                raise TokenizerError(f"{where!r}: token id {i} is given to both {prev!r} and {s!r} in model.vocab")
            pieces[i] = s

    added: Dict[int, Tuple[str, bool]] = {}
    for a in tj.get("added_tokens") or []:
        try:
            added[int(a["id"])] = (str(a["content"]), bool(a.get("special", False)))
        except (KeyError, TypeError, ValueError):
            raise TokenizerError(f"{where!r}: malformed added_tokens entry {a!r}") from None

    all_ids = list(pieces) + list(added)
    if not all_ids:
        raise TokenizerError(f"{where!r}: the tokenizer defines no tokens")
    n = max(all_ids) + 1

    # ---- how the decoder turns pieces into text
    decoders = _walk(tj.get("decoder"), "decoders")
    normalizers = _walk(tj.get("normalizer"), "normalizers")
    pretoks = _walk(tj.get("pre_tokenizer"), "pretokenizers")
    dtypes = [d.get("type") for d in decoders]
    byte_level = "ByteLevel" in dtypes
    byte_fallback = bool(model.get("byte_fallback")) or "ByteFallback" in dtypes
    replaces: List[Tuple[Union[str, "re.Pattern[str]"], str]] = []
    decoder_strips = False
    metaspace_char: Optional[str] = None
    for d in decoders:
        t = d.get("type")
        if t == "Replace":
            pat = d.get("pattern") or {}
            if "String" in pat:
                replaces.append((pat["String"], d.get("content", "")))
            elif "Regex" in pat:
                replaces.append((re.compile(pat["Regex"]), d.get("content", "")))
        elif t == "Metaspace":
            metaspace_char = d.get("replacement", _SPM_SPACE)
            if _metaspace_prepends(d):
                decoder_strips = True
        elif t == "Strip":
            if int(d.get("start", 0)) >= 1 and d.get("content", " ") == " ":
                decoder_strips = True
        elif t in ("WordPiece", "BPEDecoder", "CTC"):
            raise TokenizerError(
                f"{where!r}: decoder {t!r} is not supported (it makes a token's text depend on its neighbours)"
            )
    prepends = False
    patches: List[str] = []
    for nz in normalizers:
        if nz.get("type") == "Prepend" and nz.get("prepend") == _SPM_SPACE:
            prepends = True
            patches.append("normalizer.Prepend")
    for pt in pretoks:
        if pt.get("type") == "Metaspace" and _metaspace_prepends(pt):
            prepends = True
            patches.append("pre_tokenizer.Metaspace")
        if pt.get("type") == "ByteLevel" and pt.get("add_prefix_space"):
            patches.append("pre_tokenizer.ByteLevel")
    merges = model.get("merges")
    if isinstance(merges, list) and merges and _merges_need_fix(merges):
        patches.append("model.merges")

    if byte_level:
        kind = "byte_level"
    elif metaspace_char is not None or any(isinstance(a, str) and a == _SPM_SPACE and b == " " for a, b in replaces):
        kind = "sentencepiece"
    else:
        kind = "raw"

    def piece_bytes(s: str) -> bytes:
        if kind == "byte_level":
            return _byte_level_bytes(s)
        if byte_fallback and len(s) == 6:
            m = _BYTE_PIECE.match(s)
            if m:
                return bytes([int(m.group(1), 16)])
        if metaspace_char is not None:
            s = s.replace(metaspace_char, " ")
        for pat, rep in replaces:
            s = s.replace(pat, rep) if isinstance(pat, str) else pat.sub(rep, s)
        return s.encode("utf-8", "surrogatepass")

    out = _Parsed()
    tokens: List[bytes] = [b""] * n
    special: set = set()
    if kind == "byte_level":
        # fast path: C-level translate per token; only odd tokens take the Python slow path
        _byte_level_into(tokens, pieces)
    else:
        for i, s in pieces.items():
            tokens[i] = piece_bytes(s)
    for i, (content, is_special) in added.items():
        tokens[i] = content.encode("utf-8", "surrogatepass")
        out.added_text.setdefault(content, i)
        if is_special:
            special.add(i)
        else:
            out.added_text_ids.add(i)
    unk = model.get("unk_token")
    if mtype == "Unigram" and isinstance(model.get("unk_id"), int):
        special.add(int(model["unk_id"]))
    elif isinstance(unk, str):
        uid = vocab.get(unk) if isinstance(vocab, dict) else None
        if uid is not None:
            special.add(uid)
    if len(pieces) + len(added) == n and len(pieces.keys() | added.keys()) == n:
        holes: List[int] = []
    else:
        holes = sorted(set(range(n)) - pieces.keys() - added.keys())
    special.update(holes)

    out.tokens = tokens
    out.special = special
    out.kind = kind
    out.add_prefix_space = bool(prepends and decoder_strips)
    out.n_tokens = n
    out.encoder_patches = patches
    out.holes = len(holes)
    return out


def _build_from_parsed(
    parsed: _Parsed,
    cfg: Optional[Dict[str, Any]],
    gen: Optional[Dict[str, Any]],
    vocab_size: Optional[int],
    stop_ids: Optional[Iterable[Union[int, str]]],
    name: str,
    where: str,
) -> Vocabulary:
    special = set(parsed.special)
    n = parsed.n_tokens
    text_index: Dict[str, int] = dict(parsed.added_text)
    auto: List[int] = []
    if cfg:
        # special flags recorded in tokenizer_config.json's added_tokens_decoder
        atd = cfg.get("added_tokens_decoder")
        if isinstance(atd, dict):
            for k, v in atd.items():
                try:
                    i = int(k)
                except ValueError:
                    continue
                if isinstance(v, dict) and v.get("special") and 0 <= i < n:
                    if parsed.tokens[i] == str(v.get("content", "")).encode("utf-8"):
                        special.add(i)
        for key in ("eos_token",):
            c = _token_content(cfg.get(key))
            if c is not None and c in text_index:
                auto.append(text_index[c])
        for key in ("bos_token", "unk_token", "pad_token"):
            c = _token_content(cfg.get(key))
            if c is not None and c in text_index and c:
                special.add(text_index[c])
    if gen:
        e = gen.get("eos_token_id")
        for i in (e if isinstance(e, list) else [e]):
            if isinstance(i, int) and 0 <= i < n:
                auto.append(i)
    for s in KNOWN_STOP_TOKENS:
        if s in text_index:
            auto.append(text_index[s])
    stops = _resolve_stop_ids(stop_ids, auto, text_index, parsed.tokens, where)
    return Vocabulary(parsed.tokens, special, stops, vocab_size, parsed.kind, parsed.add_prefix_space, name)


def _resolve_stop_ids(
    explicit: Optional[Iterable[Union[int, str]]],
    auto: List[int],
    text_index: Dict[str, int],
    tokens: List[bytes],
    where: str,
) -> List[int]:
    if explicit is None:
        out: List[int] = []
        for i in auto:
            if i not in out:
                out.append(i)
        return out
    if isinstance(explicit, (int, str)):
        explicit = [explicit]
    out = []
    for s in explicit:
        if isinstance(s, str):
            i = text_index.get(s)
            if i is None:
                b = s.encode("utf-8")
                cands = [k for k, t in enumerate(tokens) if t == b]
                if not cands:
                    raise TokenizerError(f"stop token {s!r} is not a token of {where!r}")
                i = cands[0]
        else:
            i = _as_int(s, "stop id")
        if i not in out:
            out.append(i)
    return out


def _token_content(v: Any) -> Optional[str]:
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def _config_vocab_size(cfg: Any) -> Optional[int]:
    if not isinstance(cfg, dict):
        return None
    v = cfg.get("vocab_size")
    if v is None and isinstance(cfg.get("text_config"), dict):
        v = cfg["text_config"].get("vocab_size")
    return int(v) if isinstance(v, int) and v > 0 else None


def _load_side_json(given: Any, default_path: Path, what: str) -> Optional[Dict[str, Any]]:
    if isinstance(given, dict):
        return given
    if given is not None:
        path = Path(given)
        if not path.exists():
            raise TokenizerError(f"{what} file {str(path)!r} does not exist")
    else:
        path = default_path
        if not path.exists():
            return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        if given is None:
            return None  # an unreadable optional side file is ignored
        raise TokenizerError(f"cannot read {what} file {str(path)!r}: {e}") from None
    return d if isinstance(d, dict) else None


def _as_int(v: Any, what: str) -> int:
    if isinstance(v, (bool,)) or not isinstance(v, (int, np.integer)):
        raise TokenizerError(f"{what} must be an integer, got {v!r}")
    return int(v)


# ---- encoder (tokenizers) helpers


def _merges_need_fix(merges: List[Any]) -> bool:
    """True when merges use the "a b" string layout with a piece that itself contains a space."""
    if not isinstance(merges[0], str):
        return False  # [a, b] pair layout
    try:
        total = "\n".join(merges).count(" ")
    except TypeError:
        return True  # mixed layouts
    if total == len(merges):
        return False  # one space per merge (a merge without a space would be invalid anyway)
    return any(m.count(" ") != 1 for m in merges)


def _fix_merges(model: Dict[str, Any]) -> None:
    """Rewrite "a b" merge strings as [a, b] pairs; pieces that contain spaces are split using the vocab."""
    vocab = model.get("vocab") or {}
    fixed = []
    for m in model.get("merges") or []:
        if not isinstance(m, str):
            fixed.append(m)
            continue
        parts = m.split(" ")
        if len(parts) == 2:
            fixed.append(parts)
            continue
        for k in range(len(m)):
            if m[k] != " ":
                continue
            a, b = m[:k], m[k + 1:]
            if a and b and a in vocab and b in vocab and (a + b) in vocab:
                fixed.append([a, b])
                break
        else:
            raise TokenizerError(f"cannot split merge {m!r} into two vocabulary pieces")
    model["merges"] = fixed


def _encoder_factory(
    parsed: _Parsed,
    vocab: Vocabulary,
    load_json: Callable[[], Dict[str, Any]],
    load_direct: Callable[[Any], Any],
    where: str,
) -> Callable[[], Any]:
    """A zero-argument function building the (private) tokenizers.Tokenizer behind Vocabulary.encode."""
    patches = list(parsed.encoder_patches)
    # added tokens the file calls special=false but we treat as special (e.g. Phi-3's </s>, a stop token):
    # the encoder must not produce them from text either
    force_special = sorted(parsed.added_text_ids & vocab.special_ids)
    if force_special:
        patches.append("added_tokens.special")

    def factory() -> Any:
        import tokenizers  # lazy: optional dependency

        tok = None
        if not patches:
            try:
                tok = load_direct(tokenizers)
            except Exception:  # e.g. an old merges layout: go through the patched JSON below
                tok = None
        if tok is None:
            tok = _tokenizer_from_json(tokenizers, load_json(), where, force_special)
        _prepare_encoder(tok)
        return tok

    return factory


def _tokenizer_from_json(tokenizers_mod: Any, tj: Dict[str, Any], where: str, force_special: Sequence[int] = ()) -> Any:
    """A tokenizers.Tokenizer whose encode is exact (no ▁ / space prepended), fixing old merge layouts."""
    if force_special:
        fs = set(force_special)
        for a in tj.get("added_tokens") or []:
            if a.get("id") in fs:
                a["special"] = True
    model = tj.get("model") or {}
    if isinstance(model.get("merges"), list) and _merges_need_fix(model["merges"]):
        _fix_merges(model)

    def strip_prepend(node: Any, key: str) -> Any:
        if not isinstance(node, dict):
            return node
        if node.get("type") == "Sequence":
            subs = [strip_prepend(s, key) for s in node.get(key) or []]
            node[key] = [s for s in subs if s is not None]
            return node
        t = node.get("type")
        if key == "normalizers" and t == "Prepend" and node.get("prepend") == _SPM_SPACE:
            return None
        if key == "pretokenizers" and t == "Metaspace":
            node["prepend_scheme"] = "never"
            if "add_prefix_space" in node:
                node["add_prefix_space"] = False
        if key == "pretokenizers" and t == "ByteLevel":
            node["add_prefix_space"] = False
        return node

    tj["normalizer"] = strip_prepend(tj.get("normalizer"), "normalizers")
    tj["pre_tokenizer"] = strip_prepend(tj.get("pre_tokenizer"), "pretokenizers")
    try:
        return tokenizers_mod.Tokenizer.from_str(json.dumps(tj))
    except Exception as e:
        raise TokenizerError(f"tokenizers cannot load {where!r}: {e}") from None


def _prepare_encoder(tok: Any) -> None:
    """Make a private tokenizers.Tokenizer encode plain text exactly and completely."""
    # Saved tokenizers may carry truncation/padding settings (the shared GPT-2 file truncates at 50 tokens).
    for method in ("no_truncation", "no_padding"):
        try:
            getattr(tok, method)()
        except Exception:
            pass
    # Special-token text inside plain text must be tokenized as text (special ids are never text).
    try:
        tok.encode_special_tokens = True
    except Exception:  # older tokenizers: nothing to do
        pass


# --------------------------------------------------------------------------------------------------
# GGUF: a minimal reader of the key/value header (format: github.com/ggml-org/ggml docs/gguf.md)
# --------------------------------------------------------------------------------------------------

_GGUF_KEYS = frozenset(
    {
        "general.name",
        "tokenizer.ggml.model",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.add_space_prefix",
    }
)

# type id -> (struct code, size)
_GGUF_SCALARS = {
    0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4),
    6: ("f", 4), 7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8),
}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def read_gguf_metadata(path: Union[str, os.PathLike], keys: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """The metadata key/values of a GGUF file (only ``keys`` when given; others are skipped).

    Strings come back as ``bytes``; arrays of strings as ``list[bytes]``; numeric arrays as numpy arrays.
    The file is memory-mapped and only its header is touched, so multi-GB model files are fine.
    """
    p = str(path)
    want = None if keys is None else frozenset(keys)
    try:
        f = open(p, "rb")
    except OSError as e:
        raise TokenizerError(f"cannot open GGUF file {p!r}: {e.strerror or e}") from None
    with f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError) as e:
            raise TokenizerError(f"cannot read GGUF file {p!r}: {e}") from None
        try:
            return _parse_gguf(mm, p, want)
        except (struct.error, IndexError, ValueError) as e:
            raise TokenizerError(f"GGUF file {p!r} is truncated or corrupt: {e}") from None
        finally:
            mm.close()


def _parse_gguf(buf: Any, where: str, want: Optional[FrozenSet[str]]) -> Dict[str, Any]:
    if buf[:4] != b"GGUF":
        raise TokenizerError(f"{where!r} is not a GGUF file (magic {bytes(buf[:4])!r}, expected b'GGUF')")
    end = "<"
    (version,) = struct.unpack_from("<I", buf, 4)
    if version > 0xFFFF:  # big-endian file
        end = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in (1, 2, 3):
        raise TokenizerError(f"GGUF file {where!r}: unsupported GGUF version {version}")
    if version == 1:
        _n_tensors, n_kv = struct.unpack_from(end + "II", buf, 8)
        off = 16
        len_fmt, len_size = end + "I", 4
    else:
        _n_tensors, n_kv = struct.unpack_from(end + "QQ", buf, 8)
        off = 24
        len_fmt, len_size = end + "Q", 8
    size = len(buf)
    unpack = struct.unpack_from

    def read_str(o: int) -> Tuple[bytes, int]:
        (ln,) = unpack(len_fmt, buf, o)
        o += len_size
        if o + ln > size:
            raise ValueError(f"string of {ln} bytes at offset {o} runs past the end of the file")
        return buf[o:o + ln], o + ln

    def skip_str(o: int) -> int:
        (ln,) = unpack(len_fmt, buf, o)
        o += len_size + ln
        if o > size:
            raise ValueError("string runs past the end of the file")
        return o

    out: Dict[str, Any] = {}
    for _ in range(n_kv):
        kb, off = read_str(off)
        key = kb.decode("utf-8", "replace")
        (vtype,) = unpack(end + "I", buf, off)
        off += 4
        keep = want is None or key in want
        if vtype in _GGUF_SCALARS:
            code, sz = _GGUF_SCALARS[vtype]
            if keep:
                (out[key],) = unpack(end + code, buf, off)
            off += sz
        elif vtype == _GGUF_STRING:
            if keep:
                out[key], off = read_str(off)
            else:
                off = skip_str(off)
        elif vtype == _GGUF_ARRAY:
            (etype,) = unpack(end + "I", buf, off)
            off += 4
            (count,) = unpack(len_fmt, buf, off)
            off += len_size
            if etype in _GGUF_SCALARS:
                code, sz = _GGUF_SCALARS[etype]
                nbytes = count * sz
                if off + nbytes > size:
                    raise ValueError(f"array {key!r} runs past the end of the file")
                if keep:
                    dt = np.dtype(code if code != "?" else "u1").newbyteorder(end)
                    out[key] = np.frombuffer(buf[off:off + nbytes], dtype=dt).copy()
                off += nbytes
            elif etype == _GGUF_STRING:
                if keep:
                    items = []
                    append = items.append
                    for _j in range(count):
                        (ln,) = unpack(len_fmt, buf, off)
                        off += len_size
                        append(buf[off:off + ln])
                        off += ln
                    if off > size:
                        raise ValueError(f"array {key!r} runs past the end of the file")
                    out[key] = items
                else:
                    for _j in range(count):
                        (ln,) = unpack(len_fmt, buf, off)
                        off += len_size + ln
                    if off > size:
                        raise ValueError(f"array {key!r} runs past the end of the file")
            else:
                raise TokenizerError(f"GGUF file {where!r}: key {key!r} is an array of unsupported type {etype}")
        else:
            raise TokenizerError(f"GGUF file {where!r}: key {key!r} has unknown value type {vtype}")
    return out
