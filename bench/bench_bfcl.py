#!/usr/bin/env python
"""BFCL v3 token-mask benchmark: fcgrammar against xgrammar, llguidance,
outlines-core and lm-format-enforcer.

For each BFCL entry (simple, multiple, live_simple, live_multiple) the schema
of one call object {"name": const, "arguments": params} (anyOf over the
entry's tools) is compiled by every engine, and the gold call (compact JSON,
Llama 3.1 tokens) is teacher-forced through it: per token, accept it and fill
the next token mask.  All engines run in this process, one thread, interleaved
per case.  See docs/benchmarks.md for the method and the columns.

    python bench/bench_bfcl.py                       # defaults: 50 cases per category
    python bench/bench_bfcl.py --limit 10 --engines xgrammar,llguidance,outlines
    python bench/bench_bfcl.py --tools-scaling --json out.json
"""

from __future__ import annotations

import os

# One thread everywhere, set before any engine (or torch) is imported.
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Optional  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import workload as W  # noqa: E402
from anchors import ENGINES, Engine, SharedTokenizer  # noqa: E402

pc = time.perf_counter_ns

ALL_ENGINES = ["fcgrammar", "xgrammar", "llguidance", "outlines", "lmfe"]
DEFAULT_ENGINES = ALL_ENGINES
DEFAULT_CAPS = "lmfe=20,outlines=40"
SCALING_NS = [1, 8, 32, 128]

PUBLISHED = [
    # engine, TBM p50, TBM p99, TTFM p50, TTFM 128 tools  (from the issue)
    ("xgrammar", "7.9 µs", "281 µs", "1.7 s", "72 s"),
    ("llguidance", "37 µs", "238 µs", "2.1 ms", "34 ms"),
]
TARGETS = {
    "tbm_p50_us": 5.0,
    "tbm_p99_us": 60.0,
    "tbm_max_us": 1000.0,
    "ttfm_p50_ms": 1.0,
    "ttfm_128_ms": 20.0,
    "mem_mb": 1.0,
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(xs: List[float], q: float) -> Optional[float]:
    if not xs:
        return None
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def fmt_us(ns: Optional[float]) -> str:
    if ns is None:
        return "–"
    us = ns / 1e3
    if us >= 1e5:
        return "%.0f" % us
    if us >= 100:
        return "%.0f" % us
    if us >= 10:
        return "%.1f" % us
    return "%.2f" % us


def fmt_ms(ns: Optional[float]) -> str:
    if ns is None:
        return "–"
    ms = ns / 1e6
    if ms >= 1000:
        return "%.0f" % ms
    if ms >= 100:
        return "%.0f" % ms
    if ms >= 10:
        return "%.1f" % ms
    return "%.2f" % ms


def fmt_ratio(a: Optional[float], b: Optional[float]) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    r = a / b
    if r >= 100:
        return "%.0f×" % r
    if r >= 10:
        return "%.1f×" % r
    return "%.2f×" % r


def token_text(shared: SharedTokenizer, tok: int) -> str:
    tb = shared.token_bytes
    if 0 <= tok < len(tb) and tb[tok] is not None:
        return repr(tb[tok].decode("utf-8", "backslashreplace"))
    return "<%d>" % tok


def env_info(engines: Dict[str, Engine]) -> Dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "versions": {n: e.version() for n, e in engines.items()},
    }


# --------------------------------------------------------------------------
# one engine on one case
# --------------------------------------------------------------------------

