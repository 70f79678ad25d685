"""The course warns, naming both versions, when the kernel's PyTorch is older than the one
pyproject.toml asks for (a Colab ``pip install --no-deps`` keeps the runtime's own)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

import unet_course as course
from unet_course.settings import OLDEST_TORCH, torch_release, warn_if_torch_is_older

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("version, release", [("2.13.0+cpu", (2, 13)), ("2.9.1", (2, 9)),
                                              ("2.12.0a0+git1234", (2, 12)),
                                              ("2.10.0.dev20250101", (2, 10)), ("3.0", (3, 0)),
                                              ("2.1a0", (2, 1)), ("2", None), ("nightly", None)])
def test_a_version_string_gives_its_major_and_minor(version, release):
    assert torch_release(version) == release


def test_the_oldest_torch_is_the_one_pyproject_asks_for():
    asked = re.findall(r'^\s*"torch\s*>=\s*(\d+)\.(\d+)[^"]*",?$',
                       (ROOT / "pyproject.toml").read_text(), flags=re.MULTILINE)
    assert [tuple(map(int, pair)) for pair in asked] == [OLDEST_TORCH]


def test_an_older_torch_is_warned_about_a_supported_one_is_not():
    with pytest.warns(UserWarning, match=r"PyTorch 2\.9\.1\+cu121 is older than 2\.11, the "
                                         r"oldest this course is tested with"):
        assert warn_if_torch_is_older("2.9.1+cu121")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_torch_is_older("2.11.0")
        assert not warn_if_torch_is_older("2.13.0+cpu")
        assert not warn_if_torch_is_older("3.0.0")
        assert not warn_if_torch_is_older("unknown")  # nothing to compare: setup goes on


def test_setup_checks_the_kernels_torch_first(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.8.0")
    with pytest.warns(UserWarning, match=r"PyTorch 2\.8\.0 is older"):
        with pytest.raises(FileNotFoundError, match="no such data folder"):  # then goes on
            course.setup("quick", data=ROOT / "no-such-folder")
