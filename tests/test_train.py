"""Training with the slides' settings: the config, learning, evaluation, checkpoints, resume."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.utils.data import Subset

from unet_lib.checkpoint import (CheckpointError, load_model, read_checkpoint, save_checkpoint,
                                 write_checkpoint)
from unet_lib.models import build_model
from unet_lib.train import (TrainConfig, TrainingDiverged, evaluate, fit, make_loss,
                             make_optimizer, predict)

# The stated result of the session's quick training run (tests/conftest.py: 6 epochs of a
# 16-filter Classic U-Net on 9 phantom volumes of 64×64, tumour pixels weighted (5, 2, 5)) on
# the 3 held-out volumes. Measured: WT 0.90, ED 0.74, TC 0.68, ET 0.33.
STATED_WT_DICE = 0.75
STATED_ED_DICE = 0.65
STATED_TC_DICE = 0.5


def test_config_defaults_are_the_slides_values():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.lr, config.weight_decay, config.lr_gamma,
            config.image_size, config.base_filters) == (20, 32, 2e-3, 1e-2, 0.9, 240, 32)


def test_optimizer_is_adamw_with_the_slides_decay_and_plain_adam_on_request():
    model = build_model("classic", base_filters=4)
    adamw = make_optimizer(model, TrainConfig())
    assert type(adamw) is torch.optim.AdamW
    assert adamw.defaults["weight_decay"] == 1e-2 and adamw.defaults["lr"] == 2e-3
    assert type(make_optimizer(model, TrainConfig(optimizer="adam"))) is torch.optim.Adam
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        make_optimizer(model, TrainConfig(optimizer="sgd"))


def test_pos_weight_multiplies_the_loss_of_tumour_pixels_per_channel():
    logits = torch.zeros(1, 3, 1, 2)  # p = 0.5 everywhere: BCE = log 2 per pixel
    target = torch.tensor([[[[1.0, 0.0]], [[1.0, 0.0]], [[1.0, 0.0]]]])
    plain = make_loss(TrainConfig())(logits, target).item()
    weighted = make_loss(TrainConfig(pos_weight=(5.0, 2.0, 5.0)))(logits, target).item()
    log2 = torch.log(torch.tensor(2.0)).item()
    assert plain == pytest.approx(log2)
    # per channel: (w·log 2 + log 2) / 2, averaged over the three channels
    assert weighted == pytest.approx(((5 + 1) + (2 + 1) + (5 + 1)) / 6 * log2)
    assert TrainConfig().pos_weight is None and TrainConfig.quick().pos_weight is None
    assert TrainConfig().tumour_share is None and TrainConfig.quick().tumour_share == 0.8


def test_training_lowers_the_loss_and_reaches_the_stated_dice_on_held_out_volumes(trained,
                                                                                   datasets):
    model, history = trained
    losses = history["train_loss"]
    assert len(history) == 6
    assert losses[-1] < 0.5 * losses[0]
    result = evaluate(model, datasets[1])
    assert result["dice"]["WT"] >= STATED_WT_DICE
    assert result["dice"]["ED"] >= STATED_ED_DICE
    assert result["dice"]["TC"] >= STATED_TC_DICE
    assert result["dice"] == history.records[-1]["val"]["dice"]
    # every label and region, ET and NCR/NET too, beats marking the whole slice as tumour:
    # Dice 2T / (P + T) for T tumour pixels of P, counted here from the masks
    masks = torch.stack([datasets[1][i][1] for i in range(len(datasets[1]))]) > 0.5
    ncr, ed, et = masks[:, 0], masks[:, 1], masks[:, 2]
    for name, truth in {"NCR/NET": ncr, "ED": ed, "ET": et, "WT": ncr | ed | et,
                        "TC": ncr | et}.items():
        tumour, pixels = truth.sum().item(), truth.numel()
        assert result["dice"][name] > 2 * tumour / (pixels + tumour), name


def test_learning_rate_decays_by_gamma_each_epoch(trained):
    from unet_lib.schedule import rate_of

    _, history = trained
    lrs = history["lr"]
    assert lrs[0] == pytest.approx(2e-3)
    assert all(b == pytest.approx(a * 0.9) for a, b in zip(lrs, lrs[1:]))
    config = TrainConfig()
    assert [rate_of(epoch, config) for epoch in range(1, len(lrs) + 1)] == pytest.approx(lrs)


def test_fit_refuses_empty_data_before_training(datasets, tmp_path):
    model = build_model("classic", base_filters=4)
    empty = torch.utils.data.Subset(datasets[1], [])
    with pytest.raises(ValueError, match="val_data holds no sample"):
        fit(model, datasets[0], empty, TrainConfig.quick(epochs=1, base_filters=4),
            checkpoint_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_history_has_loss_and_per_channel_validation_scores(trained):
    _, history = trained
    record = history.records[-1]
    assert set(record) >= {"epoch", "lr", "train_loss", "val_loss", "val", "seconds"}
    for metric in ("dice", "precision", "recall"):
        assert list(record["val"][metric]) == ["NCR/NET", "ED", "ET", "WT", "TC"]
    assert len(history["val_dice"]) == 6


def test_checkpoint_round_trip_gives_identical_predictions(trained, datasets, tmp_path):
    model, _ = trained
    save_checkpoint(tmp_path / "model.pt", model)
    loaded = load_model(tmp_path / "model.pt")
    assert loaded.preset_name == "classic"
    images = torch.stack([datasets[1][i][0] for i in range(8)])
    assert torch.equal(predict(model, images), predict(loaded, images))


def test_attention_checkpoint_still_returns_attention_maps(tmp_path):
    model = build_model("attention", base_filters=4).eval()
    save_checkpoint(tmp_path / "a.pt", model)
    _, maps = load_model(tmp_path / "a.pt")(torch.zeros(1, 4, 32, 32), return_attention=True)
    assert len(maps) == 4


def tiny(datasets, n=24):
    return Subset(datasets[0], range(0, 4 * n, 4)), Subset(datasets[1], range(0, 2 * n, 6))


def test_resume_continues_to_the_same_weights_and_history_as_one_run(datasets, tmp_path):
    config = TrainConfig.quick(epochs=3, base_filters=4, batch_size=8)
    train, val = tiny(datasets)

    torch.manual_seed(0)
    straight = build_model("improved", base_filters=4)
    fit(straight, train, val, config, checkpoint_dir=tmp_path / "straight", progress=False)

    torch.manual_seed(0)
    first = build_model("improved", base_filters=4)
    fit(first, train, val, dataclasses.replace(config, epochs=2),
        checkpoint_dir=tmp_path / "resumed", progress=False)
    torch.manual_seed(123)  # a different state must not matter: resume restores it
    second = build_model("improved", base_filters=4)
    history = fit(second, train, val, config, checkpoint_dir=tmp_path / "resumed",
                  resume=True, progress=False)

    assert len(history) == 3
    for a, b in zip(straight.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    done = read_checkpoint(tmp_path / "straight" / "last.pt")["history"]
    assert [r["train_loss"] for r in done] == history["train_loss"]

    # the run folder's history.csv: every epoch, the resumed ones too, as the history holds it
    import csv

    rows = list(csv.DictReader((tmp_path / "resumed" / "history.csv").open(newline="")))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    for row, record in zip(rows, history.records):
        assert float(row["train_loss"]) == record["train_loss"]
        assert float(row["val_loss"]) == record["val_loss"]
        assert float(row["lr"]) == record["lr"]
        for score in ("dice", "precision", "recall"):
            for name in ("NCR/NET", "ED", "ET", "WT", "TC"):
                assert float(row[f"val_{score}_{name}"]) == record["val"][score][name]
        assert int(row["skipped"]) == 0


def test_resume_with_another_architecture_is_a_clear_error(datasets, tmp_path):
    train, val = tiny(datasets, 8)
    fit(build_model("classic", base_filters=4), train, None,
        TrainConfig.quick(epochs=1, batch_size=8), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"last.pt: saved from the classic U-Net, which differs from the model given, the "
                                               r"attention U-Net"):
        fit(build_model("attention", base_filters=4), train, None,
            TrainConfig.quick(epochs=2, batch_size=8), checkpoint_dir=tmp_path, resume=True,
            progress=False)


def test_resuming_from_a_model_without_its_training_state_is_a_clear_error(datasets, tmp_path):
    # a best.pt (or a model saved by hand) copied to last.pt: weights, but no optimizer,
    # schedule, epoch or history to go on from
    train, _ = tiny(datasets, 8)
    model = build_model("classic", base_filters=4)
    save_checkpoint(tmp_path / "last.pt", model)
    with pytest.raises(CheckpointError, match=r"last.pt: holds a model but not the training "
                       r"state to resume from \(no optimizer_state, .*history.*\); it can be "
                       r"evaluated, not resumed"):
        fit(model, train, None, TrainConfig.quick(epochs=2, batch_size=8),
            checkpoint_dir=tmp_path, resume=True, progress=False)


def test_corrupted_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_model("classic", base_filters=4))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=r"model.pt: cannot be read as a checkpoint"):
        load_model(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(CheckpointError, match="not a unet_lib checkpoint"):
        load_model(path)


def test_a_file_that_is_no_checkpoint_at_all_is_called_so_not_unsafe(tmp_path):
    for content in (b"\x00" * 4096, bytes(range(256)) * 20, b'{"model": "classic"}'):
        (tmp_path / "other.pt").write_bytes(content)
        with pytest.raises(CheckpointError) as caught:
            load_model(tmp_path / "other.pt")
        assert "not the zip archive torch.save writes" in str(caught.value)
        assert "trust" not in str(caught.value)  # no advice to load it unsafely
    save_checkpoint(tmp_path / "run" / "last.pt", build_model("classic", base_filters=4))
    with pytest.raises(FileNotFoundError, match="is a folder, not a checkpoint file; its model "
                                                "is in best.pt"):
        load_model(tmp_path / "run")


def test_a_nan_loss_stops_training_with_a_clear_message_keeping_the_last_checkpoint(
        datasets, tmp_path):
    train, _ = tiny(datasets, 8)  # one step an epoch
    model = build_model("classic", base_filters=4)
    steps = []

    def nan_from_the_second_step(module, inputs, output):
        steps.append(1)
        return output * float("nan") if len(steps) > 1 else output

    model.register_forward_hook(nan_from_the_second_step)
    with pytest.raises(TrainingDiverged, match=r"loss became nan in epoch 2.*resume with a "
                                               r"lower --lr.*last.pt"):
        fit(model, train, None, TrainConfig.quick(epochs=3, batch_size=8),
            checkpoint_dir=tmp_path, progress=False)
    state = read_checkpoint(tmp_path / "last.pt")  # epoch 1's, the last good one
    assert state["epoch"] == 1 and all(torch.isfinite(v).all()
                                       for v in state["model_state"].values())


def test_a_nan_loss_in_the_first_epoch_says_to_run_again_not_to_resume(datasets, tmp_path):
    train, _ = tiny(datasets, 8)
    model = build_model("classic", base_filters=4)
    model.register_forward_hook(lambda module, inputs, output: output * float("nan"))
    with pytest.raises(TrainingDiverged) as caught:
        fit(model, train, None, TrainConfig.quick(epochs=2, batch_size=8),
            checkpoint_dir=tmp_path / "run", progress=False)
    assert "no epoch finished, so run again with a lower --lr, without --resume" in str(
        caught.value)
    assert "last good state" not in str(caught.value)
    with pytest.raises(TrainingDiverged) as caught:  # no folder: nothing saved, whatever epoch
        fit(model, train, None, TrainConfig.quick(epochs=2, batch_size=8), progress=False)
    assert "nothing was saved, as no checkpoint folder was given" in str(caught.value)


def test_channels_last_trains_to_the_same_loss(datasets):
    train, _ = tiny(datasets, 8)
    losses = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        history = fit(build_model("classic", base_filters=4), train, None,
                      TrainConfig.quick(epochs=1, batch_size=8, channels_last=channels_last),
                      progress=False)
        losses.append(history["train_loss"][0])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_validation_feeds_images_in_the_layout_the_model_trains_in(datasets):
    from unet_lib.runtime import layout_of

    train, val = tiny(datasets, 8)
    for channels_last in (True, False):
        model = build_model("classic", base_filters=4)
        seen = []  # (training?, NHWC?) of each batch the model is given
        model.register_forward_pre_hook(lambda module, args: seen.append(
            (module.training, args[0].is_contiguous(memory_format=torch.channels_last))))
        fit(model, train, val, TrainConfig.quick(epochs=1, batch_size=4, base_filters=4,
                                                 channels_last=channels_last), progress=False)
        validation = [nhwc for training, nhwc in seen if not training]
        assert validation and all(nhwc == channels_last for nhwc in validation), seen
        wanted = torch.channels_last if channels_last else torch.contiguous_format
        assert layout_of(model) == wanted  # fit() leaves the model in the layout it trained in


def test_a_compile_failure_falls_back_to_eager_with_a_warning(datasets, monkeypatch):
    train, _ = tiny(datasets, 8)

    asked = []

    def compile_that_fails_at_the_first_call(model, **options):
        asked.append(options)

        def broken(*args, **kwargs):
            raise RuntimeError("no C++ compiler found")
        return broken

    monkeypatch.setattr(torch, "compile", compile_that_fails_at_the_first_call)
    torch.manual_seed(0)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*no C\\+\\+ compiler"):
        history = fit(build_model("classic", base_filters=4), train, None,
                      TrainConfig.quick(epochs=1, batch_size=8, compile=True), progress=False)
    assert len(history) == 1
    assert asked == [{"dynamic": False}]  # a smaller last batch compiles once more, statically


def test_warm_up_raises_the_rate_step_by_step_and_keeps_the_decay_chain(datasets, monkeypatch):
    from unet_lib import train as train_module

    seen = []
    real = train_module.warm_up

    def recording(optimizer, rate, step, steps):
        real(optimizer, rate, step, steps)
        seen.append((step, steps, optimizer.param_groups[0]["lr"]))

    monkeypatch.setattr(train_module, "warm_up", recording)
    train, val = tiny(datasets, 16)  # 16 slices, batch 8: 2 steps per epoch
    config = TrainConfig.quick(epochs=3, base_filters=4, batch_size=8, warmup_epochs=2,
                               lr=1e-3, lr_gamma=0.5, tumour_share=None)
    history = fit(build_model("classic", base_filters=4), train, val, config, progress=False)
    # warm-up over 2 epochs × 2 steps: rate · step / 4, with epoch 2's rate already decayed
    assert [s[:2] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [s[2] for s in seen] == pytest.approx([1e-3 / 4, 2e-3 / 4, 0.5e-3 * 3 / 4, 0.5e-3])
    assert history["lr"] == pytest.approx([1e-3, 0.5e-3, 0.25e-3])  # the schedule is untouched


def test_running_sums_stay_on_a_cuda_gpu_and_go_to_the_cpu_elsewhere():
    from unet_lib.runtime import tally_device

    # a CUDA GPU keeps its sums (no wait per step); Apple's MPS has no float64: the CPU sums
    assert tally_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    for elsewhere in ("cpu", "mps", "meta"):
        assert tally_device(torch.device(elsewhere)) == torch.device("cpu")


def test_the_layout_is_nhwc_by_default_on_a_cuda_gpu_only_and_as_asked_otherwise():
    from unet_lib.runtime import memory_format

    # fit() and fit_vs_step's bare step both decide here: the step once timed NCHW while fit()
    # trained NHWC, and fit() read 140 % of "its" step rate (H200, 2026-11-27)
    assert memory_format(None, torch.device("cuda")) == torch.channels_last
    for elsewhere in ("cpu", "mps"):
        assert memory_format(None, torch.device(elsewhere)) == torch.contiguous_format
    for device in ("cuda", "cpu"):
        assert memory_format(True, torch.device(device)) == torch.channels_last
        assert memory_format(False, torch.device(device)) == torch.contiguous_format


def test_validation_reads_with_the_workers_the_config_asks_for(datasets, monkeypatch):
    import unet_lib.train as train

    asked = []
    real_evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: (asked.append(k.get("num_workers")),
                                                            real_evaluate(*a, **k))[1])
    config = TrainConfig.quick(epochs=1, base_filters=4, batch_size=8, num_workers=1,
                               resident_data=False)
    fit(build_model("classic", base_filters=4), torch.utils.data.Subset(datasets[0], range(8)),
        torch.utils.data.Subset(datasets[1], range(8)), config, progress=False)
    assert asked == [1]  # the setting, not the default rule: a user who turned the workers
    # off (num_workers=0, for a small /dev/shm) keeps them off in validation too


def _step_with(model, optimizer, grads):
    """One optimizer step with the given gradients, each in its parameter's layout."""
    for parameter, grad in zip(model.parameters(), grads):
        parameter.grad = torch.empty_like(parameter).copy_(grad)
    optimizer.step()


