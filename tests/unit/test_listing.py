"""The mirror's listing digest: a listing patched from a partial one equals a full listing."""

from __future__ import annotations

from random import Random

import pytest

from gitstage.adapters.mirror.listing import RefState, parse_refs, patched


def oid(rng: Random) -> str:
    return f"{rng.getrandbits(160):040x}"


@pytest.mark.parametrize("seed", range(5))
def test_a_patched_listing_has_the_digest_of_listing_the_result(seed: int) -> None:
    rng = Random(seed)
    names = [f"{a}#{s}#{n}" for a in ("churn", "fraud") for s in ("prod", "dev") for n in range(12)]
    remote = {name: oid(rng) for name in rng.sample(names, 20)}
    known = RefState.of(dict(remote), "a" * 40)
    for _ in range(30):
        for name in rng.sample(names, 3):  # the remote changes...
            if name in remote and rng.random() < 0.4:
                del remote[name]
            else:
                remote[name] = oid(rng)
        # ...and a webhook names some tags: their prefixes are read again, all under them.
        prefixes = [*rng.sample(names, 2), rng.choice(names)[:8]]
        listed = {n: s for n, s in remote.items() if n.startswith(tuple(prefixes))}
        head = rng.choice(["a" * 40, "b" * 40])
        patch = patched(known, prefixes, listed, head)
        expected = {n: s for n, s in known.tags.items() if not n.startswith(tuple(prefixes))}
        expected.update(listed)
        assert dict(patch.refs.tags) == expected
        assert patch.refs.digest == RefState.of(expected, head).digest
        assert patch.changed == {n: s for n, s in listed.items() if known.tags.get(n) != s}
        assert sorted(patch.deleted) == sorted(set(known.tags) - set(expected))
        known = patch.refs
    full = RefState.of(dict(remote), known.head)
    assert (known.digest == full.digest) == (dict(known.tags) == remote)


def test_the_digest_follows_tags_objects_and_the_tip_not_the_order() -> None:
    tags = {"churn@v1": "1" * 40, "churn#prod#1": "2" * 40}
    digest = RefState.of(tags, "a" * 40).digest
    assert RefState.of(dict(reversed(tags.items())), "a" * 40).digest == digest
    assert RefState.of({**tags, "churn@v1": "3" * 40}, "a" * 40).digest != digest
    assert RefState.of(tags, "b" * 40).digest != digest
    assert RefState.of({"churn@v1": "1" * 40}, "a" * 40).digest != digest


def test_parse_refs_keeps_tags_and_the_branch_and_drops_peeled_lines_and_look_alikes() -> None:
    listing = "\n".join(
        [
            "ref: refs/heads/main\tHEAD",
            f"{'a' * 40}\tHEAD",
            f"{'a' * 40}\trefs/heads/main",
            f"{'b' * 40}\trefs/heads/feature/main",
            f"{'c' * 40}\trefs/tags/churn#prod#1",
            f"{'d' * 40}\trefs/tags/churn#prod#1^{{}}",
            f"{'e' * 40} refs/tags/nlp/churn@v1.0.0",  # for-each-ref's separator
        ]
    )
    tags, head = parse_refs(listing, "refs/heads/main")
    assert head == "a" * 40
    assert tags == {"churn#prod#1": "c" * 40, "nlp/churn@v1.0.0": "e" * 40}
    assert parse_refs(listing, "HEAD")[1] == "a" * 40
    assert parse_refs(listing, "refs/heads/other")[1] is None
