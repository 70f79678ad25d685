"""Results bundles of the slides' full configuration (``unet-lib reference``), committed under
``benchmarks/reference-<gpu>-<date>/``, for the chapters to show beside the quick results."""

from __future__ import annotations

from pathlib import Path

from unet_lib.data import REGIONS

#: where the checkout keeps measured results
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

#: published Dice of 2-D models on real BraTS 2020, to set the phantom's figures against
#: (the book's bibliography: ``sundaresan2021triplanar``)
PUBLISHED_2D_DICE = [
    {"model": "tri-planar ensemble of 2-D U-Nets (Sundaresan et al. 2021), BraTS 2020 test "
              "set, mean over patients", "Dice WT": "0.89", "Dice TC": "0.84", "Dice ET": "0.81"},
]


def reference_bundles(folder: str | Path = BENCHMARKS) -> list[tuple[Path, dict, dict]]:
    """``(folder, bundle, showcase arrays)`` of every committed reference run, oldest first
    (by the bundle's date); ``[]`` when there is none."""
    from unet_lib.reference import BUNDLE, read_reference

    found = []
    for path in sorted(Path(folder).glob(f"reference-*/{BUNDLE}")):
        bundle, showcase = read_reference(path.parent)
        found.append((path.parent, bundle, showcase))
    return sorted(found, key=lambda item: item[1].get("date", ""))


def reference_table(bundle: dict, regions=REGIONS) -> list[dict]:
    """One row per model: the seconds its training took (the full scale's 20 epochs, checkpoints
    included; in a bundle older than its ``"stages"``, the data's upload too), the epoch kept,
    and its held-out test Dice per region at threshold 0.5 both ways: over all pixels, and per
    patient (mean ± standard deviation over the test patients, as papers on BraTS report it)."""
    rows = []
    for name, entry in bundle["models"].items():
        test = entry["test"]
        rows.append({"model": name, "training": f"{entry['seconds']:.0f} s",
                     "kept epoch": entry["best_epoch"],
                     **{f"Dice {r} all pixels": test["all_pixels"]["dice"][r] for r in regions},
                     **{f"Dice {r} per patient": "{mean:.2f} ± {std:.2f}".format(
                         **test["per_patient"]["dice"][r]) for r in regions}})
    return rows


def reference_reliability(bundle: dict) -> dict:
    """``{model: Reliability}`` of the bundle's models whose test pixels were binned (bundles
    written before ``"calibration"`` hold none: ``{}``)."""
    from unet_lib.calibration import Reliability

    return {name: Reliability.from_json(entry["calibration"])
            for name, entry in bundle["models"].items() if "calibration" in entry}


def bundle_account(folder: str | Path) -> str:
    """The first paragraph of a bundle's ``README.md`` (what the run was, and why it stopped
    if it did), as one line of Markdown; ``""`` when the folder has no README."""
    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return ""
    paragraphs = readme.read_text().split("\n\n")
    body = [p for p in paragraphs if p.strip() and not p.lstrip().startswith("#")]
    return " ".join(body[0].split()) if body else ""


def false_alarms_on_absent_regions(bundle: dict) -> str:
    """What the per-patient columns owe to regions a test patient lacks: a sentence naming each
    model that marked such a region (scored Dice 0 and HD95 373.13 mm by the BraTS rule) and
    its median over the patients beside the mean; ``""`` when no model did."""
    said = []
    for name, entry in bundle["models"].items():
        test = entry["test"]
        for row in test.get("patients", []):
            for region in row["empty"]:
                if row["dice"][region] < 1:
                    summary = test["per_patient"]["dice"][region]
                    said.append(f"the {name} U-Net marked {region} in test volume "
                                f"{row['volume']}, which has none, and scored Dice "
                                f"{row['dice'][region]:.2f} there (HD95 {row['hd95'][region]} "
                                f"mm): its {region} mean over the {summary['n']} patients is "
                                f"{summary['mean']:.2f}, its median {summary['median']:.2f}")
    return "; ".join(said)
