"""Label maps for cases without a segmentation: ``unet-lib segment`` and unet_lib.segment."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unet_lib.checkpoint import save_checkpoint
from unet_lib.cli import main
from unet_lib.config import TrainConfig
from unet_lib.data import BraTSNifti
from unet_lib.data.brats import labels_to_mask
from unet_lib.inference import predict
from unet_lib.metrics import to_regions
from unet_lib.models import build_model
from unet_lib.segment import labels_from_probabilities

#: a grid that is not the identity, so that a label map on the wrong grid shows
AFFINE = np.array([[-1.0, 0, 0, 90], [0, -1.0, 0, 126], [0, 0, 1.0, -72], [0, 0, 0, 1]])


def write_case(root, name: str, seg: bool, shape=(32, 32, 6), seed: int = 0, affine=AFFINE):
    """A case folder ``root/name`` of four random modalities with a bright blob, and a
    segmentation of the blob when ``seg``, on the grid ``affine``."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True)
    blob = np.zeros(shape, np.float32)
    blob[8:20, 10:24, 1:5] = 1
    for k, modality in enumerate(("flair", "t1", "t1ce", "t2")):
        volume = rng.normal(100 + 10 * k, 5, shape).astype(np.float32) + 80 * blob
        nib.save(nib.Nifti1Image(volume, affine), folder / f"{name}_{modality}.nii.gz")
    if seg:
        nib.save(nib.Nifti1Image((2 * blob).astype(np.uint8), affine),
                 folder / f"{name}_seg.nii.gz")
    return folder


def test_a_voxel_takes_the_label_of_the_innermost_region_its_cut_channels_put_it_in():
    # columns: nothing above 0.5; ED alone; NCR/NET and ED; ET and NCR/NET; ET and ED
    probs = torch.tensor([[0.2, 0.1, 0.9, 0.90, 0.1],
                          [0.3, 0.7, 0.6, 0.55, 0.9],
                          [0.1, 0.2, 0.3, 0.80, 0.6]])
    assert labels_from_probabilities(probs, 0.5).tolist() == [0, 2, 1, 4, 4]
    assert labels_from_probabilities(probs, 0.85).tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(ValueError, match="expected 3 channels"):
        labels_from_probabilities(probs[:2])


def test_the_written_label_map_has_the_regions_that_evaluate_scores():
    # evaluate cuts each channel on its own and scores to_regions of them; a submission is
    # scored on the regions of its label map: the two must be the same voxels
    probs = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(0))
    labels = labels_from_probabilities(probs, 0.4)
    from_map = to_regions(torch.from_numpy(labels_to_mask(labels)).permute(2, 0, 1)[None])
    scored = to_regions((probs > 0.4).float()[None])
    assert torch.equal(from_map.bool(), scored.bool())
    assert (labels == 4).sum() == (probs[2] > 0.4).sum()  # every ET voxel written as ET


