"""The GA4GH TES 1.1 OpenAPI schema (tests/data/tes/) as validators.

Requests are checked as a client writes them (readOnly fields such as id, state and logs
are refused), responses as a server returns them. The schema does not forbid unknown
properties, so :func:`unknown_properties` also reports any key the schema does not define
(a misspelt ``cpu_core`` would otherwise pass).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

SCHEMA_FILE = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "tes"
    / "task_execution_service.openapi.v1.1.yaml"
)


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_FILE.read_text())


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": spec()["components"]}


def request_errors(instance: Any, name: str = "tesTask") -> list[str]:
    validator = OAS30WriteValidator(_schema(name))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def response_errors(instance: Any, name: str) -> list[str]:
    validator = OAS30ReadValidator(_schema(name))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def unknown_properties(instance: Any, name: str = "tesTask", path: str = "") -> list[str]:
    """Keys of ``instance`` that the schema does not define, at any depth."""
    schema = _resolve({"$ref": f"#/components/schemas/{name}"})
    return _unknown(instance, schema, path)


def _unknown(instance: Any, schema: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema)
    found: list[str] = []
    if isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            if key not in schema["properties"]:
                found.append(f"{path}/{key}")
            else:
                found += _unknown(value, schema["properties"][key], f"{path}/{key}")
    elif isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            found += _unknown(item, schema["items"], f"{path}/{index}")
    return found
