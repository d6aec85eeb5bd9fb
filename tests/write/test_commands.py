"""The write commands against gto-semantics.md §3.6 and scenarios S1–S9, S17, S19, S25, S27."""

from __future__ import annotations

import os

import pytest

from gitstage import api
from tests.support.scratch import BASE_TIME
from tests.write.conftest import Registry


def holder(registry: Registry, stage: str, name: str = "m") -> str | None:
    found = api.find_version_in_stage(registry.path, name, stage)
    return found.version if found else None


def test_s1_register_creates_an_annotated_tag_with_the_configured_tagger(
    registry: Registry,
) -> None:
    head = str(registry.repo.head.target)
    out = registry.ok("register", "a1")
    assert out == (
        "Created git tag 'a1@v0.0.1' that registers version\n"
        "To push the changes upstream, run:\n"
        "    git push origin a1@v0.0.1\n"
    )
    tag = registry.tag("a1@v0.0.1")
    assert str(tag.target) == head
    assert (tag.tagger.name, tag.tagger.email) == ("Reg Istrar", "registrar@example.com")
    assert tag.tagger.time > BASE_TIME
    assert tag.message == "Registering artifact a1 version v0.0.1"


def test_s2_automatic_versions_and_bumps(registry: Registry) -> None:
    registry.ok("register", "m")
    registry.commit("2")
    registry.ok("register", "m")
    registry.commit("3")
    registry.ok("register", "m", "--bump-minor")
    registry.commit("4")
    registry.ok("register", "m", "--bump-major")
    assert registry.tags() == {"m@v0.0.1", "m@v0.0.2", "m@v0.1.0", "m@v1.0.0"}
    assert api.show(registry.path)["m"]["version"] == "v1.0.0"


def test_bumps_drop_the_prerelease_and_start_from_the_highest_active_version(
    registry: Registry,
) -> None:
    registry.ok("register", "m", "--version", "v1.0.0-rc.1")
    registry.commit("2")
    registry.ok("register", "m")
    assert "m@v1.0.1" in registry.tags()
    registry.commit("3")
    registry.ok("register", "m", "--version", "v3.0.0")
    registry.ok("deprecate", "m", "v3.0.0")
    registry.commit("4")
    registry.ok("register", "m", "--bump-minor")
    assert "m@v1.1.0" in registry.tags()


def test_explicit_bump_of_a_first_version_and_two_version_arguments_are_refused(
    registry: Registry,
) -> None:
    assert registry.refused("register", "m", "--bump-patch") == (
        "Can't apply bump, because this is the first version being registered"
    )
    assert registry.refused("register", "m", "--bump-major", "--version", "v1.0.0") == (
        "Need to specify either version or single bump argument"
    )


def test_s3_re_registration_after_deregistration_needs_the_counter_form(
    registry: Registry,
) -> None:
    registry.ok("register", "a2", "--version", "v1.2.3")
    out = registry.ok("deprecate", "a2", "v1.2.3")
    assert out.startswith("Created git tag 'a2@v1.2.3!' that deregisters version\n")
    assert registry.refused("register", "a2") == "tag 'a2@v1.2.3' already exists"
    registry.ok("register", "a2", "--simple", "false")
    assert registry.tags() == {"a2@v1.2.3", "a2@v1.2.3!", "a2@v1.2.3#1"}


def test_s4_versions_must_be_semver_with_a_v(registry: Registry) -> None:
    assert registry.refused("register", "a3", "--version", "1.2.3") == (
        "Supplied version '1.2.3' cannot be parsed"
    )


def test_s5_directory_prefixed_names_are_written_with_equals(registry: Registry) -> None:
    registry.ok("register", "classification/dvclive:models/nn")
    assert registry.tags() == {"classification/dvclive=models/nn@v0.0.1"}


def test_invalid_names_get_gtos_message(registry: Registry) -> None:
    assert registry.refused("register", "m-") == (
        "Invalid value 'm-'. Only letters, numbers, '_', '-', '/' are allowed. "
        "Value must be of len >= 2 and must start and end with a letter or a number."
    )


