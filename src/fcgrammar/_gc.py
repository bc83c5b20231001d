"""Pausing Python's cyclic garbage collector while a compiler builds its expression trees.

Compiling a schema allocates tens of thousands of tuples that all survive until the grammar is built;
each batch of them triggers a collection, and the older generations' collections walk every object the
process tracks (hundreds of thousands once torch is imported). The compilers make no garbage cycles
worth collecting sooner, so they run with the collector paused: about a tenth of a 128-tool compile."""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0  # compilations running now, in any thread
_resume = False  # whether the collector was enabled when the first of them started


@contextmanager
def paused() -> Iterator[None]:
    """Run the body with the cyclic collector disabled, then restore it (nests, and works across threads:
    the collector comes back when the last paused body ends, and only if it was enabled before the first)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
