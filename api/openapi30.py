"""The OpenAPI document as 3.0, the version OGC API - Features clients expect.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12). The landing page links the
document as ``application/vnd.oai.openapi+json;version=3.0`` (OGC API - Features
Part 1, /req/oas30), so it is served converted: the few 3.1 forms pydantic emits
have exact 3.0 spellings.

- ``anyOf: [X, {type: null}]`` -> ``X`` with ``nullable: true`` (``allOf: [X]`` when X
  is a ``$ref``, which takes no siblings in 3.0);
- ``type: [T, "null"]`` -> ``type: T, nullable: true``;
- ``const: v`` -> ``enum: [v]``; ``examples: [a, ...]`` in a schema -> ``example: a``;
- numeric ``exclusiveMinimum``/``exclusiveMaximum`` -> ``minimum``/``maximum`` with
  the boolean flag;
- ``contentMediaType`` on a string (file uploads) -> ``format: binary``.
"""

from __future__ import annotations

from typing import Any

_NULL = {"type": "null"}


def to_openapi_30(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI 3.1 document ``doc`` written as OpenAPI 3.0.3."""
    out = {k: _convert(v, schema=False) for k, v in doc.items() if k not in _DROP}
    out["openapi"] = "3.0.3"
    return out


_DROP = {"jsonSchemaDialect", "webhooks", "$schema"}
# keys whose values hold schemas (or maps/lists of schemas)
_SCHEMA_KEYS = {"schema", "items", "additionalProperties", "not"}
_SCHEMA_MAPS = {"properties", "schemas"}
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf"}


def _convert(node: Any, *, schema: bool) -> Any:
    if isinstance(node, list):
        return [_convert(v, schema=schema) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_KEYS:
            out[key] = _convert(value, schema=True)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _convert(v, schema=True) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_convert(v, schema=True) for v in value]
        else:
            out[key] = _convert(value, schema=False)
    return _schema_30(out) if schema else out


def _schema_30(s: dict[str, Any]) -> dict[str, Any]:
    """One schema object (its children already converted) in 3.0 terms."""
    for key in ("anyOf", "oneOf"):
        options = s.get(key)
        if isinstance(options, list) and _NULL in options:
            rest = [o for o in options if o != _NULL]
            s = {k: v for k, v in s.items() if k != key}
            if len(rest) == 1 and "$ref" in rest[0]:
                s["allOf"] = rest
            elif len(rest) == 1:
                s = {**rest[0], **s}
            elif rest:
                s[key] = rest
            s["nullable"] = True
    kind = s.get("type")
    if isinstance(kind, list):
        others = [t for t in kind if t != "null"]
        if len(others) < len(kind):
            s["nullable"] = True
        if len(others) == 1:
            s["type"] = others[0]
        else:
            s.pop("type")
            s["anyOf"] = [{"type": t} for t in others]
    if "const" in s:
        s["enum"] = [s.pop("const")]
    if isinstance(s.get("examples"), list):
        examples = s.pop("examples")
        if examples:
            s["example"] = examples[0]
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = s.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            s[bound] = value
            s[key] = True
    if "contentMediaType" in s:
        s.pop("contentMediaType")
        s.setdefault("format", "binary")
    return s
