"""The pydantic model refuses every hostile spec the CRD refuses (tests/e2e/test_operator.py
feeds the same specs to the API server), and accepts the valid one."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gitstage.resources import v1alpha1 as v1
from gitstage.workloads import fetcher_transport, render
from tests.support.hostile_specs import HOSTILE, VALID


def test_the_valid_spec_is_accepted() -> None:
    assert v1.ModelRegistrySpec.model_validate(VALID).deployments[0].replicas == 2


@pytest.mark.parametrize("spec", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.fault
def test_a_hostile_spec_is_refused_by_the_model(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        v1.ModelRegistrySpec.model_validate(spec)


def test_the_reserved_names_are_the_ones_the_rendered_pod_uses() -> None:
    assert v1.RESERVED_CONTAINER == render.FETCHER_NAME
    rendered = {render.MODEL_VOLUME, render.TMP_VOLUME, fetcher_transport.CA_VOLUME}
    assert set(v1.RESERVED_VOLUMES) == rendered
    assert render.SCRATCH_DIR == v1.FETCHER_SCRATCH


def test_durations_are_read_as_go_reads_them() -> None:
    assert v1.duration_seconds("1m30s") == 90
    assert v1.duration_seconds("500ms") == 0.5
    assert v1.duration_seconds("1.5h") == 5400
