"""The chart's observability and network objects: ServiceMonitor, PodMonitor, the PrometheusRule
(promtool's rule checks and unit tests), the Grafana dashboard, the NetworkPolicy, readiness,
the CA bundle and proxy, extra volumes, aggregated roles and common labels.

Every query of the dashboard and the alerts must read series the operator exports: they are
checked against the catalog of its /metrics (tests/support/exported_metrics.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitstage.operator.settings import OperatorSettings
from gitstage.workloads.fetcher_transport import FetcherTransport
from tests.support.chart import (
    CHART,
    ROOT,
    Manifest,
    Rendered,
    helm,
    kubernetes_version,
    render,
    values_file,
)
from tests.support.exported_metrics import catalog
from tests.support.promql import LABEL_VALUES, grafana_substituted, parse
from tests.support.promtool import promtool
from tests.support.tls import LoopbackCa
from tests.unit.test_chart import EVERYTHING, PODMONITOR, container

ALERTS_TEST = ROOT / "tests" / "unit" / "prometheus" / "alerts-test.yaml"
DASHBOARD = CHART / "files" / "grafana-dashboard.json"
# Labels Prometheus adds to every scraped series (the target's), not the operator.
TARGET_LABELS = frozenset({"job", "instance"})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="module")
def exported() -> dict[str, frozenset[str]]:
    return catalog()


def pod_spec(rendered: Rendered) -> Manifest:
    spec: Manifest = rendered.one("Deployment")["spec"]["template"]["spec"]
    return spec


def ports(rendered: Rendered) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(rendered)["ports"]}


def unknown_references(expr: str, exported: dict[str, frozenset[str]]) -> list[str]:
    """What `expr` reads that the operator does not export: metrics, matcher and grouping labels."""
    query = parse(expr)
    problems = [r.metric for r in query.references if r.metric not in exported]
    carried = set(TARGET_LABELS)
    for reference in query.references:
        labels = exported.get(reference.metric, frozenset())
        carried |= labels
        unknown = reference.labels - labels - TARGET_LABELS
        problems += [f"{reference.metric}{{{label}}}" for label in unknown]
    problems += [f"by ({label})" for label in query.grouping - carried]
    if not query.references:
        problems.append(f"no metric in {expr!r}")
    return problems


# --- Prometheus ---------------------------------------------------------------------------


def rule_groups(rendered: Rendered) -> list[Manifest]:
    groups: list[Manifest] = rendered.one("PrometheusRule")["spec"]["groups"]
    return groups


def test_the_alert_rules_pass_promtools_checks_and_unit_tests(home: Path) -> None:
    rendered = render(home, {"prometheusRule": {"enabled": True}})
    rules = home / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(rendered)}))
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
    shutil.copy(ALERTS_TEST, home / ALERTS_TEST.name)
    tested = promtool("test", "rules", ALERTS_TEST.name, cwd=home)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_alerts_read_only_exported_series(
    home: Path, exported: dict[str, frozenset[str]]
) -> None:
    rules = rule_groups(render(home, {"prometheusRule": {"enabled": True}}))[0]["rules"]
    assert [r["alert"] for r in rules] == [
        "GitstagePollFailing",
        "GitstageRolloutFailed",
        "GitstageRolloutStalled",
        "GitstagePolicyViolation",
        "GitstageRegistryNotReady",
    ]
    assert {r["alert"]: unknown_references(r["expr"], exported) for r in rules} == {
        r["alert"]: [] for r in rules
    }
    # The unit tests' input series are exported ones too.
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    inputs = [series["series"] for test in tests for series in test["input_series"]]
    assert [s for s in inputs if unknown_references(s, exported)] == []


def test_thresholds_and_labels_come_from_the_values(home: Path) -> None:
    values = {
        "prometheusRule": {
            "enabled": True,
            "labels": {"release": "prom"},
            "alertLabels": {"severity": "critical", "team": "ml"},
            "for": {
                "pollFailing": "1h",
                "rolloutFailed": "2m",
                "rolloutStalled": "2h",
                "registryNotReady": "45m",
            },
            "policyViolationWindow": "3h",
        }
    }
    rendered = render(home, values)
    assert rendered.one("PrometheusRule")["metadata"]["labels"]["release"] == "prom"
    rules = {r["alert"]: r for r in rule_groups(rendered)[0]["rules"]}
    assert {name: rule.get("for") for name, rule in rules.items()} == {
        "GitstagePollFailing": "1h",
        "GitstageRolloutFailed": "2m",
        "GitstageRolloutStalled": "2h",
        "GitstagePolicyViolation": None,
        "GitstageRegistryNotReady": "45m",
    }
    assert "[3h]" in rules["GitstagePolicyViolation"]["expr"]
    assert all(r["labels"] == {"severity": "critical", "team": "ml"} for r in rules.values())


def test_the_service_monitor_scrapes_the_services_metrics_port(home: Path) -> None:
    rendered = render(home, EVERYTHING)
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["gitstage-system"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == (
        "/metrics",
        "30s",
        "10s",
    )
    assert endpoint["honorLabels"] is True  # the series' namespace is the ModelRegistry's
    assert rendered.of_kind("PodMonitor") == []


def test_the_pod_monitor_scrapes_the_pods_metrics_port(home: Path) -> None:
    rendered = render(home, PODMONITOR)
    monitor = rendered.one("PodMonitor")
    template_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= template_labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert ports(rendered)[endpoint["port"]] == 8080
    assert (endpoint["interval"], endpoint["scrapeTimeout"], endpoint["honorLabels"]) == (
        "1m",
        "20s",
        True,
    )
    assert rendered.of_kind("ServiceMonitor") == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "serviceMonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "10s"},
                "podMonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "10s"},
            },
            "would scrape the operator twice",
        ),
        (
            {
                "serviceMonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "10s"},
                "service": {"enabled": False},
            },
            "serviceMonitor.enabled needs service.enabled",
        ),
        (
            {"prometheusRule": {"enabled": True, "for": {"pollFailing": "15 minutes"}}},
            "/prometheusRule/for/pollFailing",
        ),
        ({"networkPolicy": {"git": {"cidrs": ["git.example.com"]}}}, "/networkPolicy/git/cidrs/0"),
        ({"proxy": {"https": "proxy.corp:3128"}}, "/proxy/https"),
        ({"caBundle": {"configMapName": "Corporate CA"}}, "/caBundle/configMapName"),
    ],
)
def test_inconsistent_monitoring_values_are_refused(
    home: Path, values: dict[str, Any], message: str
) -> None:
    args = ["template", "gs", str(CHART), "--kube-version", kubernetes_version()]
    result = helm(home, *args, "--values", str(values_file(home, values)), check=False)
    assert result.returncode != 0
    assert message in result.stderr


# --- Grafana ------------------------------------------------------------------------------


def dashboard_queries(dashboard: Manifest) -> list[str]:
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_dashboard_is_shipped_as_a_sidecar_config_map(home: Path) -> None:
    rendered = render(home, EVERYTHING)
    (config_map,) = [
        c
        for c in rendered.of_kind("ConfigMap")
        if c["metadata"]["name"] == "gs-gitstage-grafana-dashboard"
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "gitstage"}
    assert json.loads(config_map["data"]["gitstage.json"]) == json.loads(DASHBOARD.read_text())
    assert render(home).of_kind("ConfigMap") == []


def test_the_dashboard_queries_only_exported_series(exported: dict[str, frozenset[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 15
    assert {q: unknown_references(grafana_substituted(q), exported) for q in queries} == {
        q: [] for q in queries
    }
    variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for variable in variables:
        found = LABEL_VALUES.fullmatch(variable["query"]["query"])
        assert found is not None, variable["name"]
        metric, label = found.groups()
        assert label in exported[metric] | TARGET_LABELS, variable["name"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert {p["datasource"]["uid"] for p in panels} == {"${datasource}"}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_dashboard_queries_are_valid_promql(home: Path) -> None:
    """promtool parses each query as a recording rule's expression."""
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    rules = [
        {"record": f"gitstage:dashboard_query:{n}", "expr": grafana_substituted(q)}
        for n, q in enumerate(queries)
    ]
    path = home / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout


