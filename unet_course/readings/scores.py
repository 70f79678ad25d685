"""Sentences chapter 6 reads off the models' scores over all pixels: the best model
(:func:`best_model_reading`), whether the models mark too much or too little
(:func:`recall_reading`), the order of the regions by Dice (:func:`region_orders`,
:func:`region_exceptions`), and what each model's threshold chosen on validation did on the
test patients (:func:`threshold_moves`).

``results``: model name → its scores at one threshold, ``{"dice": {name: value}, "precision":
{…}, "recall": {…}}`` per region (WT, TC, ET) and label (as
:func:`unet_lib.inference.evaluate` gives them).
"""

from __future__ import annotations

from typing import Sequence

from unet_lib.data import REGIONS

from .words import and_list

#: two Dice closer than this are a tie at the precision the book prints (three decimals)
TIE = 0.005

#: fewer validation volumes than this are few: a few slices can turn the regions' order
FEW_VOLUMES = 20

#: a change of test Dice smaller than this either way leaves it "about the same"
SAME = 0.005


def best_model_reading(results: dict, region: str = "WT", tie: float = TIE) -> tuple[str, float]:
    """``(words, Dice)``: the model with the best ``region`` Dice, with any model within ``tie``
    of it named as tied (``"classic U-Net, tied within 0.005 with the attention U-Net"``),
    and that Dice."""
    dice = {name: scores["dice"][region] for name, scores in results.items()}
    best = max(dice, key=dice.get)
    close = [name for name in dice if name != best and dice[best] - dice[name] < tie]
    several = len(close) > 1
    return (f"{best} U-Net" + (f", tied within {tie:g} with the {' and the '.join(close)} "
                               f"U-Net{'s' if several else ''}" if close else ""), dice[best])


def recall_reading(results: dict, names: Sequence[str]) -> tuple[str, str]:
    """``(count, reading)``: in how many (model, region or label of ``names``) pairs recall
    lies above precision (``"3 of the 15"``), and what that says of the models on balance
    (they mark too much, they miss more, or as often one as the other)."""
    pairs = [(model, name) for model in results for name in names]
    above = sum(results[model]["recall"][name] > results[model]["precision"][name]
                for model, name in pairs)
    reading = ("marks too much rather than too little" if 2 * above > len(pairs) else
               "misses more than it marks wrongly" if 2 * above < len(pairs) else
               "marks too much as often as it misses")
    return f"{above} of the {len(pairs)}", reading


def region_orders(results: dict) -> dict[str, list[str]]:
    """Model name → the three BraTS regions, highest Dice first."""
    return {name: sorted(REGIONS, key=lambda region: -scores["dice"][region])
            for name, scores in results.items()}


def region_exceptions(orders: dict[str, list[str]], n_volumes: int, phantom: bool) -> str:
    """Which models break the usual order WT > TC > ET (``orders``: :func:`region_orders`),
    and why that may be, for ``n_volumes`` validation volumes of the phantom or of real
    BraTS."""
    unusual = [name for name, order in orders.items() if order != list(REGIONS)]
    if not unusual:
        return "every model here follows it"
    several = len(unusual) > 1
    who = ("none of the models follows it here" if len(unusual) == len(orders) else
           f"the {' and the '.join(unusual)} U-Net{'s' if several else ''} rank"
           f"{'' if several else 's'} differently here")
    few = (f"{n_volumes} validation volumes are few, and a few slices can turn the order"
           if n_volumes < FEW_VOLUMES else
           f"over {n_volumes} validation volumes a few slices hardly turn the order")
    tracing = (" (the phantom's enhancing rims, regular rings, are also easier to trace than "
               "real ones)" if phantom else "")
    return (f"{who}: {few}{tracing}; chapter 7 ranks the regions again on the test patients, "
            "one by one")


def threshold_moves(carried: Sequence[dict], same: float = SAME) -> str:
    """Per region, which way the thresholds chosen on validation moved the test Dice, over
    the models: ``carried`` holds one row per model and region, ``{"region", "chosen on
    validation", "change"}`` (the test Dice at the chosen threshold minus at 0.5), e.g.
    ``"WT (thresholds 0.10 to 0.15) raised it for 2 and left it about the same for 1 of the 3
    models; ET (threshold 0.60 for every model) lowered it for every model"``."""
    by_region = []
    for region in dict.fromkeys(row["region"] for row in carried):
        rows = [row for row in carried if row["region"] == region]
        moves = [row["change"] for row in rows]
        chosen = [row["chosen on validation"] for row in rows]
        ups, downs = sum(m > same for m in moves), sum(m < -same for m in moves)
        ways = [f"{what} for {n}" for what, n in (("raised it", ups), ("lowered it", downs),
                                                   ("left it about the same",
                                                    len(moves) - ups - downs)) if n]
        way = (ways[0].split(" for ")[0] + " for every model" if len(ways) == 1 else
               and_list(ways) + f" of the {len(moves)} models")
        span = (f"threshold {chosen[0]:.2f} for every model" if min(chosen) == max(chosen)
                else f"thresholds {min(chosen):.2f} to {max(chosen):.2f}")
        by_region.append(f"{region} ({span}) {way}")
    return "; ".join(by_region)