def test_s6_a_ref_with_a_version_cannot_name_another(registry: Registry) -> None:
    registry.ok("register", "nn1")
    registry.ok("assign", "nn1", "HEAD", "--stage", "prod")
    assert "nn1#prod#1" in registry.tags()
    assert registry.refused("assign", "nn1", "HEAD", "--version", "v1.0.0", "--stage", "st") == (
        "Can't register 'v1.0.0', since 'v0.0.1' is registered already at this ref"
    )


def test_s7_assign_registers_an_unregistered_commit_first(registry: Registry) -> None:
    out = registry.ok("assign", "nn2", "HEAD", "--stage", "prod")
    assert out.splitlines() == [
        "Created git tag 'nn2@v0.0.1' that registers version",
        "To push the changes upstream, run:",
        "    git push origin nn2@v0.0.1",
        "Created git tag 'nn2#prod#1' that assigns stage to version 'v0.0.1'",
        "To push the changes upstream, run:",
        "    git push origin 'nn2#prod#1'",
    ]
    assert registry.tag("nn2#prod#1").message == (
        "Assigning stage prod to artifact nn2 version v0.0.1"
    )


def test_s8_skip_registration_names_the_version_by_its_commit(registry: Registry) -> None:
    head = str(registry.repo.head.target)
    out = registry.ok("assign", "m", "--stage", "staging", "--sr")
    assert f"assigns stage to version '{head}'" in out
    assert registry.tags() == {"m#staging#1"}
    assert holder(registry, "staging") == head
    assert registry.refused(
        "assign", "m", "HEAD", "--version", "v1.0.0", "--sr", "--stage", "x"
    ) == ("You either need to supply version name or skip registration")


def test_s9_a_version_already_in_the_stage_needs_force(registry: Registry) -> None:
    registry.commit("2")
    registry.ok("assign", "m", "--stage", "staging")
    registry.ok("assign", "m", "HEAD^1", "--stage", "staging")
    assert holder(registry, "staging") == "v0.0.2"  # HEAD^1, registered second
    assert registry.refused("assign", "m", "--stage", "staging") == (
        "Version 'v0.0.1' is already in stage 'staging'. "
        "Use the '--force' flag to create a new Git tag nevertheless."
    )
    registry.ok("assign", "m", "--stage", "staging", "--force")
    assert holder(registry, "staging") == "v0.0.1"
    assert {"m#staging#1", "m#staging#2", "m#staging#3"} <= registry.tags()


def test_assign_by_version_tags_that_versions_commit(registry: Registry) -> None:
    first = str(registry.repo.head.target)
    registry.ok("register", "m")
    registry.commit("2")
    registry.ok("assign", "m", "--version", "v0.0.1", "--stage", "prod")
    assert str(registry.tag("m#prod#1").target) == first
    assert registry.refused("assign", "m", "--version", "v9.0.0", "--stage", "prod") == (
        "Version 'v9.0.0' is not registered"
    )


def test_s17_unassign_empties_the_stage(registry: Registry) -> None:
    registry.ok("register", "model")
    registry.ok("assign", "model", "--stage", "dev")
    out = registry.ok("unassign", "model", "HEAD", "dev")
    assert out.startswith("Created git tag 'model#dev!#2' that unassigns stage from version")
    assert holder(registry, "dev", "model") is None
    assert registry.refused("unassign", "model", "HEAD", "prod") == (
        "Stage 'prod' is not assigned to a version 'v0.0.1'"
    )


def test_gto_spelling_of_unassign_and_its_refusals(registry: Registry) -> None:
    registry.ok("assign", "m", "--stage", "dev")
    registry.ok("deprecate", "m", "v0.0.1", "dev")
    assert holder(registry, "dev") is None
    assert registry.refused("deprecate", "nope", "v0.0.1", "dev") == "Cannot find artifact 'nope'"
    assert registry.refused("deprecate", "m", "v7.0.0", "dev") == "No versions found for 'm'"
    assert registry.refused("unassign", "m", "HEAD", "dev", "--version", "v0.0.1") == (
        "One and only one of (version, rev) must be specified."
    )


