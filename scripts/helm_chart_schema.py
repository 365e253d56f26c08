"""Derive the generated projects' tests/helm_chart_schema.json from the official chart's schema.

The Apache Airflow chart validates its values against chart/values.schema.json, but only
below the top level, so a misspelt top-level key passes `helm install` and is ignored. The
generated tests/test_helm_values.py validates deploy/helm/values.yaml against what
this script keeps of that schema, with the top level closed to the chart's own keys. Nothing
of the schema's text is shipped: only key names, types, enums and patterns.

    curl --fail --location --output values.schema.json \\
        https://raw.githubusercontent.com/apache/airflow/helm-chart/1.19.0/chart/values.schema.json
    python scripts/helm_chart_schema.py values.schema.json --chart-version 1.19.0 --source <tag or commit>

What is kept: every top-level key with its type, and the names of its own keys where the chart
closes it (additionalProperties: false); every object the template's values set (in any variant
it can bake) with all its keys and their types, recursing only where the values go. An object
the schema closes stays closed; deeper subtrees the values do not enter keep only their type,
and the chart's schema checks them at install. Kubernetes API definitions ($ref) are not followed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import yaml
from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
OUTPUT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "tests" / "helm_chart_schema.json"
# The answers that change deploy/helm/values.yaml.
VALUES_ANSWERS = {
    "executor": ["KubernetesExecutor", "CeleryKubernetesExecutor"],
    "metrics": ["statsd", "otel", "none"],
    "deploy_target": ["s3", "gcs", "volume", "git_bundle"],
}
KEPT = ("type", "enum", "pattern", "propertyNames")


def values_in_use() -> dict:
    """Every key path the template's deploy/helm/values.yaml sets, merged over all variants."""
    merged: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        for number, answers in enumerate(itertools.product(*VALUES_ANSWERS.values())):
            context = dict(zip(VALUES_ANSWERS, answers, strict=True))
            project = cookiecutter(
                str(TEMPLATE_DIR), no_input=True, extra_context=context, output_dir=f"{scratch}/{number}"
            )
            merge(merged, yaml.safe_load((Path(project) / "deploy" / "helm" / "values.yaml").read_text()))
    return merged


def merge(into: dict, values: object) -> None:
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        child = into.setdefault(key, {})
        merge(child, value)


def shallow(node: dict) -> dict:
    return {key: node[key] for key in KEPT if key in node}


def outline(node: dict) -> dict:
    """A node's type and, where the chart closes it, the names of its keys (not their types)."""
    reduced = shallow(node)
    if "properties" in node and node.get("additionalProperties") is False:
        reduced["propertyNames"] = {"enum": list(node["properties"])}
    return reduced


def reduce(node: dict, used: dict, closed: bool = False) -> dict:
    """The part of a schema node that checks `used`: its keys' names and types, to the depth used.

    The top level (`closed`) also outlines the keys it does not use, so that a misspelt key one
    level down is caught anywhere.
    """
    reduced = shallow(node)
    if "properties" in node:
        unused = outline if closed else shallow
        reduced["properties"] = {
            name: reduce(child, used[name]) if used.get(name) else unused(child)
            for name, child in node["properties"].items()
        }
        if closed or node.get("additionalProperties") is False:
            reduced["additionalProperties"] = False
    elif isinstance(node.get("additionalProperties"), dict):
        entries: dict = {}
        for entry in used.values():
            merge(entries, entry)
        reduced["additionalProperties"] = reduce(node["additionalProperties"], entries)
    return reduced


def is_leaf(schema: dict) -> bool:
    return "properties" not in schema and not isinstance(schema.get("additionalProperties"), dict)


def render_names(schema: dict, indent: int, width: int) -> str:
    """A leaf with a long propertyNames list: the names wrapped under their key."""
    names = [json.dumps(name) for name in schema["propertyNames"]["enum"]]
    rest = json.dumps({key: value for key, value in schema.items() if key != "propertyNames"})
    rows, pad = [""], " " * (indent + 2)
    for name in names:
        if rows[-1] and len(pad) + len(rows[-1]) + len(name) + 2 > width:
            rows.append("")
        rows[-1] += (", " if rows[-1] else "") + name
    body = ",\n".join(pad + row for row in rows)
    return f'{rest[:-1]}, "propertyNames": {{"enum": [\n{body}\n{" " * indent}]}}}}'


def render(schema: dict, indent: int = 0, width: int = 118) -> str:
    """Readable JSON: nested objects indented, neighbouring leaf keys packed onto shared lines."""
    if is_leaf(schema):
        if "propertyNames" in schema and indent + len(json.dumps(schema)) > width:
            return render_names(schema, indent, width)
        return json.dumps(schema)
    pad = " " * (indent + 2)
    lines = [f"{pad}{json.dumps(key)}: {json.dumps(value)}" for key, value in schema.items() if key in KEPT]
    if isinstance(schema.get("additionalProperties"), dict):
        lines.append(f'{pad}"additionalProperties": {render(schema["additionalProperties"], indent + 2)}')
    elif "additionalProperties" in schema:
        lines.append(f'{pad}"additionalProperties": {json.dumps(schema["additionalProperties"])}')
    if "properties" in schema:
        inner = " " * (indent + 4)
        rows: list[str] = []
        for name, child in schema["properties"].items():
            entry = f"{json.dumps(name)}: {render(child, indent + 4)}"
            packable = is_leaf(child) and "\n" not in entry
            if packable and rows and not rows[-1].endswith("\n") and len(rows[-1]) + len(entry) + 2 <= width:
                rows[-1] += f", {entry}"
            else:
                rows.append(inner + entry + ("" if packable else "\n"))
        body = ",\n".join(row.rstrip("\n") for row in rows)
        lines.append(f'{pad}"properties": {{\n{body}\n{pad}}}')
    return "{\n" + ",\n".join(lines) + "\n" + " " * indent + "}"


def derive(chart_schema: dict, used: dict, chart_version: str, source: str) -> dict:
    derived = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": (
            f"Derived by the template's scripts/helm_chart_schema.py from chart/values.schema.json of the "
            f"Apache Airflow Helm chart {chart_version} (x-chart-source): key names and types only. "
            "The top level is closed to the chart's own keys."
        ),
        "x-chart-version": chart_version,
        "x-chart-source": source,
    }
    return derived | reduce(chart_schema, used, closed=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schema", type=Path, help="the chart's values.schema.json")
    parser.add_argument("--chart-version", required=True, help="the chart version the schema belongs to")
    parser.add_argument("--source", required=True, help="the apache/airflow tag or commit the schema came from")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    derived = derive(json.loads(args.schema.read_text()), values_in_use(), args.chart_version, args.source)
    header = {key: value for key, value in derived.items() if key.startswith(("$", "x-"))}
    body = {key: value for key, value in derived.items() if key not in header}
    text = render(body)
    text = "{\n" + "".join(f"  {json.dumps(k)}: {json.dumps(v)},\n" for k, v in header.items()) + text[2:]
    assert json.loads(text) == derived, "the rendering lost something"
    args.output.write_text(text + "\n")
    print(f"wrote {args.output} ({text.count(chr(10)) + 1} lines)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