def test_segment_writes_one_label_map_per_case_on_its_grid_as_training_reads_it(tmp_path,
                                                                                capsys):
    data = tmp_path / "cases"
    write_case(data, "BraTS20_Training_001", seg=True)
    write_case(data, "BraTS20_Validation_002", seg=False, seed=1)  # no _seg: as submitted
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4).eval()
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(checkpoint, model, config=dataclasses.asdict(TrainConfig(image_size=16)))

    # independently of segment's code: the training reader's slices of case 1, at 16 px,
    # predicted and resized back; a threshold that makes about half the voxels tumour
    slices = BraTSNifti(data, image_size=16)
    probs = F.interpolate(predict(model, slices, device="cpu"), size=(32, 32),
                          mode="bilinear", align_corners=False)  # (6, 3, 32, 32)
    threshold = float(probs.max(dim=1).values.median())
    out = tmp_path / "labels"
    assert main(["segment", "--checkpoint", str(checkpoint), "--data", str(data),
                 "--out", str(out), "--threshold", f"{threshold:.6f}"]) == 0
    assert "wrote 2 BraTS label map(s)" in capsys.readouterr().out

    written = sorted(p.name for p in out.iterdir())
    assert written == ["BraTS20_Training_001.nii.gz", "BraTS20_Validation_002.nii.gz"]
    first = nib.load(str(out / written[0]))
    labels = np.asarray(first.dataobj)
    assert labels.shape == (32, 32, 6) and labels.dtype == np.uint8
    assert np.allclose(first.affine, AFFINE)
    assert first.header["cal_max"] == 4 and b"BraTS labels" in first.header["descrip"].item()
    assert set(np.unique(labels)) <= {0, 1, 2, 4}
    # tumour wherever some channel passes the threshold; slice s is volume[:, :, s]
    expected = (probs.max(dim=1).values > float(f"{threshold:.6f}")).numpy()  # (6, 32, 32)
    agree = (labels > 0) == expected.transpose(1, 2, 0)
    assert agree.mean() > 0.999 and 0.2 < expected.mean() < 0.8

    # run again into the same folder: refused, the label maps kept
    before = (out / written[0]).read_bytes()
    assert main(["segment", "--checkpoint", str(checkpoint), "--data", str(data),
                 "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert (out / written[0]).read_bytes() == before


def test_a_broken_case_costs_no_other_and_a_second_run_writes_only_what_is_missing(
        tmp_path, capsys):
    data = tmp_path / "cases"
    for number in (1, 2, 3):
        write_case(data, f"BraTS20_Validation_00{number}", seg=False, seed=number)
    broken = data / "BraTS20_Validation_002" / "BraTS20_Validation_002_t1.nii.gz"
    whole = broken.read_bytes()
    broken.write_bytes(whole[: len(whole) // 3])  # cut short, as a failed copy
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / ".BraTS20_Validation_001.partial.nii.gz").write_bytes(b"cut")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "best.pt", build_model("classic", base_filters=4))
    segment = ["segment", "--checkpoint", str(tmp_path / "best.pt"), "--data", str(data),
               "--out", str(tmp_path / "labels")]
    assert main(segment) == 1  # not all written: a script must notice
    said = capsys.readouterr().out
    assert "1 case(s) could not be read and have no label map: BraTS20_Validation_002" in said
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == [  # no partial left
        "BraTS20_Validation_001.nii.gz", "BraTS20_Validation_003.nii.gz"]
    kept = (tmp_path / "labels" / "BraTS20_Validation_001.nii.gz").read_bytes()
    broken.write_bytes(whole)  # mended
    assert main(segment + ["--missing-only"]) == 0
    said = capsys.readouterr().out
    assert "2 of the 3 label maps exist already: kept" in said and "wrote 1 BraTS" in said
    assert (tmp_path / "labels" / "BraTS20_Validation_002.nii.gz").exists()
    assert (tmp_path / "labels" / "BraTS20_Validation_001.nii.gz").read_bytes() == kept


def test_wrong_paths_say_what_was_given_and_what_is_wanted(tmp_path, capsys):
    case = write_case(tmp_path / "cases", "BraTS20_Validation_004", seg=False)
    save_checkpoint(tmp_path / "best.pt", build_model("classic", base_filters=4))
    (tmp_path / "afile").write_text("")
    segment = ["segment", "--checkpoint", str(tmp_path / "best.pt")]
    for data, out, said in (
            (case, tmp_path / "labels", f"{case}: is one case folder; give the folder that "
                                        f"holds the case folders ({case.parent})"),
            (tmp_path / "afile", tmp_path / "labels", "afile: is a file; give the folder"),
            (tmp_path / "cases", tmp_path / "afile", "afile: is a file; give a folder for")):
        assert main(segment + ["--data", str(data), "--out", str(out)]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "labels").exists()
    # slices with segmentations (Kaggle h5, a phantom): evaluate's, and said so
    from unet_lib.data import make_phantom
    slices = make_phantom(tmp_path / "ph", n_volumes=1, image_size=16, n_slices=2, seed=0)
    assert main(segment + ["--data", str(slices), "--out", str(tmp_path / "labels")]) == 2
    assert ("it holds slices (the Kaggle h5 release, a phantom or a packed copy), which have "
            "segmentations: unet-lib evaluate --data scores") in capsys.readouterr().err


def test_check_reads_cases_without_segmentations_and_points_at_segment(tmp_path, capsys):
    cases = tmp_path / "validation"
    for k in range(2):
        write_case(cases, f"BraTS20_Validation_00{k + 1}", seg=False, seed=k)
    assert main(["check", "--data", str(cases)]) == 0
    said = capsys.readouterr().out
    assert f"{cases}: 2 case(s) without segmentations" in said
    assert "every case's four headers readable and of one shape" in said
    assert f"unet-lib segment --checkpoint <run>/best.pt --data {cases}" in said
    (cases / "BraTS20_Validation_002" / "BraTS20_Validation_002_t2.nii.gz").unlink()
    broken = cases / "BraTS20_Validation_001" / "BraTS20_Validation_001_flair.nii.gz"
    broken.write_bytes(broken.read_bytes()[:40])  # a damaged header
    assert main(["check", "--data", str(cases)]) == 1
    said = capsys.readouterr().out
    assert "2 case(s) unusable:" in said and "BraTS20_Validation_002: no t2 file" in said
    assert "BraTS20_Validation_001: cannot be read (" in said
    (tmp_path / "empty").mkdir()
    assert main(["check", "--data", str(tmp_path / "empty")]) == 2  # neither kind: an error


def test_a_case_missing_a_modality_is_named_and_skipped_and_the_others_written(tmp_path,
                                                                              capsys):
    write_case(tmp_path / "cases", "BraTS20_Validation_002", seg=False)
    folder = write_case(tmp_path / "cases", "BraTS20_Validation_003", seg=False)
    (folder / "BraTS20_Validation_003_t1ce.nii.gz").unlink()
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "best.pt", build_model("classic", base_filters=4))
    assert main(["segment", "--checkpoint", str(tmp_path / "best.pt"), "--data",
                 str(tmp_path / "cases"), "--out", str(tmp_path / "labels")]) == 1
    out = capsys.readouterr().out
    assert "2/2 skipped: " in out and "BraTS20_Validation_003: missing t1ce file(s)" in out
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == [
        "BraTS20_Validation_002.nii.gz"]


def test_segment_reads_the_release_folder_under_the_one_given_as_train_does(tmp_path):
    from unet_lib.segment import find_unlabelled_cases

    write_case(tmp_path / "MICCAI_BraTS2020_ValidationData", "BraTS20_Validation_001", seg=False)
    assert list(find_unlabelled_cases(tmp_path)) == ["BraTS20_Validation_001"]
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(FileNotFoundError, match="elsewhere: no case folders"):
        find_unlabelled_cases(tmp_path / "elsewhere")


def test_keep_largest_writes_only_the_largest_piece_of_the_tumour_with_its_labels(tmp_path):
    from scipy import ndimage

    data = tmp_path / "cases"
    write_case(data, "BraTS20_Training_001", seg=True)  # its segmentation: for the reader
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4).eval()
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(checkpoint, model, config=dataclasses.asdict(TrainConfig(image_size=16)))
    probs = predict(model, BraTSNifti(data, image_size=16), device="cpu")
    threshold = f"{float(probs.max(dim=1).values.quantile(0.7)):.6f}"  # some tumour, in pieces
    maps = {}
    for option in ((), ("--keep-largest",)):
        out = tmp_path / f"labels{len(option)}"
        assert main(["segment", "--checkpoint", str(checkpoint), "--data", str(data),
                     "--out", str(out), "--threshold", threshold, *option]) == 0
        maps[option] = np.asarray(nib.load(str(out / "BraTS20_Training_001.nii.gz")).dataobj)
    plain, kept = maps[()], maps[("--keep-largest",)]
    pieces, count = ndimage.label(plain > 0)  # face-connected pieces of the whole tumour
    assert count > 1  # a random model's map has stray pieces to remove
    largest = np.argmax(np.bincount(pieces.ravel())[1:]) + 1
    assert np.array_equal(kept, np.where(pieces == largest, plain, 0))


