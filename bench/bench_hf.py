"""HF transformers generate: tokens/s unconstrained vs fcgrammar's LogitsProcessor vs xgrammar's.

A tiny random-weight LlamaForCausalLM (built here) with the real Llama 3.1 tokenizer (128,256 ids), sampling
(or greedy: the default) with a fixed seed, a fixed number of new tokens (the schema cannot complete sooner, so no run ends early).
The three variants are interleaved per repetition (in a rotating order); the table gives medians.
"overhead/step" is the median over repetitions of the extra wall time per generated token over the
unconstrained run of the same repetition; "in processor" is the time spent inside the
processor's __call__ (fcgrammar measures it itself; for xgrammar it is timed around the call).

    python bench/bench_hf.py [--tokens 128] [--reps 7] [--batch 1 4] [--hidden 64]

A tiny model makes the overhead percentage pessimistic: a real model's forward pass is 10-1000x longer.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers

import fcgrammar as fcg
from fcgrammar import hf as fhf

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("FCGRAMMAR_DATA", HERE.parent.parent / "shared" / "data"))

# A tool-call-like workload that cannot finish within a few hundred tokens: at least 64 objects.
SCHEMA = {
    "type": "array", "minItems": 64,
    "items": {"type": "object",
              "properties": {"city": {"type": "string", "maxLength": 12},
                             "days": {"type": "integer", "minimum": 1, "maximum": 30},
                             "unit": {"enum": ["celsius", "fahrenheit"]},
                             "ok": {"type": "boolean"}},
              "required": ["city", "days", "unit", "ok"], "additionalProperties": False},
}


class Timed:
    """Wraps a processor to time its calls (for xgrammar, which does not time itself)."""

    def __init__(self, proc):
        self.proc, self.seconds, self.calls = proc, 0.0, 0

    def __call__(self, input_ids, scores):
        t = time.perf_counter()
        r = self.proc(input_ids, scores)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: steadier on a shared 2-core machine; 0 keeps torch's default)")
    ap.add_argument("--sample", action="store_true",
                    help="multinomial sampling (torch.multinomial over 128k ids costs ~10 ms/step on CPU and "
                         "dominates a tiny model's step); default greedy")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tj = DATA / "tokenizers/llama3.1/tokenizer.json"
    if not tj.exists():
        sys.exit(f"needs {tj} (set FCGRAMMAR_DATA)")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tj), eos_token="<|eot_id|>",
                                               pad_token="<|reserved_special_token_2|>")
    tok.padding_side = "left"
    V = 128_256
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                                   num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                   tie_word_embeddings=True, max_position_embeddings=4096)
    model = transformers.LlamaForCausalLM(cfg).eval()

    vocab = fhf.vocabulary(tok, V)
    compiler = fcg.Compiler(vocab)  # token index: once per tokenizer and process
    t0 = time.perf_counter()
    g = compiler.compile_json_schema(SCHEMA)
    fcg_compile = time.perf_counter() - t0

    try:
        import xgrammar as xgr
        from xgrammar.contrib.hf import LogitsProcessor as XgrLP

        info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=V)
        xcompiler = xgr.GrammarCompiler(info)
        t0 = time.perf_counter()
        xg = xcompiler.compile_json_schema(json.dumps(SCHEMA), any_whitespace=False)
        xgr_compile = time.perf_counter() - t0
        xgr_version = getattr(xgr, "__version__", None)
        if xgr_version is None:
            from importlib.metadata import version

            xgr_version = version("xgrammar")
    except ImportError:
        xg = None
        xgr_version = None

    N = args.tokens
    pad = tok.pad_token_id
    rows = []
    for B in args.batch:
        prompts = ["Plan trips for my team, as JSON:"] + [f"Request {i}: trips" for i in range(1, B)]
        enc = tok(prompts[:B], return_tensors="pt", padding=True)
        stops = g.stop_ids

        def run(kind):
            torch.manual_seed(123)
            kw = dict(max_new_tokens=N, pad_token_id=pad)
            kw.update(dict(do_sample=True, temperature=1.0, top_k=0) if args.sample else dict(do_sample=False))
            proc = None
            if kind == "none":
                kw.update(eos_token_id=stops)  # (min_new_tokens would add a torch.isin over 128k ids per step)
            elif kind == "fcgrammar":
                proc = fhf.LogitsProcessor(g, max_tokens=0)  # no budget (xgrammar has none): same language
                kw.update(logits_processor=[proc], eos_token_id=stops)
            else:
                proc = Timed(XgrLP(xg))
                kw.update(logits_processor=[proc], eos_token_id=stops)
            t = time.perf_counter()
            out = model.generate(**enc, **kw)
            dt = time.perf_counter() - t
            n = out.shape[1] - enc["input_ids"].shape[1]
            inside = (proc.mask_seconds / max(proc.num_steps, 1)) if kind == "fcgrammar" else \
                (proc.seconds / max(proc.calls, 1) if proc is not None else 0.0)
            return dt, n, inside

        kinds = ["none", "fcgrammar"] + (["xgrammar"] if xg is not None else [])
        for k in kinds:  # warm-up (mask caches, allocator)
            run(k)
        res = {k: [] for k in kinds}
        for r in range(args.reps):
            # rotate the order each repetition, so a drift of the machine's speed hits every variant alike
            for k in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                res[k].append(run(k))
        base = statistics.median(dt / n for dt, n, _ in res["none"])
        for k in kinds:
            per_tok = statistics.median(dt / n for dt, n, _ in res[k])
            n_tok = res[k][0][1]
            inside = statistics.median(x for _, _, x in res[k])
            # overhead: the median of the paired differences (same repetition, back to back), which
            # cancels most of the machine's drift between repetitions
            diff = statistics.median(a[0] / a[1] - b[0] / b[1] for a, b in zip(res[k], res["none"]))
            rows.append((B, k, n_tok, B * 1.0 / per_tok, per_tok * 1e3, diff * 1e6, 100.0 * diff / base,
                         inside * 1e6))

    print(f"transformers {transformers.__version__}, torch {torch.__version__}, tiny Llama hidden={args.hidden} "
          f"layers=2 vocab={V}, {N} new tokens, {'sampling' if args.sample else 'greedy'}, "
          f"median of {args.reps}, torch threads {torch.get_num_threads()}")
    print(f"compile: fcgrammar {fcg_compile * 1e3:.1f} ms" + (f", xgrammar {xgr_version} {xgr_compile * 1e3:.1f} ms"
                                                            if xg is not None else ""))
    print()
    print("| batch | decoding | tokens/row | tokens/s | ms/step | overhead/step | overhead | in processor/step |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for B, k, n, tps, ms, ov_us, ov_pct, inside_us in rows:
        name = {"none": "unconstrained", "fcgrammar": f"fcgrammar {fcg.__version__}",
                "xgrammar": f"xgrammar {xgr_version}"}[k]
        ov = "–" if k == "none" else f"{ov_us:+.0f} µs"
        pct = "–" if k == "none" else f"{ov_pct:+.1f} %"
        ins = "–" if k == "none" else f"{inside_us:.0f} µs"
        print(f"| {B} | {name} | {n} | {tps:,.0f} | {ms:.2f} | {ov} | {pct} | {ins} |")


if __name__ == "__main__":
    main()
