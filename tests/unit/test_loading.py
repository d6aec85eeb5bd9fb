"""How `api.load` picks a loader: loader=, custom.gitstage.loader, type, then the extension."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from gitstage.domain.registry.index import ArtifactAnnotation
from gitstage.loading import LoaderError, choose_loader, load_file


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps({"w": 1}))
    return path


def test_the_entry_or_the_caller_names_the_loader(model: Path) -> None:
    declared = ArtifactAnnotation(custom={"gitstage": {"loader": "pickle"}})
    assert load_file(model, declared) == {"w": 1}
    assert load_file(model, ArtifactAnnotation(type="pickle")) == {"w": 1}
    assert load_file(model, None, "pickle") == {"w": 1}


def test_the_extension_decides_without_a_declaration(model: Path) -> None:
    renamed = model.rename(model.with_suffix(".pkl"))
    assert load_file(renamed, ArtifactAnnotation(type="model")) == {"w": 1}


def test_no_loader_is_one_clear_error(model: Path) -> None:
    with pytest.raises(LoaderError, match=r"no loader for model\.bin: set custom\.gitstage"):
        choose_loader(model, ArtifactAnnotation(type="model"))
    with pytest.raises(LoaderError, match="names loader 'onnx', which is not installed"):
        choose_loader(model, ArtifactAnnotation(custom={"gitstage": {"loader": "onnx"}}))
    with pytest.raises(LoaderError, match="no loader named 'nope'"):
        choose_loader(model, None, "nope")
    with pytest.raises(LoaderError, match="no loader for"):
        choose_loader(model.parent, None)  # a directory artifact needs a declared loader
