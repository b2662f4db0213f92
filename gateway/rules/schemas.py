"""JSON Schema checks of bodies that come from outside (a callback's call, a flow's callback step)."""

from __future__ import annotations

from typing import Any

import jsonschema

__all__ = ["schema_problems"]


def schema_problems(schema: dict[str, Any], body: Any) -> list[dict[str, Any]]:
    """Why ``body`` fails ``schema``; a schema whose ``$ref``s recurse without end against a deep
    body fails the call with one problem rather than exhausting the stack."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    try:
        return [
            {"path": "/" + "/".join(str(p) for p in error.absolute_path), "message": error.message}
            for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        ]
    except RecursionError:
        return [{"path": "/", "message": "the body cannot be checked: the schema recurses too deeply on it"}]
