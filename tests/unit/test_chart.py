"""charts/gitstage: lint, rendering in both RBAC modes, the generated CRD, strict kubeconform.

helm and kubeconform are the binaries built from the pinned Go modules (tests/cluster/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitstage.resources.crd import custom_resource_definition, render_crd_yaml
from gitstage.resources.v1alpha1 import ModelRegistrySpec
from gitstage.workloads.fetcher_transport import FetcherTransport
from gitstage.workloads.render import Owner, Serving, SourceAccess, render_deployment
from tests.support.chart import (
    CHART,
    ROOT,
    Manifest,
    Rendered,
    helm,
    kubeconform,
    kubernetes_version,
    render,
    schema_dir,
    values_file,
)

NAMESPACED = {"watchNamespaces": ["ml", "ml-staging"]}
# Every optional object and setting on (podMonitor instead of serviceMonitor in PODMONITOR).
EVERYTHING: dict[str, Any] = {
    "commonLabels": {"team": "ml"},
    "webhook": {"enabled": True, "secretName": "hooks", "secretKey": "secret"},
    "caBundle": {"configMapName": "corporate-ca", "key": "bundle.pem", "fetchers": True},
    "proxy": {"https": "http://proxy.corp:3128", "http": "", "noProxy": ".corp"},
    "operator": {
        "logFormat": "json",
        "verbose": False,
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "scratch", "mountPath": "/var/scratch"}],
    },
    "serviceMonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "10s"},
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "gitstage"}},
    "networkPolicy": {
        "enabled": True,
        "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "apiServer": {"cidrs": ["10.0.0.1/32"], "ports": [443, 6443]},
        "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": [{"port": 3128}]}],
    },
}
PODMONITOR = {
    **EVERYTHING,
    "serviceMonitor": {"enabled": False, "interval": "30s", "scrapeTimeout": "10s"},
    "podMonitor": {"enabled": True, "interval": "1m", "scrapeTimeout": "20s"},
}
EXAMPLE = ROOT / "examples" / "modelregistry.yaml"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return schema_dir(tmp_path_factory.mktemp("schemas"))


def operator_role(rendered: Rendered) -> Manifest:
    """The operator's ClusterRole (the aggregated ones are for people)."""
    (role,) = [r for r in rendered.of_kind("ClusterRole") if r["metadata"]["name"] == "gs-gitstage"]
    return role


def container(rendered: Rendered) -> Manifest:
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    (only,) = pod["containers"]
    result: Manifest = only
    return result


