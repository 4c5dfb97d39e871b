"""Schemas a route refers to only by name (the events of a stream), for the app's OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

REF_TEMPLATE = "#/components/schemas/{model}"


def openapi_schemas(*models: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Each model's JSON schema as an OpenAPI component, with every model it refers to."""
    components: dict[str, dict[str, Any]] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="serialization")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components