@pytest.mark.parametrize("saved_fused", [True, False])
def test_a_resumed_optimizer_steps_as_the_run_that_saved_it_would_have(saved_fused):
    import copy

    from unet_lib.resume import align_optimizer_state

    torch.manual_seed(0)
    # saved on a GPU: channels_last weights and moments (fused there, or a run from before)
    saving = build_model("classic", base_filters=4).to(memory_format=torch.channels_last)
    before = torch.optim.AdamW(saving.parameters(), lr=2e-3, weight_decay=1e-2,
                               fused=saved_fused or None)
    grads = [[torch.randn(p.shape) for p in saving.parameters()] for _ in range(3)]
    for step_grads in grads[:2]:
        _step_with(saving, before, step_grads)
    weights, state = copy.deepcopy(saving.state_dict()), copy.deepcopy(before.state_dict())
    _step_with(saving, before, grads[2])  # what the run would have done next

    # resumed in NCHW, by an optimizer made the other way (fused here stands for a GPU's)
    resuming = build_model("classic", base_filters=4)
    resuming.load_state_dict(weights)
    after = torch.optim.AdamW(resuming.parameters(), lr=2e-3, weight_decay=1e-2,
                              fused=(not saved_fused) or None)
    after.load_state_dict(state)
    align_optimizer_state(after)
    assert bool(after.param_groups[0]["fused"]) is not saved_fused  # this run's choice
    _step_with(resuming, after, grads[2])
    for (name, a), b in zip(saving.state_dict().items(), resuming.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


class _NoteAutotuning(torch.autograd.Function):
    """Passes its input through and notes, forward and backward (where its input needs a
    gradient), the batch size and whether cuDNN's autotuning is on at that moment."""
    noted: list = []

    @staticmethod
    def forward(ctx, images):
        _NoteAutotuning.noted.append(("forward", len(images), torch.backends.cudnn.benchmark))
        return images.clone()

    @staticmethod
    def backward(ctx, grad):
        _NoteAutotuning.noted.append(("backward", len(grad), torch.backends.cudnn.benchmark))
        return grad


class _NotingModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 3, 1)

    def forward(self, images):
        return _NoteAutotuning.apply(self.conv(images))