def test_a_single_case_folder_is_refused_naming_the_folder_that_holds_it(tmp_path, capsys):
    import re

    from unet_lib.data import list_volumes, open_dataset

    case = write_case(tmp_path / "cases", "BraTS20_Training_001", seg=True)
    instead = re.escape(f"give the folder that holds the case folders ({tmp_path / 'cases'})")
    with pytest.raises(FileNotFoundError, match=f"is one case folder; {instead}"):
        open_dataset(case)
    assert main(["check", "--data", str(case)]) == 2
    assert "is one case folder" in capsys.readouterr().err
    # the Kaggle-only listing says what the folder holds and what reads it
    with pytest.raises(FileNotFoundError, match="it holds NIfTI case folders: open_dataset"):
        list_volumes(tmp_path / "cases")


def test_per_patient_distances_are_in_the_millimetres_of_the_nifti_header(tmp_path):
    from torch import nn

    from unet_lib.data import PackedSlices, pack_folder
    from unet_lib.patients import evaluate_patients, score_patient

    # voxels of 2 × 2 mm in a slice and 3 mm between slices (not BraTS's 1 mm)
    case = write_case(tmp_path / "cases", "BraTS20_Training_001", seg=True,
                      affine=np.diag([2.0, 2.0, 3.0, 1.0]))
    nifti = BraTSNifti(tmp_path / "cases")
    assert nifti.extent_mm(1) == (6 * 3.0, 32 * 2.0, 32 * 2.0)  # slices, rows, columns
    packed = PackedSlices(pack_folder(tmp_path / "cases", tmp_path / "packed", progress=False))
    assert packed.extent_mm(1) == nifti.extent_mm(1)

    everywhere = nn.Conv2d(4, 3, 1)  # every pixel of every channel predicted
    with torch.no_grad():
        everywhere.weight.zero_()
        everywhere.bias.fill_(10.0)
    # worked out apart from the dataset: the seg file's regions, on its own (2, 2, 3) mm grid
    seg = np.asarray(nib.load(str(case / "BraTS20_Training_001_seg.nii.gz")).dataobj)
    seg = seg.transpose(2, 0, 1)  # (slices, rows, columns), as the slices are stacked
    truth = np.stack([seg > 0, np.isin(seg, (1, 4)), seg == 4])
    expected = score_patient(np.ones_like(truth), truth, (3.0, 2.0, 2.0))["hd95"]
    for data in (nifti, packed):
        row = evaluate_patients(everywhere, data, device="cpu").rows[0]
        assert row["hd95"] == pytest.approx(expected)
    assert expected["WT"] != pytest.approx(score_patient(np.ones_like(truth), truth,
                                                         (155 / 6, 7.5, 7.5))["hd95"]["WT"])