def test_s19_the_automatic_version_can_collide_with_a_deregistered_tag(
    registry: Registry,
) -> None:
    registry.ok("register", "m")
    registry.commit("2")
    registry.ok("register", "m")
    registry.ok("deprecate", "m", "v0.0.2")
    registry.commit("3")
    assert registry.refused("register", "m") == "tag 'm@v0.0.2' already exists"


def test_register_refuses_a_registered_commit_and_a_used_version(registry: Registry) -> None:
    registry.ok("register", "m")
    assert registry.refused("register", "m") == (
        "'m' is already registered in this commit with version 'v0.0.1'"
    )
    assert registry.refused("register", "m", "--force", "--version", "v2.0.0") == (
        "For this REF you can only register v0.0.1"
    )
    registry.commit("2")
    assert registry.refused("register", "m", "--version", "v0.0.1") == (
        "Version 'v0.0.1' already was registered."
    )
    assert registry.refused("register", "m", "no-such-ref") == (
        "unknown Git revision 'no-such-ref'"
    )


def test_s25_counters_count_lightweight_tags_of_the_artifact_only(registry: Registry) -> None:
    head = str(registry.repo.head.target)
    registry.scratch.lightweight("m@v9.9.9", head)
    registry.scratch.lightweight("m#prod#7", head)
    registry.scratch.lightweight("other#prod#40", head)
    registry.ok("assign", "m", "--stage", "prod", "--simple", "false")
    assert "m#prod#8" in registry.tags()
    assert api.show(registry.path)["m"]["version"] == "v0.0.1"


def test_counters_are_shared_by_all_actions_of_an_artifact(registry: Registry) -> None:
    registry.ok("register", "rf")
    registry.ok("register", "nn")
    registry.ok("assign", "rf", "--stage", "production")
    registry.ok("assign", "rf", "--stage", "staging")
    registry.ok("assign", "nn", "--stage", "staging")
    registry.ok("unassign", "rf", "HEAD", "production")
    registry.ok("deprecate", "rf", "--force")
    assert registry.tags() == {
        "rf@v0.0.1",
        "nn@v0.0.1",
        "rf#production#1",
        "rf#staging#2",
        "nn#staging#1",
        "rf#production!#3",
        "rf@deprecated#4",
    }


def test_s27_simple_stage_tags_exist_once(registry: Registry) -> None:
    registry.ok("assign", "m", "--stage", "prod", "--simple", "true")
    registry.ok("deprecate", "m", "v0.0.1", "prod", "--simple", "true")
    assert holder(registry, "prod") is None
    assert registry.refused("assign", "m", "--stage", "prod", "--simple", "true", "--force") == (
        "tag 'm#prod' already exists"
    )
    registry.ok("assign", "m", "--stage", "prod", "--force")
    assert registry.tags() == {"m@v0.0.1", "m#prod", "m#prod!", "m#prod#1"}
    assert holder(registry, "prod") == "v0.0.1"


def test_assign_refuses_before_writing_when_an_sr_stage_becomes_the_new_versions(
    registry: Registry,
) -> None:
    """GTO creates the auto-registration and then refuses; gitstage creates nothing."""
    registry.ok("assign", "m", "--stage", "dev", "--sr")
    registry.ok("assign", "m", "--stage", "dev", "--sr")  # SHA versions are never "in stage"
    assert registry.refused("assign", "m", "--stage", "dev") == (
        "Version 'v0.0.1' is already in stage 'dev'. "
        "Use the '--force' flag to create a new Git tag nevertheless."
    )
    assert registry.tags() == {"m#dev#1", "m#dev#2"}


def test_deregister_refusals(registry: Registry) -> None:
    registry.ok("assign", "m", "--stage", "dev", "--sr")
    assert registry.refused("deregister", "m") == "No versions found for 'm'"
    registry.ok("register", "m")
    registry.ok("deregister", "m")
    assert registry.refused("deregister", "m", "--version", "v0.0.1") == (
        f"The version at ref '{registry.repo.head.target}' was deregistered already"
    )
    assert registry.refused("deregister", "m", "--force", "--version", "v8.0.0") == (
        "Can't deregister a version that have no git tags"
    )


