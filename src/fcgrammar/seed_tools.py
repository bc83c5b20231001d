"""The seeds' example tools (Functionary's README), used by the demo and tests: OpenAI `tools` format."""
from __future__ import annotations

from typing import Any, Dict, List


def _fn(name: str, description: str, properties: Dict[str, Any], required: List[str]) -> Dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


SEED_TOOLS: List[Dict[str, Any]] = [
    _fn("get_current_weather", "Get the current weather",
        {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}},
        ["location"]),
    _fn("plan_trip", "Plan a trip based on user's interests",
        {"destination": {"type": "string", "description": "The destination of the trip"},
         "duration": {"type": "integer", "description": "The duration of the trip in days"},
         "interests": {"type": "array", "items": {"type": "string"},
                       "description": "The interests based on which the trip will be planned"}},
        ["destination", "duration", "interests"]),
    _fn("estimate_property_value", "Estimate the market value of a property",
        {"property_details": {"type": "object", "properties": {
            "location": {"type": "string", "description": "The location of the property"},
            "size": {"type": "integer", "description": "The size of the property in square feet"},
            "rooms": {"type": "integer", "description": "The number of rooms in the property"}},
            "required": ["location", "size", "rooms"]}},
        ["property_details"]),
    _fn("parse_customer_complaint", "Parse a customer complaint and identify the core issue",
        {"complaint": {"type": "object", "properties": {
            "issue": {"type": "string", "description": "The main problem"},
            "frequency": {"type": "string", "description": "How often the issue occurs"},
            "duration": {"type": "string", "description": "How long the issue has been occurring"}},
            "required": ["issue", "frequency", "duration"]}},
        ["complaint"]),
]


def call_schema(tools: List[Dict[str, Any]]) -> Dict[str, Any]:
    """JSON schema of one call ``{"name": ..., "arguments": {...}}`` to any of ``tools``."""
    branches = []
    for t in tools:
        f = t.get("function", t)
        branches.append({"type": "object", "properties": {"name": {"const": f["name"]},
                                                          "arguments": f.get("parameters", {"type": "object"})},
                         "required": ["name", "arguments"], "additionalProperties": False})
    return branches[0] if len(branches) == 1 else {"anyOf": branches}
