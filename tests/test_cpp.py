"""Builds the C++ engine's unit tests in a debug build with ASan/UBSan and runs them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not found")
def test_cpp_unit_tests_under_sanitizers(tmp_path):
    build = Path(os.environ.get("FCG_CPP_TEST_BUILD", tmp_path / "build"))
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Debug",
                    "-DFCG_BUILD_PYTHON=OFF", "-DFCG_BUILD_TESTS=ON", "-DFCG_SANITIZE=ON", *gen],
                   check=True, capture_output=True)
    out = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    warnings = [l for l in out.stdout.splitlines() + out.stderr.splitlines() if "warning:" in l]
    assert not warnings, "the engine must build clean with -Wall -Wextra:\n" + "\n".join(warnings)
    run = subprocess.run([str(build / "fcg_cpp_tests")], capture_output=True, text=True,
                         env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"})
    sys.stdout.write(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failed" in run.stdout