@pytest.mark.parametrize(
    "values", [{}, NAMESPACED, EVERYTHING], ids=["cluster-wide", "namespaced", "everything"]
)
def test_helm_lint_strict_is_clean(home: Path, values: dict[str, Any]) -> None:
    result = helm(
        home,
        "lint",
        "--strict",
        "--kube-version",
        kubernetes_version(),
        str(CHART),
        "--values",
        str(values_file(home, values)),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert not re.search(r"\[(WARNING|ERROR)\]", result.stdout + result.stderr)


def test_every_value_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    keys = [(n, line) for n, line in enumerate(lines) if re.match(r"^\s*[A-Za-z][\w.-]*:", line)]
    assert len(keys) > 40
    uncommented = [line for n, line in keys if not lines[n - 1].strip().startswith("#")]
    assert uncommented == []


def _schema_keys(schema: Manifest, prefix: str = "") -> Iterator[str]:
    for name, sub in schema.get("properties", {}).items():
        yield prefix + name
        if sub.get("additionalProperties") is False:
            yield from _schema_keys(sub, f"{prefix}{name}.")


def _value_keys(values: Manifest, schema: Manifest, prefix: str = "") -> Iterator[str]:
    """Keys of values.yaml, down to where the schema stops listing properties."""
    for name, value in values.items():
        yield prefix + name
        sub = schema.get("properties", {}).get(name, {})
        if isinstance(value, dict) and sub.get("additionalProperties") is False:
            yield from _value_keys(value, sub, f"{prefix}{name}.")


def test_the_schema_declares_exactly_the_values() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert sorted(_value_keys(values, schema)) == sorted(_schema_keys(schema))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"watchNamespace": ["ml"]}, "additional properties 'watchNamespace' not allowed"),
        ({"watchNamespaces": ["ML_team"]}, "/watchNamespaces/0"),
        ({"operator": {"logFormat": "xml", "verbose": False}}, "/operator/logFormat"),
        ({"health": {"port": 70000, "path": "/healthz"}}, "/health/port"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        (
            {"tenancy": {"defaultServiceAccount": "ns/admin", "requireServiceAccount": False}},
            "/tenancy/defaultServiceAccount",
        ),
        ({"webhook": {"limits": {"maxConnections": 0}}}, "/webhook/limits/maxConnections"),
        ({"webhook": {"limits": {"headerTimeoutSeconds": 0}}}, "/webhook/limits/headerTimeout"),
    ],
)
def test_the_schema_rejects_bad_values(home: Path, values: Manifest, message: str) -> None:
    result = helm(
        home,
        "template",
        "gs",
        str(CHART),
        "--values",
        str(values_file(home, values)),
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_one_hardened_operator_pod(home: Path) -> None:
    rendered = render(home)
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(rendered)
    security = operator["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # Writable: only emptyDirs, for /tmp and the git mirror cache.
    assert {v["name"]: set(v) for v in pod["volumes"]} == {
        "tmp": {"name", "emptyDir"},
        "mirrors": {"name", "emptyDir"},
    }
    mounts = {m["mountPath"]: m["name"] for m in operator["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/var/cache/gitstage": "mirrors"}
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["GITSTAGE_CACHE_DIR"].startswith("/var/cache/gitstage/")
    assert env["GITSTAGE_FETCHER_IMAGE"] == operator["image"] == "ghcr.io/gitstage/gitstage:0.1.0"
    assert set(operator["resources"]["requests"]) == {"cpu", "memory"}
    assert pod["serviceAccountName"] == rendered.one("ServiceAccount")["metadata"]["name"]


def test_every_listener_binds_the_listen_address(home: Path) -> None:
    everything = {"webhook": EVERYTHING["webhook"], "dashboard": {"enabled": True}}
    for address, host in (("0.0.0.0", "0.0.0.0"), ("::", "[::]")):  # noqa: S104 - the pod's
        args = container(render(home, {**everything, "listenAddress": address}))["args"]
        assert f"--liveness=http://{host}:8081/healthz" in args
        for listener in ("metrics", "webhook", "dashboard"):
            assert f"--{listener}-address={address}" in args
    args = ["template", "gs", str(CHART), "--kube-version", kubernetes_version()]
    bad = {"listenAddress": "0.0.0.0; rm -rf /"}
    result = helm(home, *args, "--values", str(values_file(home, bad)), check=False)
    assert result.returncode != 0
    assert "listenAddress" in result.stderr


def test_liveness_probes_the_endpoint_the_operator_serves(home: Path) -> None:
    operator = container(render(home, {"health": {"port": 9808, "path": "/livez"}}))
    assert "--liveness=http://0.0.0.0:9808/livez" in operator["args"]
    probe = operator["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert (probe["path"], ports[probe["port"]]) == ("/livez", 9808)


def test_json_logs_by_default(home: Path) -> None:
    assert "--log-format=json" in container(render(home))["args"]
    assert (
        "--log-format=plain"
        in container(render(home, {"operator": {"logFormat": "plain"}}))["args"]
    )


NAMESPACED_RULES = [
    {
        "apiGroups": ["gitstage.dev"],
        "resources": ["modelregistries"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": ["gitstage.dev"], "resources": ["modelregistries/status"], "verbs": ["patch"]},
    {
        "apiGroups": ["gitstage.dev"],
        "resources": ["modelregistries/finalizers"],
        "verbs": ["update"],
    },
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
# Every registry served as its own ServiceAccount: the operator writes no Deployment and reads
# no Secret with its own rights.
TENANT_RULES = [
    *NAMESPACED_RULES[:2],
    NAMESPACED_RULES[3],
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


def test_cluster_wide_rbac_is_one_cluster_role(home: Path) -> None:
    rendered = render(home)
    role = operator_role(rendered)
    crds = {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    }
    assert role["rules"] == [*NAMESPACED_RULES, crds]
    binding = rendered.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gs-gitstage", "namespace": "gitstage-system"}
    ]
    assert rendered.of_kind("Role") == rendered.of_kind("RoleBinding") == []
    args = container(rendered)["args"]
    assert "--no-scan" not in args
    assert not [a for a in args if a.startswith("--namespace")]


def registry_verbs(rendered: Rendered) -> list[str]:
    (rule,) = [r for r in operator_role(rendered)["rules"] if r["resources"] == ["modelregistries"]]
    return list(rule["verbs"])


def test_registries_are_patchable_only_for_a_standby_forwarding_a_webhook(home: Path) -> None:
    webhook = {"enabled": True, "secretName": "hooks", "secretKey": "secret"}
    read_only = ["get", "list", "watch"]
    assert registry_verbs(render(home)) == read_only
    assert registry_verbs(render(home, {"webhook": webhook})) == read_only
    assert registry_verbs(render(home, {"replicas": 2})) == read_only
    both = render(home, {"replicas": 2, "webhook": webhook})
    assert registry_verbs(both) == [*read_only, "patch"]  # the requestedAt annotation
    elected = render(home, {"leaderElection": {"enabled": True}, "webhook": webhook})
    assert registry_verbs(elected) == [*read_only, "patch"]


def test_namespaced_rbac_is_a_role_per_watched_namespace(home: Path) -> None:
    rendered = render(home, NAMESPACED)
    assert rendered.of_kind("ClusterRoleBinding") == []
    # Only the aggregated roles, for people: nothing binds them to the operator.
    aggregated = [r["metadata"]["name"] for r in rendered.of_kind("ClusterRole")]
    assert aggregated == ["gs-gitstage-view", "gs-gitstage-edit"]
    roles = {r["metadata"]["namespace"]: r for r in rendered.of_kind("Role")}
    assert set(roles) == {"ml", "ml-staging"}
    assert all(r["rules"] == NAMESPACED_RULES for r in roles.values())
    for binding in rendered.of_kind("RoleBinding"):
        assert binding["metadata"]["namespace"] in roles
        assert binding["subjects"][0]["namespace"] == "gitstage-system"
    args = container(rendered)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=ml",
        "--namespace=ml-staging",
    ]
    assert "--no-scan" in args


@pytest.mark.parametrize(
    "tenancy",
    [
        {"requireServiceAccount": True, "defaultServiceAccount": ""},
        {"requireServiceAccount": False, "defaultServiceAccount": "gitstage-tenant"},
    ],
)
def test_tenancy_shrinks_the_operators_rbac(home: Path, tenancy: dict[str, Any]) -> None:
    values = {
        "tenancy": tenancy,
        "podPolicy": {
            "allowPrivileged": False,
            "allowHostNamespaces": True,
            "allowHostPath": False,
        },
        "fetcher": {"image": "", "allowedImages": ["registry.example/ml/*"]},
    }
    rendered = render(home, values)
    rules = operator_role(rendered)["rules"]
    assert rules[:-1] == TENANT_RULES
    writes = [r for r in rules if set(r["verbs"]) & {"create", "patch", "update", "delete"}]
    assert {res for r in writes for res in r["resources"]} == {"modelregistries/status", "events"}
    args = container(rendered)["args"]
    assert ("--require-service-account" in args) is tenancy["requireServiceAccount"]
    default = tenancy["defaultServiceAccount"]
    assert ("--default-service-account=gitstage-tenant" in args) is bool(default)
    assert "--allow-host-namespaces" in args
    assert "--allow-privileged" not in args
    assert "--allow-host-path" not in args
    assert "--allowed-fetcher-image=registry.example/ml/*" in args


def test_the_chart_crd_is_the_generated_one(home: Path) -> None:
    assert (CHART / "files" / "modelregistries.gitstage.dev.yaml").read_text() == (
        render_crd_yaml()
    ), "charts/gitstage/files drifted: run `gitstage crds -o charts/gitstage/files`"
    crd = render(home).one("CustomResourceDefinition")
    assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"].pop("labels")["app.kubernetes.io/managed-by"] == "Helm"
    assert crd == custom_resource_definition()


def test_crds_can_be_left_out_or_not_kept(home: Path) -> None:
    assert (
        render(home, {"crds": {"enabled": False, "keep": True}}).of_kind("CustomResourceDefinition")
        == []
    )
    crd = render(home, {"crds": {"enabled": True, "keep": False}}).one("CustomResourceDefinition")
    assert "annotations" not in crd["metadata"]


def test_the_service_exposes_the_configured_ports(home: Path) -> None:
    ports = {
        "metrics": {"name": "prom", "port": 9090, "targetPort": 8088},
        "webhook": {"name": "hooks", "port": 8443, "targetPort": 9444},
    }
    webhook = {"enabled": True, "secretName": "hook-secrets", "secretKey": "lines"}
    values = {"service": {"enabled": True, "type": "ClusterIP", "ports": ports}}
    rendered = render(home, {**values, "webhook": webhook})
    service = rendered.one("Service")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("prom", 9090, "prom"),
        ("hooks", 8443, "hooks"),
    ]
    declared = {p["name"]: p["containerPort"] for p in container(rendered)["ports"]}
    assert (declared["prom"], declared["hooks"]) == (8088, 9444)
    assert service["spec"]["selector"].items() <= (
        rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )
    disabled = {"service": {"enabled": False, "type": "ClusterIP", "ports": ports}}
    assert render(home, disabled).of_kind("Service") == []


def test_the_operator_serves_metrics_and_webhooks_on_the_declared_ports(home: Path) -> None:
    plain = render(home)
    args = container(plain)["args"]
    assert "--metrics-port=8080" in args
    assert not [a for a in args if a.startswith("--webhook")]
    assert [p["name"] for p in plain.one("Service")["spec"]["ports"]] == ["metrics"]

    webhook = {"enabled": True, "secretName": "hook-secrets", "secretKey": "lines"}
    rendered = render(home, {"webhook": webhook})
    operator = container(rendered)
    assert "--webhook-port=9443" in operator["args"]
    assert "--webhook-secret-file=/etc/gitstage/webhook/lines" in operator["args"]
    [mount] = [m for m in operator["volumeMounts"] if m["name"] == "webhook-secret"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/gitstage/webhook", True)
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "webhook-secret"]
    assert volume["secret"]["secretName"] == "hook-secrets"
    limits = [a for a in operator["args"] if a.startswith("--webhook-") and "timeout" in a]
    assert limits == [
        "--webhook-header-timeout=10",
        "--webhook-body-timeout=10",
        "--webhook-idle-timeout=30",
    ]
    assert "--webhook-max-connections=256" in operator["args"]
    assert "--webhook-max-header-bytes=16384" in operator["args"]


def test_the_webhook_limits_reach_the_operator_as_written(home: Path) -> None:
    limits = {
        "headerTimeoutSeconds": 2.5,
        "bodyTimeoutSeconds": 3600,
        "idleTimeoutSeconds": 5,
        "maxConnections": 65535,
        "maxHeaderBytes": 1048576,  # no 1.048576e+06
    }
    webhook = {"enabled": True, "secretName": "hook-secrets", "limits": limits}
    args = container(render(home, {"webhook": webhook}))["args"]
    assert [a for a in args if a.split("=")[0] in LIMIT_FLAGS] == [
        "--webhook-header-timeout=2.5",
        "--webhook-body-timeout=3600",
        "--webhook-idle-timeout=5",
        "--webhook-max-connections=65535",
        "--webhook-max-header-bytes=1048576",
    ]


LIMIT_FLAGS = {
    "--webhook-header-timeout",
    "--webhook-body-timeout",
    "--webhook-idle-timeout",
    "--webhook-max-connections",
    "--webhook-max-header-bytes",
}


DASHBOARD = {
    "enabled": True,
    "namespaces": ["ml"],
    "auth": {"tokenSecretName": "dash", "tokenSecretKey": "t", "userHeader": "X-Auth-Request-User"},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "models.example.com",
        "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/"},
        "tlsSecretName": "models-tls",
    },
}


def test_the_dashboard_is_off_by_default(home: Path) -> None:
    plain = render(home)
    assert not [a for a in container(plain)["args"] if a.startswith("--dashboard")]
    assert plain.of_kind("Ingress") == []
    assert [p["name"] for p in plain.one("Service")["spec"]["ports"]] == ["metrics"]


def test_the_dashboard_its_auth_service_port_and_ingress(home: Path) -> None:
    rendered = render(home, {"dashboard": DASHBOARD})
    operator = container(rendered)
    assert [a for a in operator["args"] if a.startswith("--dashboard")] == [
        "--dashboard-port=8090",
        "--dashboard-address=0.0.0.0",
        "--dashboard-token-file=/etc/gitstage/dashboard/t",
        "--dashboard-user-header=X-Auth-Request-User",
        "--dashboard-namespace=ml",
    ]
    assert {"name": "dashboard", "containerPort": 8090, "protocol": "TCP"} in operator["ports"]
    [mount] = [m for m in operator["volumeMounts"] if m["name"] == "dashboard-token"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/gitstage/dashboard", True)
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "dashboard-token"]
    assert volume["secret"]["secretName"] == "dash"
    ports = rendered.one("Service")["spec"]["ports"]
    assert ("dashboard", 8090, "dashboard") in [
        (p["name"], p["port"], p["targetPort"]) for p in ports
    ]
    ingress = rendered.one("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["models.example.com"], "secretName": "models-tls"}]
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert (rule["host"], backend["port"]["name"]) == ("models.example.com", "dashboard")
    assert backend["name"] == rendered.one("Service")["metadata"]["name"]


def test_a_dashboard_ingress_needs_a_host(home: Path) -> None:
    values = {"dashboard": {**DASHBOARD, "ingress": {**DASHBOARD["ingress"], "host": ""}}}
    args = ["template", "gs", str(CHART), "--kube-version", kubernetes_version()]
    result = helm(home, *args, "--values", str(values_file(home, values)), check=False)
    assert result.returncode != 0
    assert "dashboard.ingress.enabled needs dashboard.ingress.host" in result.stderr


def test_a_dashboard_ingress_with_nothing_to_authenticate_readers_is_refused(home: Path) -> None:
    open_ingress = {**DASHBOARD["ingress"], "annotations": {}}
    anonymous = {**DASHBOARD, "auth": {"tokenSecretName": "", "userHeader": ""}}
    args = ["template", "gs", str(CHART), "--kube-version", kubernetes_version()]
    values = {"dashboard": {**anonymous, "ingress": open_ingress}}
    result = helm(home, *args, "--values", str(values_file(home, values)), check=False)
    assert result.returncode != 0
    assert "nothing to authenticate readers" in result.stderr
    # Any one of the three will do: a token, a trusted proxy's header, the Ingress's own auth.
    for auth, ingress_annotations in (
        ({"tokenSecretName": "dash"}, {}),
        ({"userHeader": "X-Auth-Request-User"}, {}),
        ({}, DASHBOARD["ingress"]["annotations"]),
    ):
        values = {
            "dashboard": {
                **anonymous,
                "auth": {**anonymous["auth"], **auth},
                "ingress": {**open_ingress, "annotations": ingress_annotations},
            }
        }
        assert render(home, values).one("Ingress")["spec"]["rules"][0]["host"]


def test_a_webhook_without_its_secret_is_refused(home: Path) -> None:
    values = {"webhook": {"enabled": True, "secretName": "", "secretKey": "secret"}}
    args = ["template", "gs", str(CHART), "--kube-version", kubernetes_version()]
    result = helm(home, *args, "--values", str(values_file(home, values)), check=False)
    assert result.returncode != 0
    assert "webhook.enabled needs webhook.secretName" in result.stderr


def test_the_example_is_a_valid_spec() -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    assert example["kind"] == "ModelRegistry"
    spec = ModelRegistrySpec.model_validate(example["spec"])
    assert spec.deployments[0].stage == "prod"


def operator_deployment() -> Manifest:
    """A Deployment as the operator renders it, fetcher init container included."""
    spec = ModelRegistrySpec.model_validate(yaml.safe_load(EXAMPLE.read_text())["spec"])
    serving = Serving("churn", "v1.0.0", "a" * 40, "prod", "churn#prod#1", "2026-01-01T00:00:00Z")
    source = SourceAccess(spec.source.url, "registry-auth")
    owner = Owner("churn", "ml", "5f0c6c4e-0000-4000-8000-000000000000")
    transport = FetcherTransport("corporate-ca", "bundle.pem", (("HTTPS_PROXY", "http://p:3128"),))
    return render_deployment(
        owner, spec.deployments[0], serving, source, "gitstage:0.1.0", transport=transport
    )


@pytest.mark.parametrize(
    "values",
    [{}, NAMESPACED, EVERYTHING, PODMONITOR, {"dashboard": DASHBOARD}],
    ids=["cluster-wide", "namespaced", "everything", "podmonitor", "dashboard"],
)
def test_kubeconform_strict_accepts_everything_rendered(
    home: Path, schemas: Path, values: dict[str, Any]
) -> None:
    stream = "\n---\n".join(
        [render(home, values).text, EXAMPLE.read_text(), yaml.safe_dump(operator_deployment())]
    )
    result = kubeconform(schemas, stream)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"Valid: (\d+), Invalid: 0, Errors: 0, Skipped: 0", result.stdout)
    assert summary is not None, result.stdout
    assert int(summary.group(1)) == len(render(home, values).objects) + 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["spec"]["template"]["spec"].update(hostPID="yes"),
            "/spec/template/spec/hostPID",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(securityContxt={}),
            "additional properties 'securityContxt' not allowed",
        ),
        (lambda d: d["spec"].update(replicas="1"), "/spec/replicas"),
    ],
)
def test_kubeconform_rejects_what_the_api_server_would(
    home: Path, schemas: Path, mutate: Any, message: str
) -> None:
    deployment = render(home).one("Deployment")
    mutate(deployment)
    result = kubeconform(schemas, yaml.safe_dump(deployment))
    assert result.returncode == 1
    assert message in result.stdout


