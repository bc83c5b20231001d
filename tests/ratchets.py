"""Ratchet files: the committed outcome counts of an external suite, per file (or subset), per mode.

A suite run produces ``{mode: {name: {"counts": {...}, "details": [...]}}}``. Against the committed file, a
name whose counts got worse (fewer of a ``better`` count, more of a ``worse`` one) is a regression and fails;
counts that got better are printed so the file can be regenerated on purpose:

    FCGRAMMAR_UPDATE_RATCHET=1 pytest tests/<the suite's test file>
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Iterable

UPDATING = bool(os.environ.get("FCGRAMMAR_UPDATE_RATCHET"))


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