def test_cudnn_tunes_full_batches_only_in_training_and_validation(datasets, monkeypatch):
    # 10 training slices in batches of 4 end with 2; 6 validation slices with 2
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # as fit sets it on CUDA
    train, val = Subset(datasets[0], range(10)), Subset(datasets[1], range(6))
    _NoteAutotuning.noted = []
    fit(_NotingModel(), train, val, TrainConfig.quick(epochs=1, batch_size=4, tumour_share=None),
        progress=False)
    assert sorted(_NoteAutotuning.noted[:6]) == sorted([("forward", 4, True), ("backward", 4, True)] * 2
                                      + [("forward", 2, False), ("backward", 2, False)])
    assert _NoteAutotuning.noted[6:] == [("forward", 4, True), ("forward", 2, False)]
    assert torch.backends.cudnn.benchmark is True  # back as it was


def test_resuming_with_fewer_epochs_than_trained_is_refused_and_none_left_is_said(datasets,
                                                                                  tmp_path,
                                                                                  capsys):
    from unet_lib.config import ConfigError

    train, val = tiny(datasets, 8)
    config = TrainConfig.quick(epochs=2, base_filters=4, batch_size=8)
    fit(build_model("classic", base_filters=4), train, val, config, checkpoint_dir=tmp_path,
        progress=False)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match=r"epochs.*is 1, but .*last.pt has trained 2 epochs"):
        fit(build_model("classic", base_filters=4), train, val,
            dataclasses.replace(config, epochs=1), checkpoint_dir=tmp_path, resume=True,
            progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before
    history = fit(build_model("classic", base_filters=4), train, val, config,
                  checkpoint_dir=tmp_path, resume=True, progress="epochs")
    assert len(history) == 2 and "all 2 epochs are trained already" in capsys.readouterr().out


def test_checkpoints_of_a_model_of_ones_own_are_refused_before_any_training(datasets, tmp_path):
    train, val = tiny(datasets, 8)
    config = TrainConfig.quick(epochs=1, batch_size=8)
    mine = torch.nn.Conv2d(4, 3, 3, padding=1)
    before = mine.weight.detach().clone()
    with pytest.raises(TypeError, match="checkpoint_dir: .*not a Conv2d.*checkpoint_dir=None"):
        fit(mine, train, val, config, checkpoint_dir=tmp_path / "run", progress=False)
    assert torch.equal(mine.weight, before) and not (tmp_path / "run").exists()
    assert len(fit(mine, train, val, config, progress=False)) == 1  # without: it trains


def test_a_run_without_validation_volumes_is_refused_naming_fit_without_them():
    from unet_lib.config import ConfigError

    with pytest.raises(ConfigError, match=r"val_fraction: must be in \(0, 1\).*val_data=None"):
        TrainConfig(val_fraction=0).validate()
    # each share fine alone, together every volume: named as both front doors can read it
    with pytest.raises(ConfigError, match=r"^val_fraction: 0.5, with a test fraction of 0.5, "
                                          r"holds out all the volumes"):
        TrainConfig(val_fraction=0.5, test_fraction=0.5).validate()


def test_a_warm_up_as_long_as_the_run_is_refused():
    from unet_lib.config import ConfigError

    with pytest.raises(ConfigError, match=r"^warmup_epochs: must be fewer than the 5 epochs, "
                                          r"or the learning rate never reaches its scheduled "
                                          r"value, got 5"):
        TrainConfig(epochs=5, warmup_epochs=5).validate()
    TrainConfig(epochs=5, warmup_epochs=4).validate()


def test_a_gpu_that_only_emulates_bfloat16_gets_float16(monkeypatch):
    from unet_lib.runtime import autocast_dtype

    # as torch answers on a T4 or V100: bfloat16 tensors exist, its arithmetic is emulated
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation)
    assert autocast_dtype(torch.device("cuda"), amp=True) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert autocast_dtype(torch.device("cuda"), amp=True) == torch.bfloat16  # Ampere on
    assert autocast_dtype(torch.device("cuda"), amp=False) is None