def test_deprecate_twice_needs_force_and_force_forbids_simple(registry: Registry) -> None:
    registry.ok("register", "m")
    registry.ok("deprecate", "m")
    assert registry.refused("deprecate", "m") == "Artifact was deprecated already"
    assert registry.refused("deprecate", "m", "--force", "--simple", "true") == (
        "Can't use 'force' with 'simple=True'"
    )
    registry.ok("deprecate", "m", "--force")
    assert registry.tags() == {"m@v0.0.1", "m@deprecated", "m@deprecated#1"}
    assert str(registry.tag("m@deprecated").target) == str(registry.repo.head.target)
    assert registry.refused("deprecate", "m", "--force", "--ref", "nope") == (
        "Ref 'nope' was not found in the repository history"
    )


def test_delete_variants_remove_exactly_gtos_tag_sets(registry: Registry) -> None:
    registry.ok("assign", "m", "--stage", "dev")
    registry.ok("assign", "m", "--stage", "prod")
    registry.ok("unassign", "m", "HEAD", "dev")
    registry.commit("2")
    registry.ok("assign", "m", "--stage", "dev")
    out = registry.ok("unassign", "m", "--version", "v0.0.1", "dev", "--delete")
    assert out.splitlines()[::3] == ["Deleted git tag 'm#dev#1'", "Deleted git tag 'm#dev!#3'"]
    assert registry.tags() == {"m@v0.0.1", "m#prod#2", "m@v0.0.2", "m#dev#4"}
    registry.ok("deregister", "m", "--version", "v0.0.1", "--delete")
    assert registry.tags() == {"m@v0.0.2", "m#dev#4"}
    registry.ok("deprecate", "m", "--delete")
    assert registry.tags() == set()


@pytest.mark.parametrize(
    ("date", "problem"),
    [
        ("@5 +9999", "the offset's minutes must be under 60"),
        ("@5 +2400", "the UTC offset must be under 24 hours"),
        ("@5 -0099", "the offset's minutes must be under 60"),
        ("@99999999999999 +0000", "dates must fall in the years 1 to 9999"),
    ],
)
def test_a_date_gto_could_not_read_back_is_refused(
    registry: Registry, date: str, problem: str
) -> None:
    # Written, such a tag would make every later gto command on the registry fail.
    assert registry.refused("register", "m", "--date", date) == f"invalid date {date!r}: {problem}"
    registry.ok("register", "m", "--date", "@5 +2359")
    # The raw object: libgit2 reads offsets past 14 hours as 0, git and GTO as written.
    _, raw = registry.repo.read(registry.tag("m@v0.0.1").id)
    assert b"\ntagger Reg Istrar <registrar@example.com> 5 +2359\n" in raw


def test_allowed_stages_come_from_the_work_trees_gto_file(registry: Registry) -> None:
    (registry.path / ".gto").write_text("stages: [dev, prod]\n")
    assert registry.refused("assign", "m", "--stage", "qa") == (
        "Allowed stages are: '['dev', 'prod']'"
    )
    registry.ok("assign", "m", "--stage", "dev")


def test_tagger_options_and_date_are_explicit_and_the_environment_is_untouched(
    registry: Registry,
) -> None:
    environ = dict(os.environ)
    registry.ok(
        "register", "m", "--author", "Ci Bot", "--author-email", "ci@example.com",
        "--date", "2024-01-31T12:00:00+01:00",
    )  # fmt: skip
    tag = registry.tag("m@v0.0.1")
    assert (tag.tagger.name, tag.tagger.email) == ("Ci Bot", "ci@example.com")
    assert (tag.tagger.time, tag.tagger.offset) == (1706698800, 60)
    assert dict(os.environ) == environ
    assert registry.refused("register", "m", "--force", "--date", "yesterday") == (
        "invalid date 'yesterday': use '@EPOCH +HHMM' or ISO 8601 with an offset "
        "(2024-01-31T12:00:00+01:00)"
    )
