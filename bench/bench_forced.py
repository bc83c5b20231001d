#!/usr/bin/env python
"""Forced-token share: how much of a tool-call turn the grammar writes by itself (jump-forward decoding).

For every preset of ``fcgrammar.formats``, on its family's real tokenizer (tests/families.py), BFCL v3 gold
calls are decoded with jump-forward the way ``fcgrammar.hf.generate_with_tools(jump_forward=True)`` does it:
after each model token, ``Matcher.forced_tokens()`` (the canonical tokens of the only bytes the grammar
allows next) are appended without a forward pass. The "model" is the gold turn: at each model step it emits
the first token of the canonical tokenization of the rest of the turn (a special token by id).

Per preset and tool_choice: model steps (forward passes), forced tokens, forced share = forced / (model +
forced), and the forward passes saved against plain decoding of the same turn (its canonical token count).

    python bench/bench_forced.py                        # all presets, auto / required / named, 40 calls each
    python bench/bench_forced.py --presets qwen,llama3-json --calls 100 --json out.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Tuple, Union

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import workload as W  # noqa: E402
from bench_formats import CATEGORIES, load_workload, message  # noqa: E402
from conftest import TOKENIZERS  # noqa: E402
from families import FAMILY, family_vocabulary  # noqa: E402

import fcgrammar as fcg  # noqa: E402
from fcgrammar.render import render_pieces  # noqa: E402

Piece = Union[str, int]


def gold_calls(data_dir: Path, n: int) -> List[Tuple[str, List[dict], dict]]:
    """``n`` BFCL v3 entries with one call that validates against its own schema (bench_formats'
    workload), the first ``n / 4`` of each category."""
    entries, _ = load_workload(str(data_dir))
    per = max(1, n // len(CATEGORIES))
    taken = {cat: 0 for cat in CATEGORIES}
    out = []
    for eid, functions, call in entries:
        cat = eid.rsplit("_", 1)[0]
        if taken.get(cat, per) < per:
            taken[cat] += 1
            out.append((eid, functions, call))
    return out


def segments(pieces: List[Piece], vocab) -> List[Tuple[str, Union[bytes, int]]]:
    """Runs of text (merged, as bytes) and special tokens (by id)."""
    out: List[Tuple[str, Union[bytes, int]]] = []
    for p in pieces:
        if isinstance(p, int):
            out.append(("tok", p))
        elif out and out[-1][0] == "text":
            out[-1] = ("text", out[-1][1] + p.encode("utf-8"))
        else:
            out.append(("text", p.encode("utf-8")))
    return out


def canonical_length(segs, encode) -> int:
    return sum(1 if kind == "tok" else len(encode(val)) for kind, val in segs)


def decode_jump_forward(grammar, segs, vocab, encode) -> Dict[str, int]:
    """Jump-forward decoding of the gold turn; counts model steps and forced tokens."""
    m = fcg.Matcher(grammar)
    model = forced = 0
    k, off = 0, 0  # segment, byte offset inside it
    while k < len(segs):
        f = m.forced_tokens()
        if f:
            data = vocab.decode(f)
            kind, val = segs[k]
            if kind != "text" or val[off:off + len(data)] != data:
                raise AssertionError("forced tokens %r do not continue the gold turn" % data)
            if not m.accept_tokens(f):
                raise AssertionError("forced tokens %r not accepted" % f)
            forced += len(f)
            off += len(data)
        else:
            kind, val = segs[k]
            t = val if kind == "tok" else encode(val[off:])[0]
            if not m.accept_token(t):
                raise AssertionError("gold token %r rejected" % (vocab.decode([t]),))
            model += 1
            off = 0 if kind == "tok" else off + len(vocab.decode([t]))
        if kind == "tok" or off >= len(segs[k][1]):
            k, off = k + 1, 0
    if not m.is_terminated():
        raise AssertionError("the turn did not end with a stop token")
    return {"model": model, "forced": forced}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="", help="comma-separated preset names (default all)")
    ap.add_argument("--choices", default="auto,required,named")
    ap.add_argument("--calls", type=int, default=40, help="BFCL gold calls per preset (spread over categories)")
    ap.add_argument("--json", default="", help="write per-case records here")
    args = ap.parse_args(argv)
    data_dir = Path(W.default_data_dir())
    if not (data_dir / "function-calling/bfcl/v3").is_dir():
        print("needs BFCL v3 under %s (set FCG_DATA_DIR)" % data_dir, file=sys.stderr)
        return 2
    presets = [p for p in args.presets.split(",") if p] or fcg.formats.names()
    choices = [c for c in args.choices.split(",") if c]
    cases = gold_calls(data_dir, args.calls)
    vocabs: Dict[Tuple[str, tuple], Tuple[object, object, object]] = {}
    rows, records = [], []
    for preset in presets:
        base_name, extra = FAMILY[preset]
        key = (base_name, tuple(extra))
        if key not in vocabs:
            base = fcg.Vocabulary.from_tokenizer_json(str(data_dir / TOKENIZERS[base_name]))
            vocab = family_vocabulary(base, extra, base_name)
            vocabs[key] = (vocab, fcg.Compiler(vocab), base.encode)
        vocab, compiler, encode = vocabs[key]
        fmt = fcg.formats.get(preset)
        for choice in choices:
            model = forced = plain = 0
            shares, errors = [], 0
            for eid, functions, call in cases:
                tc = {"type": "function", "function": {"name": call["name"]}} if choice == "named" else choice
                try:
                    g = compiler.compile_tools(functions, format=preset, tool_choice=tc, compat="bfcl")
                    segs = segments(list(render_pieces(g, message(call, fmt))), vocab)
                    r = decode_jump_forward(g, segs, vocab, encode)
                except Exception as ex:  # reported, never hidden
                    errors += 1
                    records.append({"preset": preset, "choice": choice, "id": eid, "error": str(ex)[:200]})
                    continue
                n_plain = canonical_length(segs, encode)
                model += r["model"]
                forced += r["forced"]
                plain += n_plain
                shares.append(r["forced"] / (r["model"] + r["forced"]))
                records.append({"preset": preset, "choice": choice, "id": eid, "plain": n_plain, **r})
            total = model + forced
            rows.append((preset, base_name, choice, len(shares), errors, model, forced,
                         100.0 * forced / total if total else 0.0,
                         100.0 * statistics.median(shares) if shares else 0.0,
                         100.0 * (plain - model) / plain if plain else 0.0))
            print("%-18s %-9s %s" % (preset, choice, "%.1f %%" % rows[-1][7]), file=sys.stderr, flush=True)
    print("## Forced-token share on BFCL v3 gold calls (jump-forward decoding)\n")
    print("%d gold calls per preset (simple, multiple, live_simple, live_multiple); each preset on its family's "
          "tokenizer. forced share = forced tokens / (model steps + forced tokens); passes saved = forward "
          "passes saved against plain decoding of the same turn's canonical tokens.\n" % len(cases))
    print("| preset | tokenizer | tool_choice | calls | errors | model steps | forced tokens | forced share "
          "| median per call | passes saved |")
    print("|:---|:---|:---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %s | %d | %d | %d | %d | %.1f %% | %.1f %% | %.1f %% |" % r)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "records": records}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
