"""Checkpoints written in the background: what lands, in which order, and what a failed
write does."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

import unet_lib.checkpoint as checkpoint
from unet_lib.checkpoint import CheckpointWriteError, read_checkpoint
from unet_lib.checkpoint_writer import CheckpointWriter
from unet_lib.models import build_model


def test_a_checkpoint_holds_the_weights_of_when_it_was_saved_not_of_when_it_was_written(
        tmp_path, monkeypatch):
    model = build_model("classic", base_filters=4)
    history = [{"epoch": 1}]
    release = threading.Event()
    real_write = checkpoint.write_checkpoint
    monkeypatch.setattr(checkpoint, "write_checkpoint",  # held until the model has changed
                        lambda *a, **k: (release.wait(10), real_write(*a, **k))[1])
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with CheckpointWriter() as writer:
        writer.save(tmp_path / "last.pt", model, epoch=1, history=history)
        with torch.no_grad():  # the next epoch trains on
            for parameter in model.parameters():
                parameter.add_(1.0)
        history.append({"epoch": 2})
        release.set()
    written = read_checkpoint(tmp_path / "last.pt")
    assert written["epoch"] == 1 and written["history"] == [{"epoch": 1}]
    assert all(torch.equal(written["model_state"][k], saved[k]) for k in saved)


def test_writes_land_in_the_order_they_were_saved(tmp_path, monkeypatch):
    landed = []
    real_write = checkpoint.write_checkpoint
    monkeypatch.setattr(checkpoint, "write_checkpoint",
                        lambda path, *a, **k: (landed.append(Path(path).name),
                                               real_write(path, *a, **k))[1])
    model = build_model("classic", base_filters=4)
    with CheckpointWriter() as writer:
        for epoch in range(1, 4):
            writer.save(tmp_path / "best.pt", model, epoch=epoch)
            writer.save(tmp_path / "last.pt", model, epoch=epoch)
    assert landed == ["best.pt", "last.pt"] * 3
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 3


def test_a_failed_write_is_raised_and_leaves_the_previous_file(tmp_path, monkeypatch):
    model = build_model("classic", base_filters=4)
    checkpoint.save_checkpoint(tmp_path / "last.pt", model, epoch=1)
    before = (tmp_path / "last.pt").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkstemp", full_disk)
    with pytest.raises(CheckpointWriteError, match="last.pt: cannot be written"):
        with CheckpointWriter() as writer:
            writer.save(tmp_path / "last.pt", model, epoch=2)
    assert (tmp_path / "last.pt").read_bytes() == before


def test_an_error_in_training_goes_on_and_the_queued_write_still_lands(tmp_path):
    model = build_model("classic", base_filters=4)
    with pytest.raises(KeyboardInterrupt):
        with CheckpointWriter() as writer:
            writer.save(tmp_path / "last.pt", model, epoch=5)
            raise KeyboardInterrupt
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 5


def test_without_background_a_checkpoint_is_on_the_disk_when_save_returns(tmp_path):
    model = build_model("classic", base_filters=4)
    with CheckpointWriter(background=False) as writer:
        writer.save(tmp_path / "last.pt", model, epoch=3)
        assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 3


def test_a_write_that_fails_while_training_stops_for_another_reason_is_still_reported(
        tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkstemp", full_disk)
    with pytest.warns(RuntimeWarning, match="last.pt: cannot be written"):
        with pytest.raises(KeyboardInterrupt):
            with CheckpointWriter() as writer:
                writer.save(tmp_path / "last.pt", build_model("classic", base_filters=4))
                raise KeyboardInterrupt


def test_one_save_writes_several_files_in_order(tmp_path):
    model = build_model("classic", base_filters=4)
    with CheckpointWriter() as writer:
        writer.save([tmp_path / "best.pt", tmp_path / "last.pt"], model, epoch=4)
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 4
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 4


def test_a_model_compiled_by_its_user_is_saved_as_the_u_net_it_wraps(tmp_path):
    from unet_lib.checkpoint import checkpoint_payload, model_from_checkpoint, write_checkpoint

    torch.manual_seed(0)
    model = build_model("classic", base_filters=4)
    compiled = torch.compile(model)  # wraps it; nothing is compiled until it is called
    payload = checkpoint_payload(compiled, epoch=1)
    assert not any(key.startswith("_orig_mod.") for key in payload["model_state"])
    write_checkpoint(tmp_path / "best.pt", payload)
    back = model_from_checkpoint(read_checkpoint(tmp_path / "best.pt"))
    for name, weight in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], weight)


@pytest.mark.parametrize("background", [True, False])
def test_best_and_last_are_serialized_once_and_hold_the_same_bytes(tmp_path, monkeypatch,
                                                                   background):
    saved = []
    real_save = checkpoint.torch.save
    monkeypatch.setattr(checkpoint.torch, "save",
                        lambda *a, **k: (saved.append(1), real_save(*a, **k))[1])
    with CheckpointWriter(background=background) as writer:
        writer.save([tmp_path / "best.pt", tmp_path / "last.pt"],
                    build_model("classic", base_filters=4), epoch=1)
    assert len(saved) == 1  # one copy of ~93 MB (full size), not one per file
    assert (tmp_path / "best.pt").read_bytes() == (tmp_path / "last.pt").read_bytes()


def test_a_payload_torch_cannot_save_is_its_own_error_not_a_full_disk(tmp_path, monkeypatch):
    model = build_model("classic", base_filters=4)
    checkpoint.save_checkpoint(tmp_path / "last.pt", model, epoch=1)
    before = (tmp_path / "last.pt").read_bytes()

    def cannot_pickle(*args, **kwargs):
        raise RuntimeError("cannot pickle this")

    monkeypatch.setattr(checkpoint.torch, "save", cannot_pickle)
    with pytest.raises(RuntimeError, match="cannot pickle this") as raised:
        checkpoint.save_checkpoint(tmp_path / "last.pt", model, epoch=2)
    assert not isinstance(raised.value, checkpoint.CheckpointWriteError)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary left