def test_kubeconform_rejects_a_mistyped_model_registry(schemas: Path) -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    example["spec"]["source"]["secretref"] = {"name": "x"}
    result = kubeconform(schemas, yaml.safe_dump(example))
    assert result.returncode == 1
    assert "additional properties 'secretref' not allowed" in result.stdout


def lease_of(rendered: Rendered) -> tuple[str, list[str]]:
    """The Lease the operator elects on, and the names its Role lets it get and update."""
    env = {e["name"]: e.get("value") for e in container(rendered)["env"]}
    (role,) = [r for r in rendered.of_kind("Role") if r["metadata"]["name"].endswith("election")]
    return env["GITSTAGE_LEADER_ELECTION_ID"], role["rules"][1]["resourceNames"]


def test_two_releases_in_one_namespace_elect_on_their_own_leases(home: Path) -> None:
    team_a = lease_of(render(home, {"replicas": 2}, release="team-a"))
    team_b = lease_of(render(home, {"replicas": 2}, release="team-b"))
    assert team_a == ("team-a-gitstage-operator", ["team-a-gitstage-operator"])
    assert team_b == ("team-b-gitstage-operator", ["team-b-gitstage-operator"])
    # A release named gitstage keeps the operator's default Lease: an upgrade changes no leader.
    assert lease_of(render(home, {"replicas": 2}, release="gitstage")) == (
        "gitstage-operator",
        ["gitstage-operator"],
    )


def test_two_replicas_elect_a_leader_on_a_lease(home: Path) -> None:
    single = render(home)
    assert single.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in container(single)["args"]
    assert single.of_kind("PodDisruptionBudget") == []
    assert [r for r in single.of_kind("Role") if "leader" in r["metadata"]["name"]] == []
    rendered = render(home, {"replicas": 2})
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    operator = container(rendered)
    assert "--leader-elect" in operator["args"]
    env = {
        e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", e.get("value"))
        for e in operator["env"]
    }
    assert (env["POD_NAME"], env["POD_NAMESPACE"]) == ("metadata.name", "metadata.namespace")
    assert env["GITSTAGE_LEADER_ELECTION_ID"] == "gs-gitstage-operator"  # one Lease per release
    (role,) = [
        r for r in rendered.of_kind("Role") if r["metadata"]["name"].endswith("leader-election")
    ]
    assert role["metadata"]["namespace"] == "gitstage-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["gs-gitstage-operator"],
            "verbs": ["get", "update"],
        },
    ]
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert "topologySpreadConstraints" not in single.one("Deployment")["spec"]["template"]["spec"]
    budget = rendered.one("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert (
        budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    )