def test_a_loaded_model_segments_at_the_size_it_learnt_and_warns_when_scored_at_another(
        tmp_path):
    import warnings

    from unet_lib.checkpoint import load_model
    from unet_lib.inference import TrainedSizeWarning, evaluate
    from unet_lib.segment import segment_folder

    data = tmp_path / "cases"
    write_case(data, "BraTS20_Training_001", seg=True)  # 32 × 32 slices
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "best.pt", build_model("classic", base_filters=4),
                    config=dataclasses.asdict(TrainConfig(image_size=16)))
    model = load_model(tmp_path / "best.pt")
    assert model.trained_image_size == 16
    with pytest.warns(TrainedSizeWarning, match="learnt on 16×16 slices and is given 32×32"):
        evaluate(model, BraTSNifti(data), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainedSizeWarning)
        evaluate(model, BraTSNifti(data, image_size=16), device="cpu")  # its size: no warning
    probs = predict(model, BraTSNifti(data, image_size=16), device="cpu")
    threshold = float(probs.max(dim=1).values.median())  # about half the voxels tumour
    maps = {}
    for size in (None, 16, 32):  # by default, the size it learnt at
        out = tmp_path / f"labels-{size}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            segment_folder(model, data, out, image_size=size, threshold=threshold,
                           report=lambda _: None)
        assert any(w.category is TrainedSizeWarning for w in caught) == (size == 32)
        maps[size] = np.asarray(nib.load(str(out / "BraTS20_Training_001.nii.gz")).dataobj)
    assert np.array_equal(maps[None], maps[16]) and not np.array_equal(maps[16], maps[32])


