"""Where the cases of a NIfTI release are: case folders, their files, the release's own
folders, and why a folder gives no case to use (:mod:`unet_lib.data.nifti` reads them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from .brats import NIFTI_MODALITIES
from .samples import BraTSDataError, skip_or_raise

#: a labelled case's folder: BraTS 2020's ``BraTS20_Training_001``, or BraTS 2021's
#: ``BraTS2021_00000`` (same four modalities and labels 0, 1, 2, 4)
CASE_NAME = re.compile(r"^BraTS(?:\d*_Training_|2021_)(\d+)$")


def check_not_one_case(root: Path) -> None:
    """Raise ``FileNotFoundError`` when ``root`` is itself one case folder (it holds
    ``<name>_flair.nii.gz`` and the like), naming the folder to give instead: every command
    reads the folder that holds the case folders."""
    if Path(root).is_dir() and any(find_case_file(Path(root), key) for key in NIFTI_MODALITIES):
        raise FileNotFoundError(f"{root}: is one case folder; give the folder that holds the "
                                f"case folders ({Path(root).resolve().parent})")


def find_case_file(case: Path, key: str) -> Path | None:
    """``<case>/<case name>_<key>.nii(.gz)``, e.g. key ``flair`` or ``seg``; ``None`` if absent."""
    for suffix in (".nii.gz", ".nii"):
        path = case / f"{case.name}_{key}{suffix}"
        if path.exists():
            return path
    if key == "seg":  # case 355 of the 2020 release ships its seg under another name
        candidates = [p for p in case.iterdir() if "seg" in p.name.lower()
                      and p.name.endswith((".nii", ".nii.gz"))]
        if len(candidates) == 1:
            return candidates[0]
    return None


#: the folders the releases unzip to, looked in when the folder given holds no case folder
#: (Kaggle's NIfTI mirror nests ``BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData``)
RELEASE_FOLDERS = {"training": ("MICCAI_BraTS2020_TrainingData", "BraTS2020_TrainingData"),
                   "validation": ("MICCAI_BraTS2020_ValidationData", "BraTS2020_ValidationData")}


class NiftiFolderError(FileNotFoundError):
    """A folder of NIfTI case folders none of which can be used, said as it is (every case
    lacks a file), not as a folder without BraTS data."""


class UnlabelledCasesError(NiftiFolderError):
    """A folder of BraTS cases without segmentations (the challenge's validation or test
    data) was given where cases to train on or score were needed."""


def find_cases(root: str | Path, volumes: Iterable[int] | None = None, on_error: str = "raise",
               left_out: list[str] | None = None) -> dict[int, dict[str, Path]]:
    """Map case number → {modality or 'seg': path} for every ``BraTS20_Training_XXX`` (or
    BraTS 2021 ``BraTS2021_XXXXX``) folder.

    A case folder that lacks one of the five files raises (``on_error="raise"``), or is
    warned about (:class:`~unet_lib.data.samples.BadSampleWarning`), left out and added to
    ``left_out`` as ``"<folder>: <problem>"`` (``"skip"``).

    Raises:
        UnlabelledCasesError: ``root`` holds case folders without a segmentation only.
        FileNotFoundError: no (complete) case folder under ``root``.
        BraTSDataError: a case folder lacks one of the five files (named in the message).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such data folder")
    wanted = None if volumes is None else {int(v) for v in volumes}
    folders = [p for p in root.iterdir() if p.is_dir() and CASE_NAME.match(p.name)]
    for inner in RELEASE_FOLDERS["training"]:
        if not folders and (root / inner).is_dir():
            return find_cases(root / inner, volumes, on_error, left_out)
    cases, incomplete, names = {}, {}, {}
    for folder in sorted(folders):
        number = int(CASE_NAME.match(folder.name)[1])
        if wanted is not None and number not in wanted:
            continue
        if number in names:  # BraTS20_Training_001 and BraTS2021_00001 in one folder
            raise BraTSDataError(folder, f"has case number {number}, as {names[number]} does: "
                                         f"BraTS 2020 and 2021 number their cases apart; keep "
                                         f"one release per folder")
        names[number] = folder.name
        files = {key: find_case_file(folder, key) for key in NIFTI_MODALITIES + ("seg",)}
        missing = [key for key, path in files.items() if path is None]
        if missing:
            incomplete[folder.name] = missing
            skipped = skip_or_raise(BraTSDataError(folder, f"missing {', '.join(missing)} "
                                                           f"file(s); expected {folder.name}_"
                                                           f"<flair|t1|t1ce|t2|seg>.nii(.gz)"),
                                    on_error)
            if left_out is not None:
                left_out.append(str(skipped))
            continue
        cases[number] = files
    if not cases:
        _refuse_unusable_folder(root, folders, incomplete, wanted)
    return cases


def _refuse_unusable_folder(root: Path, folders: list[Path], incomplete: dict[str, list[str]],
                            wanted: set[int] | None) -> None:
    """Raise the error that says why ``root`` gave no usable case: its cases have no
    segmentation (also BraTS 2021's, named like training cases, or under the release's own
    validation folder), every one lacks a file, or there is none (of ``wanted``)."""
    if incomplete:  # named as cases to train on, but all without their segmentation only?
        unlabelled = (list(incomplete) if all(missing == ["seg"] for missing in
                                              incomplete.values()) else [])
    elif folders:
        unlabelled = []
    else:
        unlabelled = unlabelled_cases(root)
        for inner in RELEASE_FOLDERS["validation"]:
            if not unlabelled and (root / inner).is_dir():
                unlabelled = [f"{inner}/{name}" for name in unlabelled_cases(root / inner)]
    if unlabelled:
        raise UnlabelledCasesError(
            f"{root}: its case folders ({unlabelled[0]}, ...) have no segmentation, as the "
            f"challenge's validation and test data come: nothing to train on or score; "
            f"`unet-lib segment` writes label maps for them")
    if incomplete:
        shown = list(incomplete)
        raise NiftiFolderError(f"{root}: every case folder lacks a file ({', '.join(shown[:3])}"
                               f"{', ...' if len(shown) > 3 else ''})")
    raise FileNotFoundError(f"{root}: no case folders named BraTS20_Training_XXX (or "
                            f"BraTS2021_XXXXX)" + (f" for volumes {sorted(wanted)}"
                                                   if wanted else ""))


def unlabelled_cases(root: Path) -> list[str]:
    """The sub-folders of ``root`` holding a case's FLAIR but no segmentation, by name."""
    return [p.name for p in sorted(root.iterdir())
            if p.is_dir() and find_case_file(p, "flair") and not find_case_file(p, "seg")]
