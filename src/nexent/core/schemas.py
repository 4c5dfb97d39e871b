"""Request shapes shared by every domain."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, model_validator


def _drop_null(schema: dict[str, Any], cls: type[Patch]) -> None:
    """In the JSON schema, a field that may not be null does not offer null."""
    for name, prop in schema.get("properties", {}).items():
        if name in cls.nullable or "anyOf" not in prop:
            continue
        options = [option for option in prop["anyOf"] if option.get("type") != "null"]
        if len(options) == 1:
            prop.pop("anyOf")
            prop.update(options[0])
        else:
            prop["anyOf"] = options
        if prop.get("default", "") is None:
            prop.pop("default")


class Patch(BaseModel):
    """A partial update: a field left out keeps its value; `null` is accepted only by the fields in `nullable`
    (those whose value may really be absent, such as an optional model), never as another way to leave one out."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null)
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _refuse_null(self) -> Self:
        nulls = sorted(f for f in self.model_fields_set if getattr(self, f) is None and f not in self.nullable)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave a field out to keep its value")
        return self