# --- The operator pod ---------------------------------------------------------------------


def test_readiness_probes_the_metrics_listener(home: Path) -> None:
    rendered = render(home, {"health": {"port": 8081, "path": "/healthz", "readinessProbe": {}}})
    operator = container(rendered)
    probe = operator["readinessProbe"]
    assert probe["httpGet"]["path"] == "/readyz"
    assert f"--metrics-port={ports(rendered)[probe['httpGet']['port']]}" in operator["args"]
    defaults = container(render(home))["readinessProbe"]
    assert (defaults["periodSeconds"], defaults["failureThreshold"]) == (10, 3)


def test_every_object_carries_the_common_labels(home: Path) -> None:
    rendered = render(home, EVERYTHING)
    assert all(o["metadata"]["labels"]["team"] == "ml" for o in rendered.objects)
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "ml"
    assert "team" not in deployment["spec"]["selector"]["matchLabels"]  # selectors never change


def test_extra_volumes_mounts_and_env(home: Path) -> None:
    rendered = render(home, EVERYTHING)
    operator = container(rendered)
    assert {"name": "TZ", "value": "UTC"} in operator["env"]
    assert {"name": "scratch", "emptyDir": {}} in pod_spec(rendered)["volumes"]
    assert {"name": "scratch", "mountPath": "/var/scratch"} in operator["volumeMounts"]


