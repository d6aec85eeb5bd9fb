"""The dashboard's page models and HTML, from registries read off real repositories: what each
page shows, in `gitstage show` and `gitstage history` terms, and what it must never show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gitstage.adapters.git.reader import Registry, read_registry
from gitstage.dashboard import pages, views
from gitstage.dashboard.forges import commit_url
from gitstage.dashboard.inputs import (
    MAX_TEXT,
    PostedEvent,
    RegistrySnapshot,
    Snapshot,
    shown_url,
)
from gitstage.dev.demo import badge_text
from gitstage.domain.policy.rules import SignatureKind, SignatureStatus
from gitstage.domain.registry.gto_json import history_document, registry_document
from gitstage.domain.registry.views import ViewOptions
from gitstage.domain.repo_urls import repository_key
from gitstage.resources import v1alpha1 as v1
from tests.support.scratch import ScratchRepo, When

URL = "https://github.com/Acme/registry.git"
PASSWORD = "hunter2-not-shown"
SSH_SIGNATURE = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
CHROME = pages.Chrome(cluster=True, generation=3)
INDEX = (
    "churn:\n  type: model\n  path: models/churn.pkl\n"
    "  description: churn <script>alert(1)</script>\n  labels: [tabular, weekly]\n"
    "fraud:\n  type: model\n  path: models/fraud.pkl\n"
)


@pytest.fixture
def registry(scratch: ScratchRepo) -> Registry:
    """churn v1 and v2 (v2 in prod, v1 in staging, a same-second registration and
    assignment), fraud v0.1 deprecated; a signed prod assignment."""
    first = scratch.commit({"artifacts.yaml": INDEX}, When(0))
    second = scratch.commit({"models/churn.pkl": "v2"}, When(10))
    scratch.tag("churn@v1.0.0", first, When(20), "first churn")
    scratch.tag("churn#staging#1", first, When(30), "to staging")
    scratch.tag("churn@v2.0.0", second, When(40), "second churn")
    scratch.tag("churn#prod#2", second, When(40), "release\n" + SSH_SIGNATURE)
    scratch.tag("fraud@v0.1.0", first, When(50), "fraud")
    scratch.tag("fraud@deprecated", first, When(60), "gone")
    return read_registry(scratch.path)


def snapshot_of(registry: Registry, **fields: object) -> RegistrySnapshot:
    values: dict[str, object] = {
        "key": "ml/churn",
        "namespace": "ml",
        "url": shown_url(URL),
        "branch": "main",
        "state": registry.state,
        "head": registry.head,
    }
    values.update(fields)
    return RegistrySnapshot(**values)  # type: ignore[arg-type]


def state(name: str, rollout: str, message: str = "", **fields: object) -> v1.DeploymentState:
    base: dict[str, object] = {"name": name, "artifact": "churn", "stage": "prod"}
    base.update(fields)
    return v1.DeploymentState(rollout=rollout, message=message, **base)  # type: ignore[arg-type]


def test_one_row_per_artifact_with_gto_show_versions(registry: Registry) -> None:
    page = views.models_page(Snapshot((snapshot_of(registry),), cluster=True))
    document = registry_document(registry.state, ViewOptions(deprecated=True), None)
    assert [row.artifact for row in page.rows] == ["churn", "fraud"]
    for row in page.rows:
        shown = document[row.artifact]
        assert row.latest == shown["version"]
        assert {c.stage: c.version for c in row.stages} == {
            stage: version for stage, version in shown["stage"].items() if version
        }
    assert page.rows[0].stages == (
        views.StageCell("prod", "v2.0.0"),
        views.StageCell("staging", "v1.0.0"),
    )
    assert page.rows[1].deprecated


def test_registries_of_one_repository_share_rows_and_show_every_badge(registry: Registry) -> None:
    """Two ModelRegistries (two namespaces, two spellings of the URL) follow one repository."""
    serving = state("churn-prod", "Complete", observed_version="v2.0.0")
    rolling = state("churn-eu", "Progressing", desired_version="v2.0.0")
    snapshot = Snapshot(
        (
            snapshot_of(registry, deployments=(serving,)),
            snapshot_of(
                registry,
                key="ml-eu/churn",
                namespace="ml-eu",
                url=shown_url("https://bot:x@github.com/acme/registry"),
                deployments=(rolling,),
            ),
        ),
        cluster=True,
    )
    page = views.models_page(snapshot)
    assert (page.repositories, page.registries) == (1, 2)
    churn = page.rows[0]
    assert [(b.registry, b.deployment, b.kind, b.version) for b in churn.badges] == [
        ("ml-eu/churn", "churn-eu", views.BadgeKind.ROLLING_OUT, "v2.0.0"),
        ("ml/churn", "churn-prod", views.BadgeKind.SERVING, "v2.0.0"),
    ]
    assert page.rows[1].badges == ()


@pytest.mark.parametrize(
    ("rollout", "message", "kind", "reason"),
    [
        ("Complete", "", views.BadgeKind.SERVING, ""),
        ("Progressing", "", views.BadgeKind.ROLLING_OUT, ""),
        ("Pending", "", views.BadgeKind.ROLLING_OUT, ""),
        ("Held", "stage 'prod' is empty", views.BadgeKind.HELD, "stage 'prod' is empty"),
        (
            "Complete",
            "tag churn#prod#3: not signed",
            views.BadgeKind.HELD,
            "tag churn#prod#3: not signed",
        ),
        ("Failed", "", views.BadgeKind.FAILING, "rollout exceeded its progress deadline"),
        ("Failed", "fetch failed: exit 5", views.BadgeKind.FAILING, "fetch failed: exit 5"),
        ("Unknown", "", views.BadgeKind.UNKNOWN, ""),
    ],
)
def test_badges_say_what_the_ready_condition_says(
    rollout: str, message: str, kind: views.BadgeKind, reason: str
) -> None:
    badge = views.badge_of("ml/churn", state("churn-prod", rollout, message))
    assert (badge.kind, badge.reason) == (kind, reason)


def test_the_filter_matches_artifact_repository_and_namespace(registry: Registry) -> None:
    snapshot = Snapshot(
        (
            snapshot_of(registry),
            snapshot_of(registry, key="team-b/x", namespace="team-b", url="https://other/r"),
        ),
        cluster=True,
    )

    def rows(query: str) -> list[tuple[str, str]]:
        page = views.models_page(snapshot, query)
        assert page.total == len(page.rows)
        return [(r.artifact, r.repository.url) for r in page.rows]

    assert rows("FRAUD") == [("fraud", shown_url(URL)), ("fraud", "https://other/r")]
    assert rows("team-b/") == [("churn", "https://other/r"), ("fraud", "https://other/r")]
    assert len(rows("acme/registry")) == 2
    assert rows("nothing-like-it") == []


def test_the_models_page_resolves_one_page_of_rows(registry: Registry) -> None:
    many = tuple(
        snapshot_of(registry, key=f"ns/r{n}", url=f"https://git.example/r{n}.git") for n in range(5)
    )
    snapshot = Snapshot(many, cluster=True)
    pages_seen = [views.models_page(snapshot, page=n, page_rows=4) for n in (1, 2, 3, 99)]
    assert [(p.page, p.pages, p.first, len(p.rows), p.total) for p in pages_seen] == [
        (1, 3, 0, 4, 10),
        (2, 3, 4, 4, 10),
        (3, 3, 8, 2, 10),
        (3, 3, 8, 2, 10),  # past the end: the last page
    ]
    every = [r.artifact for p in pages_seen[:3] for r in p.rows]
    assert every == ["churn"] * 5 + ["fraud"] * 5
    html = pages.models_html(pages_seen[1], CHROME)
    assert "10 artifacts in 5 repositories, 5 ModelRegistries. Rows 5–8." in html
    assert 'href="?page=1" rel="prev"' in html
    assert 'href="?page=3" rel="next"' in html
    filtered = views.models_page(snapshot, "fraud", page_rows=4)
    assert 'href="?q=fraud&amp;page=2"' in pages.models_html(filtered, CHROME)


def test_the_namespace_filter_drops_other_namespaces(registry: Registry) -> None:
    snapshot = Snapshot(
        (snapshot_of(registry), snapshot_of(registry, key="team-b/x", namespace="team-b")),
        cluster=True,
    )
    kept = views.in_namespaces(snapshot, frozenset({"team-b"}))
    assert [r.key for r in kept.registries] == ["team-b/x"]
    assert views.in_namespaces(snapshot, frozenset()) == snapshot


def test_the_audit_trail_is_gitstage_history_in_its_order(registry: Registry) -> None:
    snapshot = Snapshot((snapshot_of(registry),), cluster=True)
    page = views.model_page(snapshot, repository_key(URL), "churn")
    assert page is not None
    history = history_document(registry.state, "churn", ascending=False)
    assert [row.tag for row in page.timeline] == [row["ref"] for row in history]
    # The same second: the assignment (priority 5) is newer than the registration (3).
    assert [row.tag for row in page.timeline][:2] == ["churn#prod#2", "churn@v2.0.0"]
    prod = page.timeline[0]
    assert (prod.event, prod.version, prod.stage, prod.author) == (
        "assignment",
        "v2.0.0",
        "prod",
        "Tester",
    )
    assert prod.message == "release"  # without the signature block
    assert prod.at == datetime.fromtimestamp(1_700_000_040, UTC)


def test_a_long_history_keeps_the_model_page_a_page(scratch: ScratchRepo) -> None:
    commit = scratch.commit({"m.pkl": "v1"}, When(1))
    scratch.tag("churn@v1.0.0", commit, When(2))
    extra = views.TIMELINE_ROWS + 5
    for n in range(1, extra):
        scratch.tag(f"churn#dev#{n}", commit, When(2 + n))
    registry = read_registry(scratch.path)
    page = views.model_page(
        Snapshot((snapshot_of(registry),), cluster=False), repository_key(URL), "churn"
    )
    assert page is not None
    assert len(page.timeline) == views.TIMELINE_ROWS
    assert page.timeline[0].tag == f"churn#dev#{extra - 1}"  # the newest ones
    assert page.older_events == extra - views.TIMELINE_ROWS
    html = pages.model_html(page, CHROME)
    assert "5 older events are not listed here:" in html
    assert "<code>gitstage history churn</code>" in html
    assert len(html) < 1_000_000


def test_a_long_message_is_cut(scratch: ScratchRepo) -> None:
    commit = scratch.commit({"m.pkl": "v1"}, When(1))
    scratch.tag("churn@v1.0.0", commit, When(2), message="y" * 100_000)
    page = views.model_page(
        Snapshot((snapshot_of(read_registry(scratch.path)),), cluster=False),
        repository_key(URL),
        "churn",
    )
    assert page is not None
    (row,) = page.timeline
    assert len(row.message) == MAX_TEXT
    assert row.message.endswith("…")


def test_signature_status_verified_invalid_or_not_checked(registry: Registry) -> None:
    verdicts = {
        "churn#prod#2": SignatureStatus(SignatureKind.VALID, ("release@acme.example",)),
    }

    def signature(check: object) -> views.Signature:
        found = views.model_page(
            Snapshot((snapshot_of(registry, signatures=check),), cluster=True),
            repository_key(URL),
            "churn",
        )
        assert found is not None
        return next(row.signature for row in found.timeline if row.tag == "churn#prod#2")

    assert signature(verdicts.get).text == "verified: release@acme.example"
    invalid = SignatureStatus(SignatureKind.INVALID, detail="key not in allowed_signers")
    assert signature(lambda _: invalid).text == "does not verify: key not in allowed_signers"
    assert signature(None).state is views.SignatureState.SIGNED
    page = views.model_page(
        Snapshot((snapshot_of(registry),), cluster=True), repository_key(URL), "churn"
    )
    assert page is not None
    unsigned = {row.tag: row.signature.state for row in page.timeline}
    assert unsigned["churn@v1.0.0"] is views.SignatureState.UNSIGNED


def test_a_model_page_has_versions_description_and_forge_links(registry: Registry) -> None:
    page = views.model_page(
        Snapshot((snapshot_of(registry),), cluster=True), repository_key(URL), "churn"
    )
    assert page is not None
    assert page.description == views.Description(
        "model", "models/churn.pkl", "churn <script>alert(1)</script>", ("tabular", "weekly")
    )
    assert [(v.name, v.status, v.stages) for v in page.versions] == [
        ("v2.0.0", "registered", ("prod",)),
        ("v1.0.0", "registered", ("staging",)),
    ]
    commit = page.versions[0].commit
    assert commit.url == f"https://github.com/acme/registry/commit/{commit.sha}"
    assert (
        views.model_page(
            Snapshot((snapshot_of(registry),), cluster=True), repository_key(URL), "nope"
        )
        is None
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:Org/Repo.git", "https://github.com/org/repo/commit/{sha}"),
        ("https://x:y@gitlab.com/g/sub/r.git", "https://gitlab.com/g/sub/r/-/commit/{sha}"),
        ("ssh://git@bitbucket.org/ws/r.git", "https://bitbucket.org/ws/r/commits/{sha}"),
        ("https://codeberg.org/o/r", "https://codeberg.org/o/r/commit/{sha}"),
        ("https://git.internal.example/o/r.git", None),
        ("/srv/git/registry.git", None),
    ],
)
def test_commit_links_only_for_known_forges(url: str, expected: str | None) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert commit_url(url, sha) == (expected.format(sha=sha) if expected else None)
    assert commit_url(url, "not-a-sha") is None


def test_rollouts_show_desired_observed_events_and_the_last_fetch_error(
    registry: Registry,
) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    events = (
        PostedEvent(at, "Normal", "Created", "churn-prod: serving churn#prod v1.0.0"),
        PostedEvent(at.replace(minute=5), "Warning", "FetchFailed", "churn-prod: exit 5 (auth)"),
        PostedEvent(at.replace(minute=6), "Normal", "RollingOut", "churn-prod: rolling out"),
    )
    failing = state(
        "churn-prod",
        "Failed",
        "fetch failed",
        desired_version="v2.0.0",
        desired_commit="a" * 40,
        observed_version="v1.0.0",
        observed_commit="b" * 40,
        replicas=2,
        ready_replicas=1,
    )
    page = views.rollouts_page(
        Snapshot((snapshot_of(registry, deployments=(failing,), events=events),), cluster=True)
    )
    (section,) = page.registries
    (row,) = section.deployments
    assert (row.desired, row.observed, row.replicas) == ("v2.0.0", "v1.0.0", "1/2")
    assert row.fetch_error == views.FetchError(at.replace(minute=5), "exit 5 (auth)", True)
    assert [e.reason for e in section.events] == ["RollingOut", "FetchFailed", "Created"]


def test_no_credential_or_markup_from_a_registry_reaches_the_html(registry: Registry) -> None:
    leaky = f"https://alice:{PASSWORD}@git.example/registry.git"
    snapshot = Snapshot(
        (
            snapshot_of(
                registry,
                url=shown_url(leaky),
                source_error=f"cannot reach {leaky}: connection refused",
                events=(PostedEvent(datetime.now(UTC), "Warning", "FetchFailed", f"x: {leaky}"),),
                deployments=(state("churn-prod", "Failed", f"fetch from {leaky} failed"),),
            ),
        ),
        cluster=True,
    )
    models = pages.models_html(views.models_page(snapshot), CHROME)
    model_page = views.model_page(snapshot, repository_key(leaky), "churn")
    assert model_page is not None
    html = [
        models,
        pages.model_html(model_page, CHROME),
        pages.rollouts_html(views.rollouts_page(snapshot), CHROME),
    ]
    for text in html:
        assert PASSWORD not in text
        assert "alice" not in text
        assert "<script>alert" not in text
    assert "churn &lt;script&gt;alert(1)&lt;/script&gt;" in html[1]
    assert "https://git.example/registry.git" in models


def test_control_and_bidi_characters_are_shown_as_code_points(scratch: ScratchRepo) -> None:
    commit = scratch.commit({"m.pkl": "v1"}, When(1))
    scratch.tag("churn@v1.0.0", commit, When(2), message="fine\u202elive\u202c \x1b[31m\x07\r\n")
    snapshot = Snapshot((snapshot_of(read_registry(scratch.path)),), cluster=False)
    page = views.model_page(snapshot, repository_key(URL), "churn")
    assert page is not None
    html = pages.model_html(page, CHROME)
    assert "fine\\u202elive\\u202c \\u001b[31m\\u0007" in html
    for hidden in ("\u202e", "\u202c", "\x1b", "\x07"):
        assert hidden not in html


def test_a_fragment_is_the_live_part_alone(registry: Registry) -> None:
    page = views.models_page(Snapshot((snapshot_of(registry),), cluster=False))
    whole = pages.models_html(page, pages.Chrome(cluster=False, generation=7))
    fragment = pages.models_html(page, pages.Chrome(cluster=False, generation=7), fragment=True)
    assert whole.startswith("<!doctype html>")
    assert '<div id="live" data-generation="7">' + fragment + "</div>" in whole
    assert "<html" not in fragment
    assert "Deployments" not in whole  # no cluster, no cluster column
    assert 'href="rollouts"' not in whole


def test_the_demo_reads_the_badge_off_the_models_page(registry: Registry) -> None:
    serving = state("churn-prod", "Complete", observed_version="v2.0.0")
    snapshot = Snapshot((snapshot_of(registry, deployments=(serving,)),), cluster=True)
    html = pages.models_html(views.models_page(snapshot), CHROME)
    assert badge_text(html) == "serving v2.0.0"
    assert badge_text("<html></html>") == ""
