"""Write docs/configuration.md, the configuration reference, from schemas/config.schema.yaml.

One row per key (dotted path; ``<name>`` for the keys a mapping chooses), with its type or allowed values,
its default and its description, in the schema's order. tests/test_config_report.py checks that the page is
current. Usage: python tools/config_reference.py [PAGE]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
PAGE = ROOT / "docs" / "configuration.md"


def resolve(spec: dict, root: dict) -> dict:
    """``spec`` merged over the schema its ``$ref`` names, at any depth (local references only)."""
    if "$ref" not in spec:
        return spec
    referenced = resolve(root["$defs"][spec["$ref"].removeprefix("#/$defs/")], root)
    merged = {**referenced, **{k: v for k, v in spec.items() if k != "$ref"}}
    merged["properties"] = {**referenced.get("properties", {}), **spec.get("properties", {})}
    merged["required"] = spec.get("required", referenced.get("required", []))
    return merged


def kind(spec: dict, root: dict) -> str:
    """Type, allowed values and range of a leaf, as a reader wants them (alternatives joined by "or")."""
    alternatives = spec.get("anyOf") or spec.get("oneOf")
    if alternatives:
        return " or ".join(kind(resolve(option, root), root) for option in alternatives)
    if "const" in spec:
        return f"`{spec['const']}`"
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    types = spec.get("type", "")
    text = " or ".join(types) if isinstance(types, list) else types
    if text == "array":
        items = spec.get("items", {})
        text = "list of " + (
            ", ".join(f"`{v}`" for v in items["enum"]) if "enum" in items else items.get("type", "values")
        )
    bounds = [
        f">= {spec['minimum']}" if "minimum" in spec else "",
        f"> {spec['exclusiveMinimum']}" if "exclusiveMinimum" in spec else "",
        f"<= {spec['maximum']}" if "maximum" in spec else "",
        f"< {spec['exclusiveMaximum']}" if "exclusiveMaximum" in spec else "",
    ]
    bounds = ", ".join(b for b in bounds if b)
    return f"{text} ({bounds})" if bounds else text


def rows(spec: dict, root: dict, path: str, required: bool) -> list[str]:
    spec = resolve(spec, root)
    dumped = yaml.safe_dump(spec.get("default"), default_flow_style=True).strip().removesuffix("...").strip()
    default = f"`{dumped}`" if "default" in spec else ""
    need = "required" if required else default or "optional"
    description = " ".join(str(spec.get("description", "")).split()).replace("|", "\\|")
    properties = spec.get("properties", {})
    mapping = spec.get("additionalProperties")
    if not properties and not isinstance(mapping, dict):
        return [f"| `{path}` | {kind(spec, root)} | {need} | {description} |"]
    lines = [f"| `{path}` | mapping | {need} | {description} |"] if path else []
    for key, child in properties.items():
        lines += rows(child, root, f"{path}.{key}" if path else key, key in spec.get("required", []))
    if isinstance(mapping, dict):
        lines += rows(mapping, root, f"{path}.<name>", False)
    return lines


def reference() -> str:
    root = yaml.safe_load(SCHEMA.read_text())
    return "\n".join(
        [
            "# Configuration reference",
            "",
            "Generated from `schemas/config.schema.yaml` by `python tools/config_reference.py`; do not edit by hand.",
            "`config.yaml` holds the miniature study's values with a comment per key; a preset or a file of yours",
            "given with `--configfile` overrides it key by key (mappings merge, lists replace). Every key is",
            "validated before any job runs; an optional key gets the default shown here.",
            "",
            "| key | type or values | required / default | description |",
            "|---|---|---|---|",
            *rows(root, root, "", True),
            "",
        ]
    )


if __name__ == "__main__":
    page = Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE
    page.write_text(reference())
    print(f"wrote {page}")