def run_case(eng: Engine, case: W.Case, shared: SharedTokenizer, timeout_s: float) -> Dict[str, Any]:
    """Compile, first mask, then for each gold token: accept it and fill the
    next mask.  TBM sample i = accept(token i) + fill_mask(after token i)."""
    rec: Dict[str, Any] = {"id": case.id, "category": case.category, "engine": eng.name,
                           "n_tools": case.n_tools, "n_tokens": len(case.tokens)}
    budget = int(timeout_s * 1e9)
    tbm: List[int] = []
    acc: List[int] = []
    msk: List[int] = []
    gc.disable()
    try:
        try:
            t0 = pc()
            st = eng.compile(case.schema_str)
            t1 = pc()
            eng.fill_mask(st)
            t2 = pc()
        except Exception as ex:
            rec.update(status="compile_error", error="%s: %s" % (type(ex).__name__, str(ex)[:300]))
            return rec
        rec.update(compile_ns=t1 - t0, first_mask_ns=t2 - t1, ttfm_ns=t2 - t0)
        err = getattr(eng, "check_error", None)
        if err is not None:
            e = err(st)
            if e:
                rec.update(status="compile_error", error=e[:300])
                return rec
        status = "ok"
        try:
            for i, tok in enumerate(case.tokens):
                in_mask = eng.allowed(tok)
                a0 = pc()
                ok = eng.accept(st, tok)
                a1 = pc()
                if not ok or not in_mask:
                    status = "rejected"
                    rec.update(reject_at=i, reject_token=tok,
                               reject_text=token_text(shared, tok),
                               reject_kind=("mask+accept" if not ok and not in_mask
                                            else "accept" if not ok else "mask"),
                               reject_prefix=shared.hf.decode(case.tokens[max(0, i - 8):i])
                               if shared._hf is not None else "")
                    break
                eng.fill_mask(st)
                a2 = pc()
                tbm.append(a2 - a0)
                acc.append(a1 - a0)
                msk.append(a2 - a1)
                if a2 - t0 > budget:
                    status = "timeout"
                    rec.update(error="case over %.0f s after %d/%d tokens"
                               % (timeout_s, i + 1, len(case.tokens)))
                    break
        except Exception as ex:
            status = "runtime_error"
            rec.update(error="%s: %s" % (type(ex).__name__, str(ex)[:300]), reject_at=len(tbm))
        if status == "ok":
            try:
                if not eng.is_accepting(st):
                    status = "not_accepting"
            except Exception as ex:
                status = "runtime_error"
                rec.update(error="is_accepting: %s: %s" % (type(ex).__name__, str(ex)[:200]))
        if status in ("rejected", "runtime_error") and err is not None:
            e = err(st)
            if e:
                rec["error"] = e[:300]
        try:
            mem = eng.memory_bytes(st)
        except Exception:
            mem = None
        if mem is not None:
            rec["memory_bytes"] = mem
        rec.update(status=status, tbm_ns=tbm, accept_ns=acc, mask_ns=msk)
        return rec
    finally:
        gc.enable()


def retime_max(eng: Engine, per_case: Dict[str, Dict[str, Any]], cases: Dict[str, W.Case],
               shared: SharedTokenizer, timeout_s: float, runs: int, max_cases: int,
               budget_s: float) -> Dict[str, Any]:
    """Separate slow steps from machine noise: re-run the case that holds the
    largest TBM sample ``runs`` more times and keep, per token, the minimum
    over all runs (``tbm_retimed_ns``); repeat until the largest sample left
    belongs to a re-timed case ("converged"), or ``max_cases`` cases or
    ``budget_s`` seconds are used up."""
    n = 0
    t0 = time.time()
    converged = False
    ok = {cid: r for cid, r in per_case.items() if r.get("status") == "ok" and r["tbm_ns"]}
    while ok:
        cid = max(ok, key=lambda c: max(ok[c].get("tbm_retimed_ns") or ok[c]["tbm_ns"]))
        rec = ok[cid]
        if "tbm_retimed_ns" in rec:
            converged = True
            break
        if n >= max_cases or time.time() - t0 > budget_s:
            break
        best = list(rec["tbm_ns"])
        for _ in range(runs):
            gc.collect()
            r2 = run_case(eng, cases[cid], shared, timeout_s)
            if r2.get("status") == "ok" and len(r2["tbm_ns"]) == len(best):
                best = [min(a, b) for a, b in zip(best, r2["tbm_ns"])]
        rec["tbm_retimed_ns"] = best
        n += 1
    return {"cases": n, "converged": converged or not ok, "seconds": time.time() - t0}


# --------------------------------------------------------------------------
# summaries and tables
# --------------------------------------------------------------------------