def test_scoring_leaves_a_model_in_the_mode_it_was_in(datasets):
    _, val = tiny(datasets, 4)
    model = build_model("improved", base_filters=4).train()  # batch norm: mode matters
    evaluate(model, val, batch_size=4)
    assert model.training  # a custom training loop's model keeps training its batch norm
    evaluate(model.eval(), val, batch_size=4)
    assert not model.training


def validation_scores_are(monkeypatch, dice: list[dict]) -> None:
    """Make ``fit``'s validation give these Dice scores, one dict an epoch (nothing scored)."""
    import unet_lib.train as train

    scored = iter(dice)
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: {
        "loss": 0.1, "skipped": [], "dice": next(scored), "precision": {}, "recall": {}})


def fit_tiny_classic(datasets, folder, epochs: int, resume: bool = False):
    """A tiny Classic U-Net trained for ``epochs`` epochs into ``folder``."""
    train_set, val_set = tiny(datasets, 8)
    config = TrainConfig.quick(epochs=epochs, base_filters=4, batch_size=8)
    return fit(build_model("classic", base_filters=4), train_set, val_set, config,
               checkpoint_dir=folder, resume=resume, progress=False)


def test_best_pt_keeps_the_epoch_of_the_best_mean_dice_over_wt_tc_and_et(datasets, tmp_path,
                                                                        monkeypatch):
    # Epoch 2 has the best mean over all five scores (0.60 against 0.48 and 0.48), epoch 1
    # the best over the regions BraTS ranks on: WT, TC, ET (0.70 against 0.40 and 0.60).
    validation_scores_are(monkeypatch, [
        {"NCR/NET": 0.1, "ED": 0.2, "ET": 0.6, "WT": 0.9, "TC": 0.6},
        {"NCR/NET": 0.9, "ED": 0.9, "ET": 0.2, "WT": 0.6, "TC": 0.4},
        {"NCR/NET": 0.3, "ED": 0.3, "ET": 0.5, "WT": 0.8, "TC": 0.5}])
    fit_tiny_classic(datasets, tmp_path, epochs=2)
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    # a run saved under the old rule kept epoch 2; resumed, the third epoch (0.60) has to beat
    # that model's 0.40, not the best of the history (0.70), to replace it
    state = read_checkpoint(tmp_path / "last.pt")
    write_checkpoint(tmp_path / "last.pt", {**state, "best_epoch": 2})
    fit_tiny_classic(datasets, tmp_path, epochs=3, resume=True)
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 3
    assert read_checkpoint(tmp_path / "last.pt")["best_epoch"] == 3


