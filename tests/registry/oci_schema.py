"""Validation against the OCI image-spec JSON schemas vendored in schemas/ (draft-04).

The schemas `$ref` each other by relative names (`defs-descriptor.json`) from bases given by
`id`s that vary (`…/schema/image/manifest`, `…/schema/descriptor`, nested ids too), so every
file is registered under each base the upstream files resolve against.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")
_BASES = ("https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/",
          "https://opencontainers.org/schema/descriptor/",
          "https://opencontainers.org/schema/image/descriptor/")


def _load(name: str) -> dict[str, Any]:
    with open(os.path.join(SCHEMA_DIR, name)) as f:
        result: dict[str, Any] = json.load(f)
    return result


@cache
def _registry() -> Registry:
    resources: list[tuple[str, Resource[Any]]] = []
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if not name.endswith(".json"):
            continue
        contents = _load(name)
        resource = DRAFT4.create_resource(contents)
        resources += [(base + name, resource) for base in _BASES]
        if isinstance(contents.get("id"), str):
            resources.append((contents["id"], resource))
    return Registry().with_resources(resources)


def validate(obj: Any, schema_file: str) -> None:
    """Raise jsonschema.ValidationError unless `obj` satisfies the named schema."""
    Draft4Validator(_load(schema_file), registry=_registry()).validate(obj)