def summarize(recs: List[Dict[str, Any]]) -> Dict[str, Any]:
    ok = [r for r in recs if r.get("status") == "ok"]
    tbm = [x for r in ok for x in r["tbm_ns"]]
    acc = [x for r in ok for x in r["accept_ns"]]
    msk = [x for r in ok for x in r["mask_ns"]]
    ttfm = [r["ttfm_ns"] for r in ok]
    comp = [r["compile_ns"] for r in ok]
    mem = [r["memory_bytes"] for r in ok if "memory_bytes" in r]
    tbm_rt = [max(r.get("tbm_retimed_ns") or r["tbm_ns"]) for r in ok if r["tbm_ns"]]
    counts: Dict[str, int] = {}
    for r in recs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {
        "cases_run": len(recs),
        "cases_ok": len(ok),
        "status_counts": counts,
        "tokens": len(tbm),
        "tbm_ns": {"p50": pct(tbm, 50), "p90": pct(tbm, 90), "p99": pct(tbm, 99),
                   "max": max(tbm) if tbm else None,
                   "max_retimed": max(tbm_rt) if tbm_rt else None,
                   "mean": float(np.mean(tbm)) if tbm else None},
        "mask_ns": {"p50": pct(msk, 50), "p99": pct(msk, 99)},
        "accept_ns": {"p50": pct(acc, 50), "p99": pct(acc, 99)},
        "ttfm_ns": {"p50": pct(ttfm, 50), "p90": pct(ttfm, 90),
                    "max": max(ttfm) if ttfm else None},
        "compile_ns": {"p50": pct(comp, 50), "max": max(comp) if comp else None},
        "memory_bytes": {"p50": pct(mem, 50), "max": max(mem) if mem else None} if mem else None,
    }


def md_table(header: List[str], rows: List[List[str]], align: Optional[str] = None) -> str:
    out = ["| " + " | ".join(header) + " |"]
    al = align or ("l" + "r" * (len(header) - 1))
    out.append("|" + "|".join(":---" if a == "l" else "---:" for a in al) + "|")
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


def main_table(engines: List[str], summ: Dict[str, Dict[str, Any]], versions: Dict[str, str],
               caps_note: Dict[str, str]) -> str:
    rows = []
    for n in engines:
        s = summ[n]
        c = s["status_counts"]
        other = sum(v for k, v in c.items() if k not in ("ok", "rejected", "compile_error"))
        rows.append([
            "%s %s" % (n, versions.get(n, "")),
            "%d/%d%s" % (s["cases_ok"], s["cases_run"], caps_note.get(n, "")),
            str(s["tokens"]),
            fmt_us(s["tbm_ns"]["p50"]), fmt_us(s["tbm_ns"]["p90"]),
            fmt_us(s["tbm_ns"]["p99"]), fmt_us(s["tbm_ns"]["max"]),
            fmt_us(s["tbm_ns"]["max_retimed"])
            + ("" if not s.get("retime") or s["retime"]["converged"] else " (nc)"),
            fmt_us(s["mask_ns"]["p50"]), fmt_us(s["accept_ns"]["p50"]),
            fmt_ms(s["ttfm_ns"]["p50"]), fmt_ms(s["ttfm_ns"]["max"]),
            fmt_ms(s["compile_ns"]["p50"]),
            ("%.0f" % (s["memory_bytes"]["p50"] / 1024)) if s["memory_bytes"] else "–",
            str(c.get("rejected", 0)), str(c.get("compile_error", 0)), str(other),
        ])
    return md_table(["engine", "cases ok/run", "tokens", "TBM p50 µs", "TBM p90 µs", "TBM p99 µs",
                     "TBM max µs", "max re-timed µs", "mask p50 µs", "accept p50 µs", "TTFM p50 ms", "TTFM max ms",
                     "compile p50 ms", "mem p50 KiB", "valid. err", "compile err", "other err"],
                    rows)


def ratio_table(engines: List[str], per_case: Dict[str, Dict[str, Dict[str, Any]]]) -> Optional[str]:
    if "fcgrammar" not in engines:
        return None
    rows = []
    fc = per_case["fcgrammar"]
    for n in engines:
        if n == "fcgrammar":
            continue
        common = [cid for cid, r in per_case[n].items()
                  if r.get("status") == "ok" and fc.get(cid, {}).get("status") == "ok"]
        sa = summarize([per_case[n][c] for c in common])
        sf = summarize([fc[c] for c in common])
        rows.append([n, str(len(common))] + [
            fmt_ratio(sa["tbm_ns"][k], sf["tbm_ns"][k])
            for k in ("p50", "p90", "p99", "max", "max_retimed")
        ] + [fmt_ratio(sa["ttfm_ns"]["p50"], sf["ttfm_ns"]["p50"]),
             fmt_ratio(sa["ttfm_ns"]["max"], sf["ttfm_ns"]["max"])])
    return md_table(["engine", "common cases", "TBM p50", "TBM p90", "TBM p99", "TBM max",
                     "max re-timed", "TTFM p50", "TTFM max"], rows)