def test_best_pt_follows_the_regions_mean_not_any_one_region_and_keeps_it_on_resume(
        datasets, tmp_path, monkeypatch):
    # means over WT, TC, ET by hand: (0.9 + 0.3 + 0.3) / 3 = 0.50, (0.8 + 0.5 + 0.5) / 3 = 0.60,
    # (0.1 + 0.9 + 0.65) / 3 = 0.55: epoch 2. Any one region picks another epoch (WT 1, TC 3,
    # ET 3), and so does the mean over all five scores (0.66, 0.36, 0.33: epoch 1).
    validation_scores_are(monkeypatch, [
        {"NCR/NET": 0.9, "ED": 0.9, "WT": 0.9, "TC": 0.3, "ET": 0.3},
        {"NCR/NET": 0.0, "ED": 0.0, "WT": 0.8, "TC": 0.5, "ET": 0.5},
        {"NCR/NET": 0.0, "ED": 0.0, "WT": 0.1, "TC": 0.9, "ET": 0.65}])
    fit_tiny_classic(datasets, tmp_path, epochs=2)
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 2
    # resumed, epoch 3 (0.55) is compared with best.pt's 0.60, remembered across the resume
    fit_tiny_classic(datasets, tmp_path, epochs=3, resume=True)
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 2
    assert read_checkpoint(tmp_path / "last.pt")["best_epoch"] == 2