def chart_env(operator: Manifest, service_host: str) -> dict[str, str]:
    """The container's variables as the kubelet gives them (Service variables expanded)."""
    return {
        e["name"]: e["value"].replace("$(KUBERNETES_SERVICE_HOST)", service_host)
        for e in operator["env"]
        if "value" in e
    }


def test_the_ca_bundle_and_the_proxy_reach_the_operator_and_its_fetchers(
    home: Path, tmp_path: Path
) -> None:
    rendered = render(home, EVERYTHING)
    operator = container(rendered)
    env = chart_env(operator, "10.96.0.1")
    mounts = {m["name"]: m for m in operator["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(rendered)["volumes"]}
    bundle = Path(env["GITSTAGE_CA_BUNDLE"])
    assert mounts["ca-bundle"]["mountPath"] == str(bundle.parent)
    assert volumes["ca-bundle"]["configMap"] == {
        "name": "corporate-ca",
        "items": [{"key": "bundle.pem", "path": bundle.name}],
    }
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://proxy.corp:3128"
    assert env["NO_PROXY"] == env["no_proxy"] == "10.96.0.1,.corp"  # the API server direct
    assert "HTTP_PROXY" not in env
    # The operator reads exactly these variables (the bundle at a path of this machine).
    ca = LoopbackCa.create(tmp_path / "ca")
    settings = OperatorSettings.from_env({**env, "GITSTAGE_CA_BUNDLE": str(ca.bundle)})
    proxies = tuple(
        (name, env[name]) for name in ("HTTPS_PROXY", "NO_PROXY", "https_proxy", "no_proxy")
    )
    assert settings.fetcher_transport == FetcherTransport("corporate-ca", "bundle.pem", proxies)


def test_the_fetchers_can_be_left_without_the_bundle(home: Path) -> None:
    values = {"caBundle": {"configMapName": "corporate-ca", "key": "ca.crt", "fetchers": False}}
    env = chart_env(container(render(home, values)), "10.96.0.1")
    assert env["GITSTAGE_CA_BUNDLE"] == "/etc/gitstage/ca/ca.crt"
    assert "GITSTAGE_FETCHER_CA_CONFIGMAP" not in env
    plain = chart_env(container(render(home)), "10.96.0.1")
    assert not {"GITSTAGE_CA_BUNDLE", "HTTPS_PROXY", "NO_PROXY"} & set(plain)


def test_the_network_policy_opens_only_the_operators_ports(home: Path) -> None:
    rendered = render(home, EVERYTHING)
    policy = rendered.one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= (
        rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    opened = {rule["ports"][0]["port"]: rule.get("from") for rule in policy["ingress"]}
    assert set(opened) == set(ports(rendered).values())  # health, metrics, webhook
    assert opened[ports(rendered)["metrics"]] == EVERYTHING["networkPolicy"]["metricsFrom"]
    assert opened[ports(rendered)["health"]] is None
    egress = policy["egress"]
    assert [p["port"] for p in egress[0]["ports"]] == [53, 53]
    assert egress[1] == {
        "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
    }
    assert [p["port"] for p in egress[2]["ports"]] == [443, 22]
    assert "to" not in egress[2]  # any git server
    assert egress[3] == EVERYTHING["networkPolicy"]["extraEgress"][0]
    without_webhook = render(home, {"networkPolicy": {"enabled": True}})
    ingress = without_webhook.one("NetworkPolicy")["spec"]["ingress"]
    assert [rule["ports"][0]["port"] for rule in ingress] == [8081, 8080]
    assert render(home).of_kind("NetworkPolicy") == []


def test_the_network_policy_opens_the_dashboard_port_to_the_peers_named(home: Path) -> None:
    proxy = [{"podSelector": {"matchLabels": {"app": "oauth2-proxy"}}}]
    values = {
        "dashboard": {"enabled": True, "auth": {"userHeader": "X-Auth-Request-User"}},
        "networkPolicy": {"enabled": True, "dashboardFrom": proxy},
    }
    rendered = render(home, values)
    ingress = rendered.one("NetworkPolicy")["spec"]["ingress"]
    opened = {rule["ports"][0]["port"]: rule.get("from") for rule in ingress}
    assert set(opened) == set(ports(rendered).values())  # health, metrics, dashboard
    assert opened[ports(rendered)["dashboard"]] == proxy
    anyone = render(home, {"dashboard": {"enabled": True}, "networkPolicy": {"enabled": True}})
    ingress = anyone.one("NetworkPolicy")["spec"]["ingress"]
    assert ingress[-1] == {"ports": [{"port": 8090, "protocol": "TCP"}]}


def test_aggregated_roles_extend_view_and_edit_with_model_registries(home: Path) -> None:
    rendered = render(home)
    roles = {r["metadata"]["name"]: r for r in rendered.of_kind("ClusterRole")}
    view, edit = roles["gs-gitstage-view"], roles["gs-gitstage-edit"]
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert {k for k, v in view["metadata"]["labels"].items() if k.startswith(aggregate)} == {
        f"{aggregate}view",
        f"{aggregate}edit",
        f"{aggregate}admin",
    }
    assert {k for k in edit["metadata"]["labels"] if k.startswith(aggregate)} == {
        f"{aggregate}edit",
        f"{aggregate}admin",
    }
    assert view["rules"] == [
        {
            "apiGroups": ["gitstage.dev"],
            "resources": ["modelregistries", "modelregistries/status"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    assert set(edit["rules"][0]["verbs"]) == {
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    }
    bound = {b["roleRef"]["name"] for b in rendered.of_kind("ClusterRoleBinding")}
    assert bound == {"gs-gitstage"}  # nothing binds the aggregated roles to the operator
    off = render(home, {"rbac": {"create": True, "aggregateRoles": False}})
    assert [r["metadata"]["name"] for r in off.of_kind("ClusterRole")] == ["gs-gitstage"]
