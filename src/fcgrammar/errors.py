"""Typed exceptions. Every error names what is wrong and where, so a user can fix their input."""
from __future__ import annotations

from typing import Optional


class FcgError(Exception):
    """Base class of every fcgrammar error."""


class SchemaError(FcgError, ValueError):
    """A JSON schema the compiler cannot honour: names the keyword and the JSON pointer where it sits."""

    def __init__(self, message: str, pointer: str = "", keyword: Optional[str] = None):
        self.pointer = pointer
        self.keyword = keyword
        where = f" at {pointer or '#'}" if pointer is not None else ""
        kw = f" (keyword {keyword!r})" if keyword else ""
        super().__init__(f"{message}{kw}{where}")


class TokenizerError(FcgError, ValueError):
    """A tokenizer/vocabulary that cannot be read or is inconsistent."""


class GrammarError(FcgError, ValueError):
    """A grammar that cannot be compiled (left recursion, empty language, ...)."""


class LimitError(FcgError, RuntimeError):
    """A configured limit (automaton size, repetition bound, nesting) was exceeded."""


class MatcherError(FcgError, RuntimeError):
    """Misuse of a matcher (e.g. filling a mask after termination)."""
