"""Which real tokenizer each tool-call preset runs on in tests and benchmarks.

Special tokens a family's tokenizer has but the shared file lacks (Functionary v1/v2's added tokens,
Mistral's [TOOL_CALLS], harmony's channel tokens) are appended as special tokens, the way those models
extended their base vocabularies.
"""
from __future__ import annotations

from typing import List

import fcgrammar as fcg

# preset -> (base tokenizer, extra special tokens the family's tokenizer adds)
FAMILY = {
    "functionary-v1": ("llama2", ["<|START_OF_FUNCTION_CALL|>", "<|END_OF_FUNCTION_CALL|>", "<|END_OF_ASSISTANT|>",
                                  "<|END_OF_SYSTEM|>", "<|END_OF_USER|>", "<|END_OF_FUNCTION_RESULT|>"]),
    "functionary-v2": ("llama2", ["<|from|>", "<|recipient|>", "<|content|>", "<|stop|>"]),
    "functionary-v2.5": ("llama3.1", []),
    "functionary-v3": ("llama3.1", []),
    "functionary-v3.1": ("llama3.1", []),
    "empower": ("llama3.1", []),
    "empower-cot": ("llama3.1", []),
    "invoker": ("llama2", []),
    "trelis": ("llama2", []),
    "hermes": ("qwen3", []),
    "qwen": ("qwen3", []),
    "qwen3": ("qwen3", []),
    "llama3-json": ("llama3.1", []),
    "llama3-pythonic": ("llama3.1", []),
    "mistral-v3": ("llama2", ["[TOOL_CALLS]"]),
    "mistral-v11": ("llama2", ["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"]),
    "deepseek-v3": ("deepseek-v3", []),
    "deepseek-v3.1": ("deepseek-v3", []),
    "granite": ("llama3.1", []),
    "phi4-mini": ("phi-3", []),
    "harmony": ("gpt2", ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|return|>",
                         "<|call|>"]),
}


def family_vocabulary(base: "fcg.Vocabulary", extra: List[str], name: str) -> "fcg.Vocabulary":
    """``base`` with ``extra`` appended as special tokens (ids after the base's tokens)."""
    if not extra:
        return base
    toks = list(base.tokens) + [e.encode() for e in extra]
    n = base.n_tokens
    specials = set(base.special_ids) | set(range(n, n + len(extra)))
    # Text never spells the appended tokens, so the base tokenizer encodes for the extended vocabulary.
    return fcg.Vocabulary(toks, special_ids=specials, stop_ids=base.stop_ids, add_prefix_space=base.add_prefix_space,
                          name=name + "+", encoder=base.encode if base.has_encoder else None)
