"""The operator's CA bundle and proxy settings reach the fetcher init containers it renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitstage.operator.settings import OperatorSettings, SettingsError
from gitstage.workloads.fetcher_transport import FetcherTransport
from gitstage.workloads.render import ANNOTATION_DIGEST, FETCHER_NAME, Manifest, render_deployment
from tests.support.tls import LoopbackCa
from tests.unit.test_render import OWNER, SOURCE, binding, serving

CORPORATE = FetcherTransport(
    ca_config_map="corporate-ca",
    ca_key="bundle.pem",
    proxy_env=(("HTTPS_PROXY", "http://proxy.corp:3128"), ("NO_PROXY", "10.96.0.1,.svc")),
)


def render(transport: FetcherTransport | None) -> Manifest:
    return render_deployment(OWNER, binding(), serving(), SOURCE, "img:1", transport=transport)


def pod(manifest: Manifest) -> Manifest:
    spec: Manifest = manifest["spec"]["template"]["spec"]
    return spec


def test_the_fetcher_gets_the_proxy_and_the_bundle_from_its_own_namespace() -> None:
    spec = pod(render(CORPORATE))
    (fetcher,) = [c for c in spec["initContainers"] if c["name"] == FETCHER_NAME]
    env = {e["name"]: e.get("value") for e in fetcher["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy.corp:3128"
    assert env["NO_PROXY"] == "10.96.0.1,.svc"
    assert env["GITSTAGE_CA_BUNDLE"] == "/etc/gitstage/ca/ca.crt"
    mounts = {m["mountPath"]: m for m in fetcher["volumeMounts"]}
    assert mounts["/etc/gitstage/ca"] == {
        "name": "gitstage-ca",
        "mountPath": "/etc/gitstage/ca",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["gitstage-ca"]["configMap"] == {
        "name": "corporate-ca",
        "items": [{"key": "bundle.pem", "path": "ca.crt"}],
    }
    # The serving containers get neither: only the fetcher talks to git and DVC stores.
    (server,) = spec["containers"]
    assert "env" not in server
    assert [m["name"] for m in server["volumeMounts"]] == ["gitstage-model"]


def test_without_transport_settings_the_manifest_and_its_digest_do_not_change() -> None:
    plain = render(None)
    assert render(FetcherTransport()) == plain
    proxied = render(FetcherTransport(proxy_env=(("HTTPS_PROXY", "http://p:3128"),)))
    digest = plain["metadata"]["annotations"][ANNOTATION_DIGEST]
    assert proxied["metadata"]["annotations"][ANNOTATION_DIGEST] != digest
    assert "volumes" not in {k for k, v in pod(proxied).items() if v != pod(plain)[k]}


def test_the_operator_reads_its_transport_settings(tmp_path: Path) -> None:
    ca = LoopbackCa.create(tmp_path)
    settings = OperatorSettings.from_env(
        {
            "GITSTAGE_CA_BUNDLE": str(ca.bundle),
            "GITSTAGE_FETCHER_CA_CONFIGMAP": "corporate-ca",
            "GITSTAGE_FETCHER_CA_KEY": "bundle.pem",
            "HTTPS_PROXY": "http://proxy.corp:3128",
            "NO_PROXY": "10.96.0.1,.svc",
            "HTTP_PROXY": "",
        }
    )
    assert settings.fetcher_transport == CORPORATE
    assert OperatorSettings.from_env({}).fetcher_transport == FetcherTransport()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GITSTAGE_CA_BUNDLE": "/no/such/ca.pem"},
            "GITSTAGE_CA_BUNDLE=/no/such/ca.pem cannot be read: No such file or directory",
        ),
        (
            {"GITSTAGE_FETCHER_CA_CONFIGMAP": "Corporate CA"},
            "GITSTAGE_FETCHER_CA_CONFIGMAP 'Corporate CA' is not a ConfigMap name",
        ),
        (
            {"GITSTAGE_FETCHER_CA_CONFIGMAP": "ca", "GITSTAGE_FETCHER_CA_KEY": "../ca"},
            "GITSTAGE_FETCHER_CA_KEY '../ca' is not a ConfigMap key",
        ),
    ],
)
def test_unusable_transport_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        OperatorSettings.from_env(env)
    assert str(refused.value) == message
