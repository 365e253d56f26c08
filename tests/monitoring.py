"""A baked project's monitoring files as the tools read them: the Prometheus alert rules, and the
statsd_exporter mapping, matched and applied the way the exporter applies it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from helpers import BakedProject

RULES = "monitoring/prometheus/airflow_rules.yaml"
RULE_TESTS = "monitoring/prometheus/airflow_rules_test.yaml"
MAPPING = "monitoring/statsd_mapping.yaml"
SERIES = re.compile(r"\bairflow_[a-z0-9_]+")
# statsd_exporter's line types -> the metric type a mapping's match_metric_type names.
STATSD_TYPES = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}


def alert_rules(project: BakedProject) -> list[dict]:
    groups = yaml.safe_load(project.read(RULES))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_series(project: BakedProject) -> set[str]:
    return {name for rule in alert_rules(project) for name in SERIES.findall(rule["expr"])}


@dataclass
class Mapping:
    """One statsd_exporter mapping rule, matched the way the exporter matches it."""

    match: str
    glob: bool
    name: str
    metric_type: str | None
    labels: dict[str, str]
    drop: bool
    pattern: re.Pattern

    @classmethod
    def load(cls, rule: dict, defaults: dict) -> Mapping:
        glob = rule.get("match_type", defaults.get("match_type", "glob")) == "glob"
        if glob:
            # A glob's `*` stands for exactly one dot-separated component.
            parts = ["([^.]+)" if part == "*" else re.escape(part) for part in rule["match"].split(".")]
            pattern = re.compile(r"\.".join(parts) + "$")
        else:
            pattern = re.compile(rule["match"])
        return cls(
            match=rule["match"],
            glob=glob,
            name=rule["name"],
            metric_type=rule.get("match_metric_type"),
            labels=rule.get("labels", {}),
            drop=rule.get("action") == "drop",
            pattern=pattern,
        )

    def series(self) -> set[str]:
        """The Prometheus series names this mapping produces."""
        if self.drop:
            return set()
        if self.metric_type == "observer":
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        return {self.name}


def mappings(project: BakedProject) -> list[Mapping]:
    document = yaml.safe_load(project.read(MAPPING))
    rules = [Mapping.load(rule, document.get("defaults", {})) for rule in document["mappings"]]
    # The exporter tries every glob rule, in file order, before any regex rule.
    return [rule for rule in rules if rule.glob] + [rule for rule in rules if not rule.glob]


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def expand(template: str, captures: tuple[str, ...]) -> str:
    """Fill in a mapping's $1 or ${1} references to the match's captures."""
    return re.sub(r"\$\{?(\d+)\}?", lambda reference: captures[int(reference[1]) - 1], template)


def translate(line: str, rules: list[Mapping]) -> Sample | None:
    """A StatsD line as statsd_exporter turns it into a sample; None when a rule drops it.

    InfluxDB-style tags (`name,tag=value:1|c`) become labels, as the exporter parses them.
    """
    head, _, rest = line.partition(":")
    statsd_name, *tags = head.split(",")
    labels = dict(tag.split("=", 1) for tag in tags)
    value, statsd_type = rest.split("|")[:2]
    metric_type = STATSD_TYPES[statsd_type]
    for rule in rules:
        matched = rule.pattern.match(statsd_name)
        if not matched or rule.metric_type not in (None, metric_type):
            continue
        if rule.drop:
            return None
        labels |= {key: expand(template, matched.groups()) for key, template in rule.labels.items()}
        return Sample(expand(rule.name, matched.groups()), labels, float(value))
    raise AssertionError(f"no mapping rule, not even the catch-all, matched {line!r}")
