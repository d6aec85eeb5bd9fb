"""The dashboard's HTML, from the page models of views.py: pure, every value escaped.

Each page is a layout (header, navigation, a static part) around a live part (`#live`) that
static/live.js replaces in place when the server says something changed; `fragment=True`
renders the live part alone. Links are relative, so the pages work under any path prefix an
Ingress gives them. Tables carry `data-label` per cell: the stylesheet stacks them on a phone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from gitstage.dashboard.markup import Markup, join, tag
from gitstage.dashboard.views import (
    AuditRow,
    Badge,
    Commit,
    DeploymentRow,
    Description,
    ModelPage,
    ModelRow,
    ModelsPage,
    RegistryRollouts,
    RolloutsPage,
    StageCell,
    VersionRow,
)


@dataclass(frozen=True)
class Chrome:
    """What every page shows around its content."""

    cluster: bool
    generation: int
    user: str | None = None  # from a trusted proxy's header
    standby: bool = False  # a standby replica's: it reconciles nothing
    session: bool = False  # signed in with the login cookie: offer to sign out


# -- layout -------------------------------------------------------------------------------------

STANDBY_NOTICE = tag(
    "p",
    {"class": "notice", "role": "note"},
    "This replica is a standby: it follows the registries but reconciles nothing, so no"
    " Deployment, rollout or event shows here. The leader's dashboard has them (the pod named"
    " by the Lease's holderIdentity).",
)


def document(
    title: str, current: str, chrome: Chrome, static: object, live: Markup, *, fragment: bool
) -> str:
    if chrome.standby:  # in the live part: it goes when this replica is elected
        live = join([STANDBY_NOTICE, live])
    if fragment:
        return str(live)
    head = tag(
        "head",
        None,
        tag("meta", {"charset": "utf-8"}),
        tag("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        tag("title", None, f"{title} · gitstage"),
        tag("link", {"rel": "stylesheet", "href": "static/dashboard.css"}),
        tag("script", {"src": "static/live.js", "defer": True}),
    )
    body = tag(
        "body",
        None,
        tag("a", {"class": "skip", "href": "#main"}, "Skip to content"),
        _header(current, chrome),
        tag(
            "main",
            {"id": "main", "tabindex": "-1"},
            static,
            tag("div", {"id": "live", "data-generation": chrome.generation}, live),
        ),
        tag("footer", None, "Read-only view; updates live as the registries change."),
    )
    return "<!doctype html>\n" + tag("html", {"lang": "en"}, head, body)


def _header(current: str, chrome: Chrome) -> Markup:
    pages = [("./", "Models")]
    if chrome.cluster:
        pages.append(("rollouts", "Rollouts"))
    links = [
        tag("a", {"href": href, "aria-current": "page" if name == current else None}, name)
        for href, name in pages
    ]
    return tag(
        "header",
        None,
        tag("a", {"class": "brand", "href": "./"}, "gitstage"),
        tag("nav", {"aria-label": "Pages"}, links),
        tag("span", {"class": "user"}, f"signed in as {chrome.user}") if chrome.user else None,
        _sign_out() if chrome.session else None,
        tag("span", {"id": "live-status", "role": "status", "aria-live": "polite"}, ""),
    )


def _sign_out() -> Markup:
    return tag(
        "form",
        {"method": "post", "action": "logout", "class": "sign-out"},
        tag("button", {"type": "submit"}, "Sign out"),
    )


def when(moment: datetime | None) -> Markup:
    if moment is None:
        return Markup("")
    return tag("time", {"datetime": moment.isoformat()}, moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def commit(found: Commit | None) -> Markup:
    if found is None:
        return Markup("")
    short = tag("code", {"title": found.sha}, found.sha[:7])
    if found.url is None:
        return short
    return tag("a", {"href": found.url, "rel": "noreferrer"}, short)


def cell(label: str, *children: object, **attrs: object) -> Markup:
    return tag("td", {"data-label": label, **attrs}, *children)


def table(caption: str, headings: list[str], rows: Iterable[Markup], **attrs: object) -> Markup:
    head = tag("thead", None, tag("tr", None, [tag("th", {"scope": "col"}, h) for h in headings]))
    return tag(
        "table",
        {"class": "stack", **attrs},
        tag("caption", None, caption),
        head,
        tag("tbody", None, list(rows)),
    )


def badge(found: Badge, *, show_where: bool = True) -> Markup:
    kind = found.kind.value
    where = f" · {found.registry}/{found.deployment}" if show_where else ""
    return tag(
        "li",
        {
            "class": f"badge badge-{kind.replace(' ', '-')}",
            "data-badge": kind,
            "data-deployment": found.deployment,
        },
        tag("span", {"class": "badge-kind"}, kind),
        f" {found.version}" if found.version else "",
        tag("span", {"class": "where"}, where) if where else None,
        tag("span", {"class": "reason"}, f": {found.reason}") if found.reason else None,
    )


def stage_chips(stages: Iterable[StageCell]) -> Markup:
    chips = [
        tag(
            "li",
            {"class": "chip", "data-stage": s.stage},
            tag("span", {"class": "stage"}, s.stage),
            " ",
            tag("span", {"class": "version"}, s.version),
        )
        for s in stages
    ]
    return tag("ul", {"class": "chips"}, chips) if chips else tag("span", {"class": "none"}, "—")


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def model_link(repository: str, artifact: str) -> str:
    return "model?" + urlencode({"repo": repository, "artifact": artifact})


# -- the models page ----------------------------------------------------------------------------


def models_html(page: ModelsPage, chrome: Chrome, fragment: bool = False) -> str:
    search = tag(
        "form",
        {"class": "search", "role": "search", "method": "get", "action": "./"},
        tag("label", {"for": "q"}, "Filter"),
        tag(
            "input",
            {
                "id": "q",
                "name": "q",
                "type": "search",
                "value": page.query,
                "placeholder": "artifact, repository or namespace",
            },
        ),
        tag("button", {"type": "submit"}, "Filter"),
    )
    static = [tag("h1", None, "Models"), search]
    return document("Models", "Models", chrome, static, _models_live(page), fragment=fragment)


def _models_live(page: ModelsPage) -> Markup:
    where = plural(page.repositories, "repository", "repositories")
    if page.cluster:
        where += ", " + plural(page.registries, "ModelRegistry", "ModelRegistries")
    summary = f"{plural(page.total, 'artifact')} in {where}."
    if page.pages > 1:
        summary += f" Rows {page.first + 1}–{page.first + len(page.rows)}."
    headings = ["Artifact", "Repository", "Latest", "Stages"]
    if page.cluster:
        headings.append("Deployments")
    rows = (_model_row(row, page.cluster) for row in page.rows)
    caption = "Every artifact, its latest version and each stage's version"
    return join(
        [
            tag("p", {"class": "summary"}, summary),
            _problems(page),
            table(caption, headings, rows, id="models"),
            _pager(page),
        ]
    )


def _pager(page: ModelsPage) -> Markup | None:
    if page.pages == 1:
        return None

    def link(number: int, text: str, rel: str) -> Markup:
        query = {"q": page.query, "page": number} if page.query else {"page": number}
        return tag("a", {"href": "?" + urlencode(query), "rel": rel}, text)

    return tag(
        "nav",
        {"class": "pager", "aria-label": "Pages of models"},
        link(page.page - 1, "← Previous", "prev") if page.page > 1 else None,
        tag("span", None, f" Page {page.page} of {page.pages} "),
        link(page.page + 1, "Next →", "next") if page.page < page.pages else None,
    )


def _problems(page: ModelsPage) -> Markup | None:
    if not page.problems:
        return None
    items = [
        tag("li", None, tag("strong", None, p.registry), f": {p.message}") for p in page.problems
    ]
    return tag(
        "section",
        {"class": "problems", "aria-labelledby": "problems"},
        tag("h2", {"id": "problems"}, "Sources that cannot be read (last good state shown)"),
        tag("ul", None, items),
    )


def _model_row(row: ModelRow, cluster: bool) -> Markup:
    name = tag("a", {"href": model_link(row.repository.key, row.artifact)}, row.artifact)
    cells = [
        cell(
            "Artifact",
            name,
            tag("span", {"class": "tag-deprecated"}, " deprecated") if row.deprecated else None,
        ),
        cell("Repository", tag("span", {"class": "repo"}, row.repository.label)),
        cell("Latest", row.latest or tag("span", {"class": "none"}, "—"), **{"data-latest": ""}),
        cell("Stages", stage_chips(row.stages)),
    ]
    if cluster:
        badges = [badge(b) for b in row.badges]
        cells.append(
            cell(
                "Deployments",
                tag("ul", {"class": "badges"}, badges)
                if badges
                else tag("span", {"class": "none"}, "none"),
            )
        )
    return tag("tr", {"data-artifact": row.artifact, "data-repository": row.repository.key}, cells)


# -- a model's page -----------------------------------------------------------------------------


def model_html(page: ModelPage, chrome: Chrome, fragment: bool = False) -> str:
    static = [
        tag("p", {"class": "back"}, tag("a", {"href": "./"}, "← All models")),
        tag("h1", None, page.artifact),
        tag("p", {"class": "repo"}, page.repository.label),
    ]
    return document(page.artifact, "", chrome, static, _model_live(page), fragment=fragment)


def _model_live(page: ModelPage) -> Markup:
    status = "deprecated" if page.deprecated else f"latest {page.latest or '—'}"
    parts: list[object] = [
        tag("p", {"class": "summary"}, status),
        _description(page.description),
        tag(
            "section",
            {"aria-labelledby": "stages"},
            tag("h2", {"id": "stages"}, "Stages"),
            stage_chips(page.stages),
        ),
    ]
    if page.cluster:
        badges = [badge(b) for b in page.badges]
        parts.append(
            tag(
                "section",
                {"aria-labelledby": "deployments"},
                tag("h2", {"id": "deployments"}, "Deployments"),
                tag("ul", {"class": "badges"}, badges) if badges else tag("p", None, "None."),
            )
        )
    parts.append(
        table(
            "Versions",
            ["Version", "Commit", "Status", "Registered", "By", "Holds"],
            (_version_row(v) for v in page.versions),
            id="versions",
        )
    )
    parts.append(
        table(
            "Audit trail: every tag, newest first (as gitstage history)",
            ["When", "Event", "Version", "Stage", "By", "Message", "Signature", "Tag"],
            (_audit_row(r) for r in page.timeline),
            id="timeline",
        )
    )
    if page.older_events:
        older = f"{page.older_events:,} older events are not listed here:"
        command = f"gitstage history {page.artifact}"
        parts.append(tag("p", {"class": "none"}, older, " ", tag("code", None, command), "."))
    return join(parts)


def _description(found: Description | None) -> Markup:
    if found is None:
        return tag("p", {"class": "none"}, "No artifacts.yaml entry.")
    fields = [
        ("Type", found.type or "—"),
        ("Path", found.path or "—"),
        ("Description", found.description or "—"),
        ("Labels", ", ".join(found.labels) or "—"),
    ]
    items = [join([tag("dt", None, k), tag("dd", None, v)]) for k, v in fields]
    return tag(
        "section",
        {"aria-labelledby": "about"},
        tag("h2", {"id": "about"}, "artifacts.yaml"),
        tag("dl", {"class": "description"}, items),
    )


def _version_row(row: VersionRow) -> Markup:
    return tag(
        "tr",
        {"data-version": row.name},
        cell("Version", row.name),
        cell("Commit", commit(row.commit)),
        cell("Status", row.status),
        cell("Registered", when(row.registered_at)),
        cell("By", row.registered_by),
        cell("Holds", ", ".join(row.stages)),
    )


def _audit_row(row: AuditRow) -> Markup:
    signature = tag(
        "span", {"class": f"sig sig-{row.signature.state.name.lower()}"}, row.signature.text
    )
    return tag(
        "tr",
        {"data-tag": row.tag, "data-event": row.event},
        cell("When", when(row.at)),
        cell("Event", row.event),
        cell("Version", row.version or ""),
        cell("Stage", row.stage or ""),
        cell("By", tag("span", {"title": row.author_email}, row.author)),
        cell("Message", tag("span", {"class": "message"}, row.message)),
        cell("Signature", signature),
        cell("Tag", tag("code", None, row.tag), " ", commit(row.commit)),
    )


# -- the rollouts page --------------------------------------------------------------------------


def rollouts_html(page: RolloutsPage, chrome: Chrome, fragment: bool = False) -> str:
    static = [tag("h1", None, "Rollouts")]
    sections = [_registry_section(r) for r in page.registries]
    live = join(sections) if sections else tag("p", None, "No ModelRegistry yet.")
    return document("Rollouts", "Rollouts", chrome, static, live, fragment=fragment)


def _registry_section(registry: RegistryRollouts) -> Markup:
    anchor = "registry-" + registry.key.replace("/", "-")
    source = [
        ("Repository", registry.repository.label),
        ("HEAD", commit(registry.head) if registry.head else "—"),
        ("Last change", when(registry.changed_at) if registry.changed_at else "—"),
    ]
    if registry.source_error:
        source.append(("Source error", tag("span", {"class": "error"}, registry.source_error)))
    return tag(
        "section",
        {
            "class": "registry",
            "id": anchor,
            "aria-labelledby": anchor + "-h",
            "data-registry": registry.key,
        },
        tag("h2", {"id": anchor + "-h"}, registry.key),
        tag(
            "dl",
            {"class": "description"},
            [join([tag("dt", None, k), tag("dd", None, v)]) for k, v in source],
        ),
        table(
            f"Deployments of {registry.key}: desired and observed",
            [
                "Deployment",
                "Serves",
                "Desired",
                "Observed",
                "Ready",
                "Status",
                "Fetcher's last error",
            ],
            (_deployment_row(d) for d in registry.deployments),
        ),
        _events(registry),
    )


def _deployment_row(row: DeploymentRow) -> Markup:
    serves = f"{row.artifact}#{row.stage}" if row.stage else row.artifact
    error = row.fetch_error
    return tag(
        "tr",
        {"data-deployment": row.name},
        cell("Deployment", row.name),
        cell("Serves", serves),
        cell(
            "Desired", row.desired or "—", " ", commit(row.desired_commit), **{"data-desired": ""}
        ),
        cell(
            "Observed",
            row.observed or "—",
            " ",
            commit(row.observed_commit),
            **{"data-observed": ""},
        ),
        cell("Ready", row.replicas),
        cell("Status", tag("ul", {"class": "badges"}, badge(row.badge, show_where=False))),
        cell(
            "Fetcher's last error",
            join([when(error.at), " ", tag("span", {"class": "error"}, error.message)])
            if error
            else "—",
        ),
    )


def _events(registry: RegistryRollouts) -> Markup:
    if not registry.events:
        return tag("p", {"class": "none"}, "No events posted since the operator started.")
    rows = [
        tag(
            "tr",
            {"data-reason": e.reason, "class": "warning" if e.type == "Warning" else None},
            cell("When", when(e.at)),
            cell("Reason", e.reason),
            cell("Message", e.message),
        )
        for e in registry.events
    ]
    return table(
        f"Recent events of {registry.key}, newest first", ["When", "Reason", "Message"], rows
    )


# -- errors -------------------------------------------------------------------------------------


def message_html(title: str, message: str, chrome: Chrome) -> str:
    return document(
        title, "", chrome, tag("h1", None, title), tag("p", None, message), fragment=False
    )