def targets_table(summ: Dict[str, Any], scaling: Optional[Dict[str, Any]]) -> str:
    s = summ

    def chk(v: Optional[float], lim: float) -> str:
        if v is None:
            return "–"
        return "yes" if v <= lim else "**no**"

    t = s["tbm_ns"]
    rows = [
        ["TBM p50 ≤ 5 µs", fmt_us(t["p50"]) + " µs", chk(t["p50"] and t["p50"] / 1e3, 5.0)],
        ["TBM p99 ≤ 60 µs", fmt_us(t["p99"]) + " µs", chk(t["p99"] and t["p99"] / 1e3, 60.0)],
        ["TBM max ≤ 1 ms", "%s µs (re-timed %s µs)" % (fmt_us(t["max"]), fmt_us(t["max_retimed"])),
         chk(t["max_retimed"] and t["max_retimed"] / 1e3, 1000.0)],
        ["compile + first mask p50 ≤ 1 ms", fmt_ms(s["ttfm_ns"]["p50"]) + " ms",
         chk(s["ttfm_ns"]["p50"] and s["ttfm_ns"]["p50"] / 1e6, 1.0)],
    ]
    v128 = None
    if scaling:
        e = scaling.get("fcgrammar", {}).get("128")
        if e and e.get("ttfm_ns_median") is not None:
            v128 = e["ttfm_ns_median"]
    rows.append(["128 tools compile + first mask ≤ 20 ms",
                 (fmt_ms(v128) + " ms") if v128 is not None else "– (run --tools-scaling)",
                 chk(v128 / 1e6 if v128 is not None else None, 20.0)])
    mem = s["memory_bytes"]["max"] if s["memory_bytes"] else None
    rows.append(["memory per compiled tool set ≤ 1 MB",
                 ("%.0f KiB (max over cases)" % (mem / 1024)) if mem is not None else "– (not exposed)",
                 chk(mem / 1e6 if mem is not None else None, 1.0)])
    return md_table(["target (issue)", "fcgrammar", "met"], rows, "lrl")


# --------------------------------------------------------------------------
# tools scaling
# --------------------------------------------------------------------------

def run_scaling(engs: Dict[str, Engine], order: List[str], data_dir: str, ns: List[int], reps: int,
                strict: bool, timeout_s: float) -> Dict[str, Any]:
    pool = W.tool_pool(data_dir)
    log("tools scaling: pool of %d distinct BFCL tools, N=%s, %d tool set(s) each"
        % (len(pool), ns, reps))
    res: Dict[str, Dict[str, Any]] = {n: {} for n in order}
    last: Dict[str, Optional[float]] = {n: None for n in order}
    last_n: Dict[str, int] = {n: 0 for n in order}
    for N in ns:
        sets = W.scaling_tool_sets(pool, N, reps)
        schemas = [json.dumps(W.call_schema(ts, strict)) for ts in sets]
        for n in order:
            res[n][str(N)] = {"n_tools": N, "runs": []}
        for rep, s in enumerate(schemas):
            for k in range(len(order)):
                n = order[(rep + k) % len(order)]
                ent = res[n][str(N)]
                if ent.get("skipped"):
                    continue
                if last[n] is not None and last_n[n] and last[n] * N / last_n[n] > timeout_s * 1e9:
                    ent["skipped"] = ("predicted %.0f s > --scaling-timeout %.0f s"
                                      % (last[n] * N / last_n[n] / 1e9, timeout_s))
                    continue
                eng = engs[n]
                gc.collect()
                gc.disable()
                try:
                    t0 = pc()
                    st = eng.compile(s)
                    t1 = pc()
                    eng.fill_mask(st)
                    t2 = pc()
                    err = getattr(eng, "check_error", None)
                    e = err(st) if err else None
                    if e:
                        raise RuntimeError(e)
                    run = {"compile_ns": t1 - t0, "first_mask_ns": t2 - t1, "ttfm_ns": t2 - t0,
                           "schema_chars": len(s)}
                    try:
                        m = eng.memory_bytes(st)
                    except Exception:
                        m = None
                    if m is not None:
                        run["memory_bytes"] = m
                    del st
                except Exception as ex:
                    run = {"error": "%s: %s" % (type(ex).__name__, str(ex)[:300])}
                finally:
                    gc.enable()
                ent["runs"].append(run)
        for n in order:
            ent = res[n][str(N)]
            ok = [r for r in ent["runs"] if "ttfm_ns" in r]
            if ok:
                ent["ttfm_ns_median"] = float(np.median([r["ttfm_ns"] for r in ok]))
                ent["compile_ns_median"] = float(np.median([r["compile_ns"] for r in ok]))
                ent["ttfm_ns_max"] = max(r["ttfm_ns"] for r in ok)
                mems = [r["memory_bytes"] for r in ok if "memory_bytes" in r]
                if mems:
                    ent["memory_bytes_median"] = float(np.median(mems))
                last[n] = ent["ttfm_ns_max"]
                last_n[n] = N
            ent["errors"] = len(ent["runs"]) - len(ok)
        log("  N=%d done" % N)
    return res


