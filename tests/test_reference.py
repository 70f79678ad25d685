"""A CPU rehearsal of the reference command: the slides' configuration's run, at tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import torch

from unet_course.bundles import reference_reliability
from unet_lib.calibration import Reliability
from unet_lib.cli import main
from unet_lib.reference import read_reference
from unet_lib.run import read_run

pytestmark = pytest.mark.slow

TINY = ["--scale", "quick", "--n-volumes", "4", "--n-slices", "6", "--image-size", "32",
        "--epochs", "1", "--base-filters", "4", "--batch-size", "4"]


def test_the_reference_command_writes_a_bundle_the_book_can_read(tmp_path, capsys,
                                                                monkeypatch):
    from unet_lib.resident import ResidentSlices

    loads = []
    real_load = ResidentSlices.load.__func__
    monkeypatch.setattr(ResidentSlices, "load", classmethod(
        lambda cls, dataset, *args, **kwargs: loads.append(len(dataset))
        or real_load(cls, dataset, *args, **kwargs)))
    assert main(["reference", "--out", str(tmp_path / "ref"), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "reference.json" in printed
    # the training and validation slices are read once for the three models
    assert len(loads) == 2 and printed.count("already there") == 3
    bundle, showcase = read_reference(tmp_path / "ref")
    test_slices = read_run(tmp_path / "ref" / "runs" / "classic").dataset("test")
    assert set(bundle["models"]) == {"classic", "improved", "attention"}
    assert bundle["scale"] == "quick" and bundle["machine"]["device"] and bundle["date"]
    assert bundle["complete"] is True
    # where the time went adds up to no more than the whole run
    parts = sum(bundle["stages"].values()) + sum(
        entry["seconds"] + entry["scoring_seconds"] for entry in bundle["models"].values())
    assert 0 < parts <= bundle["seconds"] and bundle["stages"]["upload"] > 0
    assert bundle["recipe"]["config"]["epochs"] == 1
    for name, entry in bundle["models"].items():
        assert len(entry["history"]) == 1 and entry["best_epoch"] == 1
        test = entry["test"]
        assert set(test["all_pixels"]["dice"]) >= {"WT", "TC", "ET", "NCR/NET"}
        assert len(test["volumes"]) == 1  # a quarter of 4 volumes
        assert showcase[f"probs_{name}"].shape == showcase["targets"].shape
        assert showcase[f"probs_{name}"].dtype == np.float16
        # every test pixel binned once per channel, as many tumour pixels as the masks hold
        binned = Reliability.from_json(entry["calibration"])
        masks = torch.stack([mask for _, mask in test_slices])  # (N, 3, H, W)
        assert binned.count.sum(axis=1).tolist() == [masks[:, 0].numel()] * 3
        assert binned.positive_count.sum(axis=1).tolist() == masks.sum(dim=(0, 2, 3)).tolist()
    n = len(showcase["names"])
    assert showcase["images"].shape == (n, 4, 32, 32)
    assert set(reference_reliability(bundle)) == {"classic", "improved", "attention"}
    maps = [showcase[f"attention_attention_{level}"] for level in range(4)]
    assert [m.shape[-1] for m in maps] == [4, 8, 16, 32]
    json.dumps(bundle)  # plain JSON all the way down


def test_a_run_stopped_part_way_keeps_the_models_it_finished(tmp_path, monkeypatch):
    from unet_lib import reference

    real_train_run = reference.train_run

    def stopped_at_the_second_model(run, **kwargs):
        if run.recipe.model == "improved":  # stopped in its first epoch, as the GPU
            run.folder.mkdir(parents=True, exist_ok=True)  # session's limit would: its
            (run.folder / "history.csv").write_text("epoch\n1\n")  # last.pt not yet written
            raise KeyboardInterrupt
        return real_train_run(run, **kwargs)

    monkeypatch.setattr(reference, "train_run", stopped_at_the_second_model)
    sizes = dict(n_volumes=4, n_slices=6, image_size=32, epochs=1, base_filters=4,
                 batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        reference.run_reference(tmp_path / "out", scale="quick", work=tmp_path / "work",
                                progress=False, **sizes)
    bundle, showcase = read_reference(tmp_path / "out")
    assert list(bundle["models"]) == ["classic"] and bundle["complete"] is False
    assert "probs_classic" in showcase and "probs_improved" not in showcase
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["reference.json",
                                                                    "showcase.npz"]
    assert (tmp_path / "work" / "runs" / "classic" / "best.pt").exists()

    # the same command again finishes the run: the model it has is kept, not trained again
    monkeypatch.setattr(reference, "train_run", real_train_run)
    kept = (tmp_path / "work" / "runs" / "classic" / "last.pt").read_bytes()
    reference.run_reference(tmp_path / "out", scale="quick", work=tmp_path / "work",
                            progress=False, **sizes)
    bundle, _ = read_reference(tmp_path / "out")
    assert list(bundle["models"]) == ["classic", "improved", "attention"] and bundle["complete"]
    assert (tmp_path / "work" / "runs" / "classic" / "last.pt").read_bytes() == kept
    # and another recipe is not trained over the models there
    with pytest.raises(FileExistsError, match=r"other settings or data \(epochs 1 → 2\); "):
        reference.run_reference(tmp_path / "out", scale="quick", work=tmp_path / "work",
                                progress=False, **{**sizes, "epochs": 2})
    assert (tmp_path / "work" / "runs" / "classic" / "last.pt").read_bytes() == kept


def test_the_book_tabulates_a_committed_bundle_as_written():
    from unet_course.bundles import reference_bundles, reference_table

    bundles = reference_bundles()  # benchmarks/reference-*: at least the H200 run of 2026-11-27
    assert bundles, "no committed reference bundle found under benchmarks/"
    _, bundle, showcase = bundles[-1]
    rows = reference_table(bundle)
    assert [row["model"] for row in rows] == list(bundle["models"])
    for row in rows:
        entry = bundle["models"][row["model"]]
        assert row["Dice WT all pixels"] == entry["test"]["all_pixels"]["dice"]["WT"]
        assert row["training"] == f"{entry['seconds']:.0f} s"
        assert showcase[f"probs_{row['model']}"].shape == showcase["targets"].shape


def test_a_reference_refused_for_its_options_leaves_no_folder(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    assert main(["reference", "--out", str(tmp_path / "ref"), "--data", str(data),
                 *TINY]) == 2
    assert "--n-volumes: shapes the phantom, which data replaces" in capsys.readouterr().err
    assert not (tmp_path / "ref").exists()  # was made empty before the refusal


def test_the_reference_table_shows_the_h200_runs_scores_per_patient_as_its_bundle_holds():
    from unet_course.bundles import reference_bundles, reference_table

    bundle = next(bundle for folder, bundle, _ in reference_bundles()
                  if folder.name == "reference-h200-2026-11-27")
    rows = {row["model"]: row for row in reference_table(bundle)}
    # reference.json: classic ET mean 0.9659, std 0.0322; improved ET 0.7234, std 0.4179
    assert rows["classic"]["Dice ET per patient"] == "0.97 ± 0.03"
    assert rows["improved"]["Dice ET per patient"] == "0.72 ± 0.42"
    assert round(rows["classic"]["Dice ET all pixels"], 4) == 0.9523


def test_a_false_alarm_on_a_region_a_test_patient_lacks_is_named_with_its_median():
    from unet_course.bundles import false_alarms_on_absent_regions, reference_bundles

    bundle = next(bundle for folder, bundle, _ in reference_bundles()
                  if folder.name == "reference-h200-2026-11-27")
    # reference.json: test volume 1 has no ET; the Improved U-Net marked some (Dice 0, HD95
    # 373.13), the Classic none (Dice 1); the Improved's ET per patient: mean 0.7234, median
    # 0.9531
    assert false_alarms_on_absent_regions(bundle) == (
        "the improved U-Net marked ET in test volume 1, which has none, and scored Dice 0.00 "
        "there (HD95 373.13 mm): its ET mean over the 4 patients is 0.72, its median 0.95")
    del bundle["models"]["improved"]
    assert false_alarms_on_absent_regions(bundle) == ""


def test_the_book_gives_a_bundle_s_own_account_of_its_run(tmp_path):
    from unet_course.bundles import bundle_account, reference_bundles

    (tmp_path / "README.md").write_text("# A run (partial)\n\nIt holds two of the\nthree "
                                        "models: the third failed.\n\nMore detail.\n")
    assert bundle_account(tmp_path) == "It holds two of the three models: the third failed."
    assert bundle_account(tmp_path / "nowhere") == ""
    # every committed bundle says what it is
    assert all(bundle_account(folder) for folder, _, _ in reference_bundles())


def test_a_failed_extra_leaves_the_bundle_written_with_the_models_scores(tmp_path,
                                                                         monkeypatch):
    from unet_lib import reference

    def broken(*args, **kwargs):
        raise RuntimeError("the GPU fell over")

    monkeypatch.setattr(reference, "reliability", broken)
    monkeypatch.setattr(reference, "attention_maps", broken)
    sizes = dict(n_volumes=4, n_slices=6, image_size=32, epochs=1, base_filters=4,
                 batch_size=4)
    with pytest.warns(RuntimeWarning, match="the attention U-Net's attention maps failed "
                                            r"\(RuntimeError: the GPU fell over\)"):
        reference.run_reference(tmp_path / "out", scale="quick", work=tmp_path / "work",
                                models=("classic", "attention"), progress=False, **sizes)
    bundle, showcase = read_reference(tmp_path / "out")
    assert bundle["complete"] is True and set(bundle["models"]) == {"classic", "attention"}
    for name, entry in bundle["models"].items():
        assert "calibration" not in entry and entry["test"]["all_pixels"]["dice"]
        assert entry["failed"]["calibration"] == "RuntimeError: the GPU fell over"
    assert set(bundle["models"]["attention"]["failed"]) == {"attention maps", "calibration"}
    assert "probs_attention" in showcase and "attention_attention_0" not in showcase
    assert reference_reliability(bundle) == {}
