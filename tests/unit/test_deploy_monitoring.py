"""deploy/prometheus/alerts.yaml and deploy/grafana/connector.json: valid for the real tools
(promtool checks the rules, runs their unit tests and parses every dashboard query), and every
metric they use is one the daemon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from connector.service.metrics import Metrics
from tests.support.paths import REPO
from tests.support.servers import missing_server

PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "connector.json"

# Added by other parts of issue 17 (helpers "logs" and "progress"); once their branches are
# merged the daemon's registry has them, and this set can go.
# Prometheus's own series about a scrape.
PROMETHEUS_OWN = {"up"}
METRIC = re.compile(r"\b(connector_[a-z0-9_]+|up)\b(?!\s*\()")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing_server("promtool is not installed (Debian's prometheus)")
    return found


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def exported_names() -> set[str]:
    """Every series name the daemon's registry can expose (a labelled metric has no sample
    before its first use, so the names come from the families and their types)."""
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_sum", "_count", "_created"],
        "summary": ["_sum", "_count", "_created"],
        "gauge": [""],
    }
    names = set()
    family: Metric
    for family in Metrics().registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def test_promtool_checks_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS), cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = run_promtool("test", "rules", "alerts.test.yaml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_would_catch_a_changed_rule(tmp_path: Path) -> None:
    """promtool's rule tests do fail: a threshold changed makes the held-back case fail."""
    shutil.copy(PROMETHEUS / "alerts.test.yaml", tmp_path / "alerts.test.yaml")
    text = ALERTS.read_text(encoding="utf-8")
    assert "(connector_held_back) > 0" in text
    (tmp_path / "alerts.yaml").write_text(text.replace("(connector_held_back) > 0", "> 100"))
    result = run_promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "ConnectorHeldBack" in result.stdout + result.stderr


def test_the_alerts_asked_for_each_with_a_summary_and_a_runbook() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    watched = {
        "ConnectorHeldBack": "connector_held_back",
        "ConnectorDegraded": "connector_degraded",
        "ConnectorNoSuccessfulCycle": "connector_last_success_timestamp_seconds",
        "ConnectorSourceFailed": "connector_source_up",
        "ConnectorSlowChanges": "connector_change_latency_seconds_bucket",
        "ConnectorConfigRejected": "connector_config_rejected",
        "ConnectorDown": "up",
    }
    assert set(rules) == set(watched)
    for name, metric in watched.items():
        rule = rules[name]
        assert metric in METRIC.findall(rule["expr"]), name
        assert rule["labels"]["severity"] in ("warning", "critical")
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert re.search(
            r"`connector (--config \S+ )?(status|approve|explain|check|plan)",
            annotations["runbook"],
        ), name


def test_the_dashboard_is_importable_grafana_json() -> None:
    board = dashboard()
    assert board["title"] and board["uid"] and board["schemaVersion"] >= 36
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"


@pytest.mark.parametrize(
    "metric",
    [
        "connector_cycles_total",
        "connector_operations_total",
        "connector_held_back",
        "connector_degraded",
        "connector_last_success_timestamp_seconds",
        "connector_cycle_duration_seconds_bucket",
        "connector_users_in_scope",
        "connector_persons_excluded",
        "connector_source_up",
        "connector_cycle_operations_planned",
        "connector_cycle_operations_done",
    ],
)
def test_the_dashboard_shows(metric: str) -> None:
    assert any(metric in METRIC.findall(query) for query in dashboard_queries())


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """Each query, its template variables filled in, as a recording rule promtool checks."""
    queries = [q.replace("$target", ".*").replace("$job", "connector") for q in dashboard_queries()]
    assert all("$" not in q for q in queries)
    rules = [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_used_is_one_the_daemon_exports() -> None:
    used = {name for q in dashboard_queries() for name in METRIC.findall(q)}
    used |= {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    known = exported_names() | PROMETHEUS_OWN
    assert used - known == set()
    # the check itself: a misspelt name is caught, a counter is known by its _total
    assert "connector_cycles_total" in known and "connector_cycles" not in known
    assert "connector_helds_back" not in known