def test_a_case_whose_headers_do_not_fit_is_left_out_before_a_split_counts_it(tmp_path):
    import warnings

    from unet_lib.data import BadSampleWarning, BraTSDataError, open_dataset

    data = tmp_path / "cases"
    for number in (1, 2, 3):
        write_case(data, f"BraTS20_Training_00{number}", seg=True, seed=number)
    short = data / "BraTS20_Training_002" / "BraTS20_Training_002_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 5), np.uint8), AFFINE), short)  # 5 slices, not 6
    with pytest.warns(BadSampleWarning, match="shape .32, 32, 5. differs from FLAIR's"):
        nifti = open_dataset(data)
    assert nifti.volumes == [1, 3] and len(nifti) == 12  # listed without case 2's slices
    assert "BraTS20_Training_002_seg.nii.gz" in nifti.skipped[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadSampleWarning)
        with pytest.raises(BraTSDataError, match="differs from FLAIR's"):
            open_dataset(data, on_error="raise")


def test_segment_and_evaluate_keep_the_same_piece_of_two_of_equal_size(tmp_path, monkeypatch):
    import unet_lib.segment
    from unet_lib.data.nifti_cases import find_case_file
    from unet_lib.postprocess import keep_largest_tumour
    from unet_lib.segment import segment_case

    case = write_case(tmp_path / "cases", "BraTS20_Validation_001", seg=False)
    probs = torch.zeros(6, 3, 32, 32)  # (slices, channels, rows, columns), as predicted
    probs[1, 1, 20, 5] = probs[4, 1, 3, 30] = 0.9  # two lone voxels of oedema
    monkeypatch.setattr(unet_lib.segment, "predict", lambda *args, **kwargs: probs)
    files = {key: find_case_file(case, key) for key in ("flair", "t1", "t1ce", "t2")}
    labels, _ = segment_case(build_model("classic", base_filters=4), files, keep_largest=True)
    # evaluate cleans (channels, slices, rows, columns): the first piece in that order stays
    kept = keep_largest_tumour((probs > 0.5).permute(1, 0, 2, 3).numpy())
    assert kept[1, 1, 20, 5] and not kept[1, 4, 3, 30]
    assert labels[20, 5, 1] == 2 and labels[3, 30, 4] == 0  # (rows, columns, slices)


def test_per_patient_scores_name_each_case_as_the_release_does(tmp_path, phantom_root):
    import csv
    import shutil

    from torch import nn

    from unet_lib.data import BraTSSlices, PackedSlices, pack_folder
    from unet_lib.patients import evaluate_patients

    write_case(tmp_path / "cases", "BraTS20_Training_007", seg=True)
    nifti = BraTSNifti(tmp_path / "cases")
    packed = PackedSlices(pack_folder(tmp_path / "cases", tmp_path / "packed", progress=False))
    model = nn.Conv2d(4, 3, 1)
    for data in (nifti, packed):
        scores = evaluate_patients(model, data, device="cpu")
        assert scores.rows[0]["volume"] == 7 and scores.rows[0]["case"] == "BraTS20_Training_007"
        assert scores.table().splitlines()[1].endswith("  BraTS20_Training_007")
        with open(scores.to_csv(tmp_path / "scores.csv")) as written:
            header, row = list(csv.reader(written))
        assert header[-1] == "case" and row[-1] == "BraTS20_Training_007"
    # the Kaggle release's volume N is case N; a phantom (its marker file) has no case IDs
    assert BraTSSlices(phantom_root).case_id(1) is None
    release = shutil.copytree(phantom_root, tmp_path / "kaggle",
                              ignore=shutil.ignore_patterns("phantom.json"))
    assert BraTSSlices(release).case_id(1) == "BraTS20_Training_001"
