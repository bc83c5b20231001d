"""Shared test helpers: where the third-party data lives, and skipping cleanly when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("FCGRAMMAR_DATA", _HERE.parent.parent / "shared" / "data")).resolve()

TOKENIZERS = {
    # name: tokenizer.json relative to DATA_DIR
    "llama3.1": "tokenizers/llama3.1/tokenizer.json",
    "qwen3": "tokenizers/qwen3/tokenizer.json",
    "deepseek-v3": "tokenizers/deepseek-v3/tokenizer.json",
    "llama2": "tokenizers/llama2/tokenizer.json",
    "phi-3": "tokenizers/phi-3/tokenizer.json",
    "gpt2": "tokenizers/gpt2/tokenizer.json",
}


def data_path(rel: str) -> Path:
    """Path of a shared data file, or skip the test with a reason naming it and the env var."""
    p = DATA_DIR / rel
    if not p.exists():
        pytest.skip(f"shared data {rel!r} not found under {DATA_DIR} (set FCGRAMMAR_DATA to ../shared/data)")
    return p


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.exists():
        pytest.skip(f"shared data directory {DATA_DIR} not found (set FCGRAMMAR_DATA)")
    return DATA_DIR
