"""Command line: ``fcgrammar demo`` (constrained generation with an adversarial sampler, offline)."""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import List, Optional

import numpy as np


def _load_vocab(path: Optional[str]):
    from .vocabulary import Vocabulary

    if path is None:
        from .demo_vocab import demo_vocabulary

        return demo_vocabulary()
    if path.endswith(".gguf"):
        return Vocabulary.from_gguf(path)
    return Vocabulary.from_tokenizer_json(path)


def random_walk(matcher, vocab, rng: random.Random) -> List[int]:
    """Adversarial sampling: pick uniformly among the allowed tokens until a stop token (or the budget)."""
    from .matcher import allocate_token_bitmask

    bitmask = allocate_token_bitmask(1, vocab.size)
    out: List[int] = []
    while not matcher.is_terminated():
        matcher.fill_next_token_bitmask(bitmask)
        allowed = np.flatnonzero(np.unpackbits(bitmask[0].view(np.uint8), bitorder="little"))
        if allowed.size == 0:
            break
        t = int(allowed[rng.randrange(allowed.size)])
        if not matcher.accept_token(t):
            raise AssertionError(f"token {t} was in the mask but not accepted")
        out.append(t)
    return out


def demo(args) -> int:
    from .compiler import Compiler
    from .matcher import Matcher
    from .seed_tools import SEED_TOOLS, call_schema

    t0 = time.perf_counter()
    vocab = _load_vocab(args.tokenizer)
    compiler = Compiler(vocab)
    t1 = time.perf_counter()
    print(f"vocabulary: {vocab.name or 'embedded default BPE'} ({vocab.size} tokens), "
          f"indexed in {1e3 * (t1 - t0):.0f} ms")
    rng = random.Random(args.seed)
    try:
        import jsonschema
    except ImportError:  # optional: validation is shown when available
        jsonschema = None
    failures = 0
    for tool in SEED_TOOLS:
        schema = call_schema([tool])
        t2 = time.perf_counter()
        grammar = compiler.compile_json_schema(schema)
        t3 = time.perf_counter()
        print(f"\n== {tool['function']['name']}  (compiled in {1e3 * (t3 - t2):.2f} ms)")
        for _ in range(args.walks):
            m = Matcher(grammar, max_tokens=args.max_tokens)
            ids = random_walk(m, vocab, rng)
            text = vocab.decode([t for t in ids if t not in vocab.stop_ids]).decode("utf-8", "replace")
            status = "ok"
            try:
                value = json.loads(text)
                if jsonschema is not None:
                    jsonschema.validate(value, schema)
            except Exception as e:  # a demo prints, the tests assert
                status = f"INVALID ({e.__class__.__name__})"
                failures += 1
            print(f"  [{len(ids):3d} tokens, {status}] {text}")
    print(f"\nadversarial sampler: {args.walks * len(SEED_TOOLS)} generations within {args.max_tokens} tokens, "
          f"{failures} invalid")
    return 1 if failures else 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="fcgrammar", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="constrained generation for the seed tools with a random (adversarial) sampler")
    d.add_argument("--tokenizer", help="tokenizer.json or .gguf (default: embedded BPE)")
    d.add_argument("--walks", type=int, default=2, help="generations per tool")
    d.add_argument("--max-tokens", type=int, default=120, help="token budget per generation")
    d.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.cmd == "demo":
        return demo(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
