"""PyTorch's CPU threads are kept within the CPUs this process may use (a JupyterHub pod's
CPU quota, which PyTorch's own count ignores): more threads than CPUs, and each step waits."""

from __future__ import annotations

import pytest
import torch

import unet_lib.parallel as parallel
from unet_lib.runtime import THREAD_VARIABLES, threads_within_usable_cores


@pytest.fixture
def four_threads_on_two_cores(monkeypatch):
    """PyTorch set to 4 threads where 2 cores may be used; its own count is restored after."""
    before = torch.get_num_threads()
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def test_more_threads_than_usable_cores_are_lowered_to_the_cores_and_said(
        four_threads_on_two_cores):
    said = []
    assert threads_within_usable_cores(said.append) == 2
    assert torch.get_num_threads() == 2
    assert len(said) == 1 and "4 threads on the 2 CPUs" in said[0], said
    assert "OMP_NUM_THREADS" in said[0]  # how to choose otherwise
    # called again (each chapter's setup calls it): nothing left to change, nothing said
    assert threads_within_usable_cores(said.append) is None and len(said) == 1


@pytest.mark.parametrize("variable", THREAD_VARIABLES)
def test_threads_a_user_chose_are_kept(four_threads_on_two_cores, monkeypatch, variable):
    monkeypatch.setenv(variable, "4")
    said = []
    assert threads_within_usable_cores(said.append) is None
    assert torch.get_num_threads() == 4 and not said


def test_fewer_threads_than_cores_are_left_as_they_are(four_threads_on_two_cores):
    torch.set_num_threads(1)  # PyTorch counts physical cores: fewer than a machine's CPUs
    assert threads_within_usable_cores(lambda line: pytest.fail(line)) is None
    assert torch.get_num_threads() == 1


def test_the_command_line_keeps_its_threads_within_the_cores_and_notes_it(
        four_threads_on_two_cores, tmp_path, capsys):
    from unet_lib.cli import main

    assert main(["phantom", "--out", str(tmp_path / "ph"), "--image-size", "16",
                 "--n-volumes", "2", "--n-slices", "2"]) == 0
    assert torch.get_num_threads() == 2
    assert "note: PyTorch would compute with 4 threads" in capsys.readouterr().err


def test_each_notebooks_setup_keeps_its_threads_within_the_cores(four_threads_on_two_cores,
                                                                 phantom_root, tmp_path,
                                                                 monkeypatch, capsys):
    import unet_course as course

    monkeypatch.setenv(course.HOME_VARIABLE, str(tmp_path))
    course.setup("quick", data=phantom_root, image_size=32, max_volumes=4)
    assert torch.get_num_threads() == 2
    assert "PyTorch would compute with 4 threads" in capsys.readouterr().out
