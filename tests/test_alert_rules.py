"""The Prometheus alert rules: promtool checks them and runs their unit tests, which fire every alert and
keep it quiet when healthy."""

from __future__ import annotations

import pytest
import yaml
from helpers import run
from monitoring import RULE_TESTS, RULES, alert_rules

PROMTOOL = "promtool"  # Debian's prometheus package; .ci/run installs it
RULE_VARIANTS = pytest.mark.parametrize("variant", ["local", "kubernetes"])  # metrics: statsd, otel


@RULE_VARIANTS
def test_alert_rules_pass_promtool_check_and_their_unit_tests(baked, variant):
    project = baked(variant)
    checked = run([PROMTOOL, "check", "rules", RULES], cwd=project.path)
    assert f"SUCCESS: {len(alert_rules(project))} rules found" in checked.stdout
    tested = run([PROMTOOL, "test", "rules", RULE_TESTS], cwd=project.path)
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test(baked):
    project = baked("local")
    alerts = {rule["alert"] for rule in alert_rules(project)}
    cases = [case for test in yaml.safe_load(project.read(RULE_TESTS))["tests"] for case in test["alert_rule_test"]]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    stays_quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert alerts == fires == stays_quiet
    assert len(alerts) >= 8


def test_the_unit_tests_catch_a_changed_threshold(baked, tmp_path):
    project = baked("local").copy_to(tmp_path)
    rules = project.path / RULES
    rules.write_text(rules.read_text().replace("> 0.2", "> 0.5", 1))
    result = run([PROMTOOL, "test", "rules", RULE_TESTS], cwd=project.path, check=False)
    assert result.returncode != 0 and "AirflowTaskFailureRateHigh" in result.stdout + result.stderr