def test_a_resume_trains_with_a_changed_decay_and_weight_decay(datasets, tmp_path, monkeypatch):
    import unet_lib.train as train

    config = TrainConfig.quick(epochs=1, base_filters=4, batch_size=8, lr=1e-3, lr_gamma=0.9,
                               warmup_epochs=0)
    train_set, val_set = tiny(datasets, 8)
    fit(build_model("classic", base_filters=4), train_set, val_set, config,
        checkpoint_dir=tmp_path, progress=False)
    decays, real_epoch = [], train._train_epoch

    def recording(steps, *args, **kwargs):  # the weight decay each resumed epoch trains with
        decays.append(steps.optimizer.param_groups[0]["weight_decay"])
        return real_epoch(steps, *args, **kwargs)

    monkeypatch.setattr(train, "_train_epoch", recording)
    history = fit(build_model("classic", base_filters=4), train_set, val_set,
                  dataclasses.replace(config, epochs=3, lr_gamma=0.5, weight_decay=0.0),
                  checkpoint_dir=tmp_path, resume=True, progress=False)
    # epoch 1 at 1e-3, decayed after it by the saved γ 0.9; after epoch 2 by the new γ 0.5
    assert history["lr"] == pytest.approx([1e-3, 0.9e-3, 0.45e-3])
    assert decays == [0.0, 0.0]


