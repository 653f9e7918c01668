"""values.yaml is documented key by key and fully covered by values.schema.json."""

from __future__ import annotations

import json

import yaml

from tests.k8s.support import validate as v


def _undocumented_keys(text: str) -> list[str]:
    """Keys of a values file not covered by a `# --` comment on themselves or on an enclosing key."""
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented)
    comment: list[str] = []
    missing = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        if not stripped or stripped.startswith("- ") or ":" not in stripped:
            comment = [] if not stripped else comment
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = stripped.split(":", 1)[0]
        documented = any(c.startswith("# --") for c in comment) or any(d for _, _, d in stack)
        stack.append((indent, key, documented))
        comment = []
        if stripped.endswith(":"):
            continue  # a section: its children are checked
        if not documented:
            missing.append(".".join(k for _, k, _ in stack))
    return missing


def test_should_document_every_value_key_by_key():
    assert _undocumented_keys((v.CHART / "values.yaml").read_text()) == []
    assert _undocumented_keys("a:\n  # -- yes\n  b: 1\n  c: 2\n") == ["a.c"]  # the check itself bites


def _schema() -> dict:
    return json.loads((v.CHART / "values.schema.json").read_text())


def _resolve(schema: dict, node: dict) -> dict:
    """Follow local `$ref`s (#/$defs/...) to the schema they name."""
    while "$ref" in node:
        target = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_should_give_every_value_a_schema_entry():
    schema = _schema()
    values = yaml.safe_load((v.CHART / "values.yaml").read_text())

    def walk(node: dict, sch: dict, path: str) -> None:
        sch = _resolve(schema, sch)
        assert sch.get("additionalProperties") is False or "properties" not in sch, path
        for key, val in node.items():
            props = sch.get("properties", {})
            if "properties" in sch:
                assert key in props, f"{path}.{key} missing from values.schema.json"
                sub = _resolve(schema, props[key])
                if isinstance(val, dict) and sub.get("additionalProperties") is False:
                    walk(val, sub, f"{path}.{key}")
                if isinstance(val, list) and val and isinstance(val[0], dict) and "items" in sub:
                    for i, item in enumerate(val):
                        walk(item, sub["items"], f"{path}.{key}[{i}]")

    walk(values, schema, "")


def test_should_define_each_repeated_schema_once():
    """resources, worker groups, probes, selectors: one definition each, referenced everywhere (issue 15)."""
    text = (v.CHART / "values.schema.json").read_text()
    schema = _schema()
    assert text.count('"requests"') == 1 and text.count('"gpus"') == 1
    refs = text.count('"$ref": "#/$defs/resources"')
    assert refs >= 8, refs
    ray, rollout = schema["properties"]["ray"]["properties"], schema["properties"]["rollout"]["properties"]
    assert ray["workerGroups"] == rollout["workerGroups"] == {"$ref": "#/$defs/workerGroups"}
    for name in schema["$defs"]:  # every definition is used
        assert f'"#/$defs/{name}"' in text, f"$defs/{name} is never referenced"
