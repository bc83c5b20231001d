"""External schema suites: judging their instances, and ratchet files of the outcome counts.

A ratchet file holds the committed outcome counts of a suite, per file (or subset), per mode.

A suite run produces ``{mode: {name: {"counts": {...}, "details": [...]}}}``. Against the committed file, a
name whose counts got worse (fewer of a ``better`` count, more of a ``worse`` one) is a regression and fails;
counts that got better are printed so the file can be regenerated on purpose:

    FCGRAMMAR_UPDATE_RATCHET=1 pytest tests/<the suite's test file>
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Iterable, List

from fcgrammar._testing import accepts, compile_bytes_or_none
from fcgrammar.errors import LimitError, SchemaError
from fcgrammar.json_schema import schema_to_grammar

UPDATING = bool(os.environ.get("FCGRAMMAR_UPDATE_RATCHET"))


def compile_schema(schema, opts: dict):
    """The byte-level grammar of a suite schema; None when no instance is valid. With ``any_order`` an object
    over the compiler's any-order limit falls back to schema order (the LimitError is not the schema's)."""
    try:
        g = schema_to_grammar(schema, **opts)
    except LimitError:
        if not opts.get("any_order"):
            raise
        g = schema_to_grammar(schema, **{**opts, "any_order": False})
    return compile_bytes_or_none(g)


def judge_group(schema, tests: Iterable[dict], opts: dict, counts: Dict[str, int], details: List[str],
                label: str) -> None:
    """Count a schema's instances (``{"data", "valid", "description"}``) as pass / fail_over / fail_under, or
    all as unsupported when the schema raises SchemaError/LimitError. Each instance is serialized with compact
    json.dumps in both ``ensure_ascii`` spellings and must be accepted iff it is valid."""
    try:
        cg = compile_schema(schema, opts)
    except (SchemaError, LimitError):
        counts["unsupported"] += len(tests)
        return
    for t in tests:
        spellings = {json.dumps(t["data"], separators=(",", ":"), ensure_ascii=a) for a in (False, True)}
        got = [cg is not None and accepts(cg, s) for s in spellings]
        if all(g == t["valid"] for g in got):
            counts["pass"] += 1
            continue
        kind = "fail_over" if t["valid"] else "fail_under"
        counts[kind] += 1
        details.append(f"{kind}: {label} / {t.get('description', '')}: {min(spellings)[:120]}")


def totals(files: Dict[str, dict]) -> Dict[str, int]:
    tot: Dict[str, int] = {}
    for r in files.values():
        for k, v in r["counts"].items():
            tot[k] = tot.get(k, 0) + v
    return tot


def write(path: Path, results: Dict[str, Dict[str, dict]], comment: str) -> None:
    data = {"_comment": comment}
    for mode, files in results.items():
        data[mode] = {"totals": totals(files), "files": {f: r["counts"] for f, r in sorted(files.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def check(path: Path, results: Dict[str, Dict[str, dict]], *, better: Iterable[str], worse: Iterable[str],
          comment: str, test_file: str) -> None:
    """Write the ratchet (FCGRAMMAR_UPDATE_RATCHET set) or assert that no name does worse than it says."""
    if UPDATING:
        write(path, results, comment)
        return
    ratchet = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    better, worse = tuple(better), tuple(worse)
    problems, improved = [], []
    for mode, files in results.items():
        old = ratchet.get(mode, {}).get("files", {})
        for name, r in files.items():
            c, o = r["counts"], old.get(name)
            if o is None:
                problems.append(f"[{mode}] {name}: not in the ratchet file ({c})")
            elif any(c.get(k, 0) < o.get(k, 0) for k in better) or any(c.get(k, 0) > o.get(k, 0) for k in worse):
                shown = "\n      ".join(r["details"][:10])
                problems.append(f"[{mode}] {name}: now {c}, ratchet {o}\n      {shown}")
            elif c != o:
                improved.append(f"[{mode}] {name}: {o} -> {c}")
    if improved:
        print("improved (update the ratchet with FCGRAMMAR_UPDATE_RATCHET=1):\n  " + "\n  ".join(improved))
    assert not problems, (f"regressions against the ratchet {path} (regenerate with FCGRAMMAR_UPDATE_RATCHET=1 "
                          f"pytest {test_file} after a deliberate change):\n  " + "\n  ".join(problems))