def compile_with_a_backward_compiler(monkeypatch, backward_compiler) -> None:
    """``torch.compile`` as the library calls it, with a real AOTAutograd backend whose
    forward graphs run as traced and whose backward graphs go to ``backward_compiler``."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    backend = aot_autograd(fw_compiler=lambda graph, inputs: make_boxed_func(graph.forward),
                           bw_compiler=lambda graph, inputs: (
                               backward_compiler(graph, inputs) or make_boxed_func(graph.forward)))
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile",
                        lambda model, **options: real_compile(model, backend=backend, **options))
    torch._dynamo.reset()


def test_a_compile_failure_in_the_backward_graph_falls_back_to_eager_too(datasets, monkeypatch):
    train, _ = tiny(datasets, 8)

    def backward_compiler_that_fails(graph, example_inputs):
        raise RuntimeError("backward kernel failed to build")

    compile_with_a_backward_compiler(monkeypatch, backward_compiler_that_fails)
    torch.manual_seed(0)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*backward kernel failed"):
        history = fit(build_model("classic", base_filters=4), train, None,
                      TrainConfig.quick(epochs=1, batch_size=8, compile=True), progress=False)
    assert len(history) == 1 and math.isfinite(history["train_loss"][0])


def test_a_compiler_failure_on_a_later_batch_size_falls_back_to_eager(monkeypatch):
    from unet_lib.runtime import CompiledWithFallback

    def backward_compiler_failing_for_five(graph, example_inputs):
        if any(getattr(t, "shape", (0,))[:1] == (5,) for t in example_inputs):  # no weight's
            raise RuntimeError("no kernel for a batch of 5")

    compile_with_a_backward_compiler(monkeypatch, backward_compiler_failing_for_five)
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4)
    wrapped = CompiledWithFallback(model)
    wrapped(torch.randn(4, 4, 32, 32)).sum().backward()  # a full batch: compiled
    assert wrapped.compiled is not wrapped.eager
    images = torch.randn(5, 4, 32, 32)  # the split's smaller last batch: compiles anew
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*batch of 5"):
        output = wrapped(images)
    output.sum().backward()
    assert wrapped.compiled is wrapped.eager
    assert torch.allclose(output, model(images))


def test_a_history_csv_that_cannot_be_written_warns_once_and_training_goes_on(datasets,
                                                                               tmp_path,
                                                                               monkeypatch):
    import errno

    from unet_lib import runfolder

    train, val = tiny(datasets, 8)
    writes = runfolder.write_text_atomic

    def locked_history(path, *args, **kwargs):  # as a file open in a spreadsheet on Windows
        if path.name == "history.csv":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return writes(path, *args, **kwargs)

    monkeypatch.setattr(runfolder, "write_text_atomic", locked_history)
    with pytest.warns(RuntimeWarning, match="history.csv: not updated") as caught:
        history = fit(build_model("classic", base_filters=4), train, val,
                      TrainConfig.quick(epochs=2, batch_size=8), checkpoint_dir=tmp_path,
                      progress=False)
    assert sum("history.csv" in str(w.message) for w in caught) == 1  # once, not per epoch
    assert len(history) == 2
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    assert not list(tmp_path.glob(".history.csv.*"))  # no temporary left behind


def test_a_model_without_its_last_checkpoint_is_not_replaced_by_a_new_run(datasets, tmp_path):
    """A ``best.pt`` (or history) kept on its own, e.g. copied there, is a trained model too."""
    train, val = tiny(datasets, 8)
    config = TrainConfig.quick(epochs=1, base_filters=4, batch_size=8)
    (tmp_path / "best.pt").write_bytes(b"a model trained elsewhere")
    (tmp_path / "history.csv").write_text("epoch\n1\n")
    with pytest.raises(FileExistsError, match=r"best.pt, history.csv.*overwrite=True") as error:
        fit(build_model("classic", base_filters=4), train, val, config, checkpoint_dir=tmp_path,
            progress=False)
    assert "resume=True" not in str(error.value)  # there is no last.pt to resume from
    assert (tmp_path / "best.pt").read_bytes() == b"a model trained elsewhere"
    assert not (tmp_path / "last.pt").exists()
    fit(build_model("classic", base_filters=4), train, val, config, checkpoint_dir=tmp_path,
        overwrite=True, progress=False)
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 1


def test_a_resume_without_a_last_checkpoint_is_a_new_run_and_keeps_what_it_finds(datasets,
                                                                               tmp_path):
    train, val = tiny(datasets, 8)
    config = TrainConfig.quick(epochs=1, base_filters=4, batch_size=8)
    (tmp_path / "best.pt").write_bytes(b"a model trained elsewhere")
    with pytest.raises(FileExistsError, match=r"already holds a run \(best.pt\)"):
        fit(build_model("classic", base_filters=4), train, val, config, checkpoint_dir=tmp_path,
            resume=True, progress=False)
    assert (tmp_path / "best.pt").read_bytes() == b"a model trained elsewhere"


def test_a_folder_named_like_a_run_s_file_is_refused_before_anything_is_deleted(tmp_path):
    from unet_lib.runfolder import make_room

    (tmp_path / "best.pt").write_bytes(b"kept")
    (tmp_path / "history.csv").mkdir()
    with pytest.raises(FileExistsError, match=r"history.csv: is a folder, where the run writes"):
        make_room(tmp_path, ("best.pt", "last.pt", "history.csv"), overwrite=True)
    assert (tmp_path / "best.pt").read_bytes() == b"kept"


def test_a_new_run_into_a_folder_holding_one_is_refused_unless_told_to_start_again(datasets,
                                                                                 tmp_path):
    train, val = tiny(datasets, 8)
    config = TrainConfig.quick(epochs=1, base_filters=4, batch_size=8)
    fit(build_model("classic", base_filters=4), train, val, config, checkpoint_dir=tmp_path,
        progress=False)
    kept = {name: (tmp_path / name).read_bytes() for name in ("best.pt", "last.pt", "history.csv")}
    with pytest.raises(FileExistsError, match=r"already holds a run.*resume=True.*overwrite=True"):
        fit(build_model("classic", base_filters=4), train, val, config, checkpoint_dir=tmp_path,
            progress=False)
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept  # nothing lost

    # started again without validation data: no best.pt of the earlier run may outlive it
    fit(build_model("attention", base_filters=4), train, None,
        dataclasses.replace(config, epochs=2), checkpoint_dir=tmp_path, overwrite=True,
        progress=False)
    assert not (tmp_path / "best.pt").exists()
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    assert (tmp_path / "history.csv").read_text().count("\n") == 3  # its header, 2 epochs


def test_a_loaded_model_fine_tuned_at_another_size_is_known_at_the_new_size(datasets,
                                                                            tmp_path):
    import warnings

    from unet_lib.inference import TrainedSizeWarning

    side = datasets[0][0][0].shape[-1]  # the phantom's slices
    save_checkpoint(tmp_path / "small.pt", build_model("classic", base_filters=4),
                    config=dataclasses.asdict(TrainConfig(image_size=side // 2)))
    model = load_model(tmp_path / "small.pt")
    assert model.trained_image_size == side // 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainedSizeWarning)  # validation at the new size
        fit(model, *tiny(datasets), TrainConfig.quick(epochs=1, batch_size=8), progress=False)
    assert model.trained_image_size == side


def test_copies_go_without_waiting_only_onto_a_gpu(monkeypatch):
    from unet_lib.runtime import moved

    asked = []

    def recorded_to(tensor, device, non_blocking=False, memory_format=None):
        asked.append((torch.device(device).type, non_blocking))
        return tensor

    monkeypatch.setattr(torch.Tensor, "to", recorded_to)
    batch = torch.zeros(2, 4, 8, 8)
    moved(batch, torch.device("cuda"))  # onto the GPU: its stream orders the copy
    moved(batch, torch.device("cpu"))  # back to the host: the CPU must wait for the bytes
    assert asked == [("cuda", True), ("cpu", False)]


def test_a_model_its_user_compiled_trains_checkpoints_and_resumes(datasets, tmp_path):
    # torch.compile with the eager backend: dynamo wraps the model (its state_dict's names
    # then start with _orig_mod.) without needing a C++ compiler
    train_set, val_set = (torch.utils.data.Subset(d, range(8)) for d in datasets)
    config = TrainConfig.quick(epochs=1, batch_size=4, base_filters=4)
    torch.manual_seed(0)
    first = torch.compile(build_model("classic", base_filters=4), backend="eager")
    fit(first, train_set, val_set, config, checkpoint_dir=tmp_path, progress=False)
    torch.manual_seed(1)  # other starting weights: the resume must replace them
    second = torch.compile(build_model("classic", base_filters=4), backend="eager")
    history = fit(second, train_set, val_set, dataclasses.replace(config, epochs=2),
                  checkpoint_dir=tmp_path, resume=True, progress=False)
    assert history["epoch"] == [1, 2]
    from unet_lib.checkpoint import read_checkpoint

    saved = read_checkpoint(tmp_path / "last.pt")["model_state"]
    assert not any(name.startswith("_orig_mod.") for name in saved)


def test_on_a_tie_best_pt_keeps_the_earlier_epoch(datasets, tmp_path, monkeypatch):
    # every epoch's mean over WT, TC, ET is 0.5 (sums exact in binary); epoch 2 is better on
    # the label channels, epoch 3 by another mix of regions: neither replaces epoch 1
    epochs = [(0.25, 0.5, 0.5, 0.5), (0.75, 0.5, 0.5, 0.5), (0.75, 0.75, 0.5, 0.25)]
    validation_scores_are(monkeypatch, [{"NCR/NET": labels, "ED": labels, "WT": wt, "TC": tc,
                                         "ET": et} for labels, wt, tc, et in epochs])
    fit_tiny_classic(datasets, tmp_path, epochs=3)
    kept = read_checkpoint(tmp_path / "best.pt")["epoch"]
    assert kept == read_checkpoint(tmp_path / "last.pt")["best_epoch"] == 1


def test_a_loss_summed_on_a_device_without_float64_is_the_same_loss(datasets, tmp_path,
                                                                     monkeypatch):
    # Apple's MPS has no float64: there the running loss is summed in float32 on the device
    # and folded into a float64 total on the CPU when read. "cpu:0" stands in for the device
    # whose sums are kept elsewhere (torch.device("cpu:0") != torch.device("cpu"))
    import unet_lib.training_step as training_step

    torch.manual_seed(0)  # the same starting weights for both
    plain = fit_tiny_classic(datasets, tmp_path / "plain", epochs=2)
    monkeypatch.setattr(training_step, "tally_device", lambda device: torch.device("cpu", 0))
    torch.manual_seed(0)
    folded = fit_tiny_classic(datasets, tmp_path / "folded", epochs=2)
    assert training_step.RunningLoss(torch.device("cpu")).pending is not None  # the MPS way
    assert [r["train_loss"] for r in folded.records] == pytest.approx(
        [r["train_loss"] for r in plain.records], rel=1e-6)
