"""Checks of an OpenAI assistant message produced under a tool_choice, shared by the integration tests."""
from __future__ import annotations

import json
from typing import Any, Dict, List


def check_tool_message(msg: Dict[str, Any], choice: Any, schemas: Dict[str, dict]) -> List[dict]:
    """Every call names a known tool and its arguments validate; the calls honour ``choice`` ("auto",
    "none", "required" or a named function). Returns the calls."""
    import jsonschema  # the callers skip when it is missing

    assert msg["role"] == "assistant"
    calls = msg.get("tool_calls") or []
    for c in calls:
        assert c["type"] == "function" and c["id"]
        name = c["function"]["name"]
        assert name in schemas
        jsonschema.validate(json.loads(c["function"]["arguments"]), schemas[name])
    if choice == "none":
        assert not calls and isinstance(msg["content"], str)
    elif choice == "required":
        assert calls
    elif isinstance(choice, dict):
        assert calls and {c["function"]["name"] for c in calls} == {choice["function"]["name"]}
    return calls