def scaling_table(order: List[str], res: Dict[str, Any], ns: List[int]) -> str:
    rows = []
    for n in order:
        row = [n]
        for N in ns:
            e = res[n].get(str(N), {})
            if e.get("skipped"):
                row.append("skipped")
            elif e.get("ttfm_ns_median") is not None:
                cell = fmt_ms(e["ttfm_ns_median"])
                if e.get("errors"):
                    cell += " (%d err)" % e["errors"]
                row.append(cell)
            elif e.get("errors"):
                row.append("error")
            else:
                row.append("–")
        for N in ns:
            e = res[n].get(str(N), {})
            m = e.get("memory_bytes_median")
            row.append(("%.0f" % (m / 1024)) if m is not None else "–")
        rows.append(row)
    hdr = ["engine"] + ["TTFM %d tools ms" % N for N in ns] + ["mem %d tools KiB" % N for N in ns]
    return md_table(hdr, rows)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_caps(s: str) -> Dict[str, int]:
    caps: Dict[str, int] = {}
    for part in (s or "").split(","):
        part = part.strip()
        if not part:
            continue
        k, _, v = part.partition("=")
        caps[k.strip()] = int(v)
    return caps


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=50,
                    help="cases per category, evenly spaced over the file (default 50; 0 = all)")
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                    help="comma list from %s (default: all available)" % ",".join(ALL_ENGINES))
    ap.add_argument("--categories", default=",".join(W.DEFAULT_CATEGORIES),
                    help="BFCL v3 categories (default simple,multiple,live_simple,live_multiple)")
    ap.add_argument("--caps", default=DEFAULT_CAPS,
                    help="max cases for slow engines, NAME=N,... (default %s); capped engines "
                         "run on evenly spaced cases" % DEFAULT_CAPS)
    ap.add_argument("--case-timeout", type=float, default=60.0,
                    help="soft per-case time limit per engine, s (checked between steps)")
    ap.add_argument("--engine-budget", type=float, default=300.0,
                    help="soft total time per engine over all cases, s; the engine skips "
                         "the rest after that")
    ap.add_argument("--retime-runs", type=int, default=2,
                    help="extra runs of the cases holding the largest TBM samples, to tell slow "
                         "steps from machine noise (0 = off; default 2)")
    ap.add_argument("--retime-cases", type=int, default=200,
                    help="at most this many cases re-timed per engine (default 200)")
    ap.add_argument("--retime-budget", type=float, default=30.0,
                    help="at most this many seconds of re-timing per engine (default 30)")
    ap.add_argument("--tools-scaling", action="store_true",
                    help="also time compile + first mask for 1/8/32/128 BFCL tools")
    ap.add_argument("--scaling-reps", type=int, default=3, help="tool sets per N (default 3)")
    ap.add_argument("--scaling-ns", default=",".join(map(str, SCALING_NS)))
    ap.add_argument("--scaling-timeout", type=float, default=30.0,
                    help="skip an engine at N when its previous TTFM scaled by N predicts more (s)")
    ap.add_argument("--no-strict-objects", action="store_true",
                    help="do not add additionalProperties to objects (see docs/benchmarks.md)")
    ap.add_argument("--utf8", action="store_true",
                    help="serialize gold with ensure_ascii=False (default: json.dumps default, "
                         "non-ASCII as \\uXXXX)")
    ap.add_argument("--llg-unicode-escapes", action="store_true",
                    help="llguidance: json_allow_general_unicode_escapes=True (its default "
                         "rejects \\uXXXX escapes of printable characters)")
    ap.add_argument("--fcg-options", default=None,
                    help="JSON object of extra keyword arguments for fcgrammar's "
                         "compile_json_schema (default: {\"compat\": \"bfcl\"})")
    ap.add_argument("--data-dir", default=None, help="shared/data folder (default: auto / $FCG_DATA_DIR)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer.json (default: Llama 3.1 from data dir)")
    ap.add_argument("--pin-cpu", type=int, default=None, help="pin the process to this CPU")
    ap.add_argument("--json", default=None, help="write all results (incl. per-case timings) here")
    ap.add_argument("--no-per-token", action="store_true",
                    help="leave per-token timing arrays out of --json")
    args = ap.parse_args(argv)

    if args.pin_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.pin_cpu})

    data_dir = args.data_dir or W.default_data_dir()
    tok_path = args.tokenizer or W.llama31_tokenizer_path(data_dir)
    strict = not args.no_strict_objects
    cats = [c.strip() for c in args.categories.split(",") if c.strip()]
    want = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in want:
        if e not in ENGINES:
            ap.error("unknown engine %r (choose from %s)" % (e, ",".join(ALL_ENGINES)))
    caps = parse_caps(args.caps)

    # ---- workload
    t = time.time()
    cases = W.load_cases(data_dir, cats, args.limit or None, strict_objects=strict,
                         ensure_ascii=not args.utf8)
    W.tokenize_cases(cases, tok_path)
    invalid = [c for c in cases if c.gold_valid is False]
    runnable = [c for c in cases if c.gold_valid is not False and c.tokens]
    log("workload: %d cases from %s (%d skipped: gold call does not validate against its "
        "schema), %d gold tokens, %.1f s" % (len(cases), ",".join(cats), len(invalid),
                                             sum(len(c.tokens) for c in runnable), time.time() - t))

    # ---- engines
    t = time.time()
    shared = SharedTokenizer(tok_path)
    engs: Dict[str, Engine] = {}
    skipped: Dict[str, str] = {}
    tok_build_ns: Dict[str, int] = {}
    for n in want:
        cls = ENGINES[n]
        why = cls.available()
        if why:
            skipped[n] = why
            log("skipping %s: %s" % (n, why))
            continue
        eng = cls(shared)
        if n == "fcgrammar" and args.fcg_options:
            eng.options = dict(eng.options, **json.loads(args.fcg_options))
        if n == "llguidance" and args.llg_unicode_escapes:
            eng.options = dict(eng.options, json_allow_general_unicode_escapes=True)
        try:
            if n in ("xgrammar", "lmfe"):
                shared.hf  # shared transformers tokenizer: loaded outside the timing
            t0 = pc()
            eng.build_tokenizer(tok_path)
            tok_build_ns[n] = pc() - t0
            # warm-up compile (not recorded): first-call initialisation
            w = eng.compile(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}}))
            eng.fill_mask(w)
        except Exception as ex:
            skipped[n] = "tokenizer build/warm-up failed: %s: %s" % (type(ex).__name__, str(ex)[:300])
            log("skipping %s: %s" % (n, skipped[n]))
            continue
        engs[n] = eng
        log("%s %s: tokenizer index built in %.2f s" % (n, eng.version(), tok_build_ns[n] / 1e9))
    shared.hf  # for rejection context in reports
    order = [n for n in want if n in engs]
    if not order:
        log("no engine available")
        return 2
    log("engines ready in %.1f s: %s" % (time.time() - t, ", ".join(order)))
    # Move the (large) tokenizer structures out of the collector's way, so
    # that the per-case gc.collect() outside the timings stays cheap.
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()

    # ---- per-case runs, interleaved
    selected: Dict[str, set] = {}
    caps_note: Dict[str, str] = {}
    for n in order:
        cap = caps.get(n)
        if cap is not None and cap < len(runnable):
            sel = W._stride_sample(runnable, cap)
            selected[n] = {c.id for c in sel}
            caps_note[n] = " (cap %d)" % cap
        else:
            selected[n] = {c.id for c in runnable}
    spent: Dict[str, int] = {n: 0 for n in order}
    budget_skipped: Dict[str, int] = {n: 0 for n in order}
    per_case: Dict[str, Dict[str, Dict[str, Any]]] = {n: {} for n in order}
    t_run = time.time()
    for ci, case in enumerate(runnable):
        gc.collect()
        for k in range(len(order)):
            n = order[(ci + k) % len(order)]  # rotate the engine order per case
            if case.id not in selected[n]:
                continue
            if spent[n] > args.engine_budget * 1e9:
                budget_skipped[n] += 1
                continue
            t0 = pc()
            rec = run_case(engs[n], case, shared, args.case_timeout)
            spent[n] += pc() - t0
            per_case[n][case.id] = rec
        if (ci + 1) % max(25, len(runnable) // 10) == 0 or ci + 1 == len(runnable):
            log("  %d/%d cases (%.0f s)" % (ci + 1, len(runnable), time.time() - t_run))

    retime: Dict[str, Dict[str, Any]] = {}
    if args.retime_runs > 0:
        by_id = {c.id: c for c in runnable}
        for n in order:
            retime[n] = retime_max(engs[n], per_case[n], by_id, shared, args.case_timeout,
                                   args.retime_runs, args.retime_cases, args.retime_budget)
            log("%s: re-timed %d case(s) holding the largest TBM samples in %.1f s%s"
                % (n, retime[n]["cases"], retime[n]["seconds"],
                   "" if retime[n]["converged"] else " (not converged: limit reached)"))
    summ = {n: summarize(list(per_case[n].values())) for n in order}
    for n in order:
        summ[n]["retime"] = retime.get(n)
    versions = {n: engs[n].version() for n in order}

    scaling = None
    ns = [int(x) for x in args.scaling_ns.split(",") if x.strip()]
    if args.tools_scaling:
        scaling = run_scaling(engs, order, data_dir, ns, args.scaling_reps, strict,
                              args.scaling_timeout)

    # ---- report
    out: List[str] = []
    env = env_info(engs)
    out.append("## BFCL v3 token-mask benchmark")
    out.append("")
    out.append("Workload: %d cases (%s; --limit %s per category), %d gold tokens (Llama 3.1); "
               "%d cases skipped because the BFCL gold call does not validate against its schema. "
               "CPU: %s (%s cores), Python %s. Times per engine are over the cases it passed "
               "(status ok)."
               % (len(runnable), ",".join(cats), args.limit or "all",
                  sum(len(c.tokens) for c in runnable), len(invalid), env["cpu"],
                  env["cpu_count"], env["python"]))
    out.append("")
    out.append(main_table(order, summ, versions, caps_note))
    out.append("")
    notes = []
    for n in order:
        if caps_note.get(n):
            notes.append("%s is capped at %d cases (evenly spaced over the %d) to keep the run short; "
                         "--caps changes this." % (n, caps[n], len(runnable)))
        if budget_skipped[n]:
            notes.append("%s: %d cases skipped after its --engine-budget of %.0f s was spent."
                         % (n, budget_skipped[n], args.engine_budget))
        rt_ = summ[n].get("retime")
        if rt_ and not rt_["converged"]:
            notes.append("%s: re-timing stopped at its limit after %d cases (nc = not converged: "
                         "the re-timed max may still be noise; raise --retime-budget)"
                         % (n, rt_["cases"]))
    for n, why in skipped.items():
        notes.append("%s not run: %s" % (n, why))
    if notes:
        out.extend("- " + x for x in notes)
        out.append("")
    rt = ratio_table(order, per_case)
    if rt:
        out.append("Ratios anchor / fcgrammar on the cases both passed (>1× means fcgrammar is faster):")
        out.append("")
        out.append(rt)
        out.append("")
    out.append("Tokenizer index build (one-time, per engine):")
    out.append("")
    out.append(md_table(["engine", "build s"], [[n, "%.2f" % (tok_build_ns[n] / 1e9)] for n in order]))
    out.append("")
    if scaling is not None:
        out.append("Compile + first mask vs number of tools (median of %d tool sets; anyOf over N "
                   "distinct BFCL tools); memory where the engine reports it:" % args.scaling_reps)
        out.append("")
        out.append(scaling_table(order, scaling, ns))
        out.append("")
        for n in order:
            for N in ns:
                e = scaling[n].get(str(N), {})
                if e.get("skipped"):
                    out.append("- %s at %d tools skipped: %s" % (n, N, e["skipped"]))
                errs = [r["error"] for r in e.get("runs", []) if "error" in r]
                if errs:
                    out.append("- %s at %d tools: %d error(s), first: %s" % (n, N, len(errs), errs[0][:200]))
        out.append("")
    out.append("Published / expected anchor figures (from the issue; other hardware and versions):")
    out.append("")
    out.append(md_table(["engine", "TBM p50", "TBM p99", "TTFM p50", "TTFM 128 tools"],
                        [list(r) for r in PUBLISHED]))
    out.append("")
    out.append("Targets for fcgrammar: TBM p50 ≤ 5 µs, p99 ≤ 60 µs, max ≤ 1 ms; compile + first mask "
               "p50 ≤ 1 ms; 128 tools ≤ 20 ms; memory per compiled tool set ≤ 1 MB.")
    out.append("")
    if "fcgrammar" in summ:
        out.append(targets_table(summ["fcgrammar"], scaling))
        out.append("")

    # errors
    err_lines: List[str] = []
    for n in order:
        bad = [r for r in per_case[n].values() if r["status"] != "ok"]
        if not bad:
            continue
        err_lines.append("%s: %d case(s) not ok" % (n, len(bad)))
        for r in bad[:12]:
            if r["status"] == "rejected":
                err_lines.append("  %s %s: gold token %d/%d %s rejected (%s) after …%r%s"
                                 % (r["id"], r["status"], r["reject_at"], r["n_tokens"],
                                    r["reject_text"], r["reject_kind"], r.get("reject_prefix", ""),
                                    (" — " + r["error"].splitlines()[0][:160]) if r.get("error") else ""))
            else:
                err_lines.append("  %s %s: %s" % (r["id"], r["status"],
                                                  ((r.get("error") or "").splitlines() or [""])[0][:240]))
        if len(bad) > 12:
            err_lines.append("  … %d more (see --json)" % (len(bad) - 12))
    if invalid:
        err_lines.append("gold calls not valid under their own schema (BFCL data; skipped for all engines):")
        for c in invalid[:10]:
            err_lines.append("  %s: %s" % (c.id, c.gold_error[:160]))
        if len(invalid) > 10:
            err_lines.append("  … %d more" % (len(invalid) - 10))
    if err_lines:
        out.append("Errors:")
        out.append("")
        out.append("```")
        out.extend(err_lines)
        out.append("```")
    report = "\n".join(out)
    print(report)

    if args.json:
        res = {
            "config": {k: v for k, v in vars(args).items()},
            "env": env,
            "engine_notes": {n: engs[n].notes for n in order},
            "skipped_engines": skipped,
            "tokenizer_build_ns": tok_build_ns,
            "workload": {"cases": len(cases), "runnable": len(runnable),
                         "gold_invalid": [{"id": c.id, "error": c.gold_error} for c in invalid],
                         "tokens": sum(len(c.tokens) for c in runnable)},
            "summary": summ,
            "ratios_markdown": rt,
            "scaling": scaling,
            "published": PUBLISHED,
            "targets": TARGETS,
            "cases": {n: list(per_case[n].values()) for n in order},
            "report_markdown": report,
        }
        if args.no_per_token:
            for n in order:
                for r in res["cases"][n]:
                    for k in ("tbm_ns", "accept_ns", "mask_ns"):
                        r.pop(k, None)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, default=str)
        log("wrote %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
