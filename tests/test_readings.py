"""The sentences the book reads off results (:mod:`unet_course.readings`): each judgement
against results built by hand, one per branch the words can take, so that a run, a scale or
real BraTS that gives other numbers than the quick phantom still reads true."""

from __future__ import annotations

import pytest
import torch


def test_what_went_wrong_names_the_errors_of_the_region_and_what_they_were_taken_for():
    from unet_course.examples import hardest_slice
    from unet_course.readings import what_went_wrong

    target = torch.zeros(3, 8, 8)
    target[2, 2:6, 2:6] = 1  # 16 ET pixels: the core
    target[1, 0, :] = 1  # 8 oedema pixels
    probs = torch.zeros(3, 8, 8)
    probs[2, 2:4, 2:6] = 0.9  # 8 of the core found
    probs[1, 4, 2:6] = 0.9  # 4 of the core's other 8 taken for oedema, 4 for nothing
    probs[0, 0, :2] = 0.9  # 2 oedema pixels marked as necrosis: core that is not
    probs[1, 0, 2:] = 0.9  # the rest of the oedema found
    assert what_went_wrong(probs, target, region="TC") == (
        "missed 8 of the 16 TC pixels (took 4 for ED, 4 for background) and "
        "marked 2 pixels as TC where the truth is ED")
    # the whole tumour lost only the 4 core pixels taken for nothing; ED errors don't count
    assert what_went_wrong(probs, target, region="WT") == (
        "missed 4 of the 24 WT pixels (took 4 for background)")
    assert what_went_wrong(target, target) == "no TC pixel is wrong"
    # a missed pixel marked in two channels counts once, for the likelier one
    both = torch.zeros(3, 8, 8)
    both[0, 2:6, 2:6], both[1, 2:6, 2:6] = 0.7, 0.9  # the ET core taken for NCR/NET and ED
    assert what_went_wrong(both, target, region="ET") == (
        "missed 16 of the 16 ET pixels (took 16 for ED)")
    targets = torch.stack([target, target])
    good = torch.stack([target, target])
    assert hardest_slice({"m": torch.stack([target, probs])}, targets, least_tumour=10) == 1
    with pytest.raises(ValueError, match=r"none of the 2 slices has a tumour core "
                                         r"\(NCR/NET and ET\) of 17 pixels"):
        hardest_slice({"m": good}, targets, least_tumour=17)  # 16 core pixels at most


def _core_in_oedema(size=16):
    """(3, size, size) truth: a 4×4 NCR/NET core inside a 10×10 block of oedema."""
    truth = torch.zeros(3, size, size)
    truth[1, 3:13, 3:13] = 1
    truth[1, 6:10, 6:10], truth[0, 6:10, 6:10] = 0, 1
    return truth


def test_a_ring_no_channel_passes_inside_the_predicted_tumour_is_counted_and_told():
    from unet_course.examples import Showcase
    from unet_course.readings import hole_pixels, holes_reading

    truth = _core_in_oedema()
    ring = truth.clone() * 0.9
    ring[1, 5:11, 5:11] = 0.45  # around the core the model hesitates: ED 0.45, NCR/NET 0.45
    ring[0, 5:11, 5:11] = 0.45
    ring[0, 6:10, 6:10] = 0.9
    assert hole_pixels(ring).sum() == 36 - 16  # the 6×6 square less the 4×4 core
    assert not hole_pixels(truth).any()
    # a tumour's edge left out is no hole: nothing of the prediction surrounds it
    edge = truth.clone()
    edge[1, 3, :] = 0
    assert not hole_pixels(edge).any()
    shown = Showcase([0, 1], ["volume 5, slice 19", "volume 3, slice 2"], None,
                     torch.stack([truth, truth]),
                     {"classic": torch.stack([truth, ring]), "improved": torch.stack([truth,
                                                                                      truth])},
                     "classic", 1.0, "", 2, 2)
    words = holes_reading(shown)
    assert words.startswith("Look for black inside a predicted tumour: the classic U-Net leaves "
                            "20 pixels black inside its tumour on volume 3, slice 2 (row 2), "
                            "where the truth has 20 ED.")
    assert "counts those in the true tumour as missed, 20 of its 100 pixels here" in words
    # where the truth is background inside the hole, black is right: not counted as missed
    truth_with_a_gap = truth.clone()
    truth_with_a_gap[1, 5, 5:11] = 0
    shown.truths[1] = truth_with_a_gap
    words = holes_reading(shown)
    assert "where the truth has 14 ED, 6 background." in words
    assert "as missed, 14 of its 94 pixels here" in words
    calm = Showcase([0], ["v"], None, truth[None], {"classic": truth[None]}, "classic", 1.0, "",
                    1, 1)
    assert holes_reading(calm).startswith("No prediction above leaves a hole of 10 pixels")


def _tc_history(values):
    from unet_lib.train import History

    return History([{"epoch": i + 1, "val": {"dice": {"TC": v}}} for i, v in enumerate(values)])


def test_learning_pace_names_each_first_epoch_and_whether_the_slowest_still_gains():
    from unet_course.readings.curves import learning_pace

    still = learning_pace({"classic": _tc_history([0.2, 0.8, 0.9, 0.9]),
                           "attention": _tc_history([0.1, 0.3, 0.72, 0.9])})
    assert still.startswith("validation TC Dice first reached 0.7 in epoch 2 (classic) and "
                            "3 (attention)")
    assert "the attention U-Net, the slowest, still gained +0.60" in still  # 0.9 - 0.3
    settled = learning_pace({"classic": _tc_history([0.8, 0.8, 0.8, 0.8]),
                             "attention": _tc_history([0.1, 0.75, 0.76, 0.76])})
    assert "gained +0.01 over its last two epochs: it had levelled off" in settled
    never = learning_pace({"classic": _tc_history([0.8, 0.8, 0.8]),
                           "improved": _tc_history([0.8, 0.9, 0.9]),
                           "attention": _tc_history([0.1, 0.2, 0.5])})
    assert "epoch 1 (classic), 1 (improved) and never (attention)" in never
    assert "attention U-Net, the slowest, still gained +0.40" in never
    assert learning_pace({"classic": _tc_history([0.8, 0.9])}) == (
        "validation TC Dice first reached 0.7 in epoch 1 (classic)")
    assert learning_pace({"classic": _tc_history([0.1, 0.5, 0.62]),
                          "attention": _tc_history([0.1, 0.3, 0.45])}) == (
        "no model's validation TC Dice reached 0.7: at the last epoch 0.62 for the classic U-Net "
        "and 0.45 for the attention U-Net")
    assert learning_pace({"classic": _tc_history([0.1, 0.8, 0.9]),
                          "attention": _tc_history([0.2, 0.75, 0.76])}) == (
        "every model's validation TC Dice first reached 0.7 in epoch 2: here they learnt it "
        "alike")


def test_the_slowest_learner_reached_the_level_last_or_never():
    from unet_course.readings.curves import slowest_learner

    assert slowest_learner({"classic": _tc_history([0.2, 0.8]),
                            "improved": _tc_history([0.1, 0.3, 0.75]),
                            "attention": _tc_history([0.72, 0.9])}) == "improved"
    assert slowest_learner({"classic": _tc_history([0.1, 0.2]),
                            "attention": _tc_history([0.1, 0.9])}) == "classic"  # never
    # a tie: the one further behind at the end
    assert slowest_learner({"classic": _tc_history([0.1, 0.95]),
                            "attention": _tc_history([0.1, 0.9])}) == "attention"
    assert slowest_learner({"classic": _tc_history([0.1, 0.6]),
                            "attention": _tc_history([0.1, 0.5])}) == "attention"  # neither


def test_the_overfitting_verdict_names_models_together_and_each_gap_once():
    from unet_course.readings.overfitting import overfitting_verdict

    def history(mean_dice):  # WT = TC = ET, so their mean is the value given
        return [{"val": {"dice": {"WT": d, "TC": d, "ET": d}}} for d in mean_dice]

    histories = {"classic": history([0.5, 0.8, 0.9]),  # its last epoch is its best
                 "improved": history([0.5, 0.9, 0.896]),  # 0.004 below: over-confident
                 "attention": history([0.5, 0.9, 0.85])}  # 0.05 below: worse masks
    verdict = overfitting_verdict(histories, ["classic", "improved", "attention"])
    assert verdict.startswith(
        "The classic and improved U-Nets overfit by the loss, hardly by the segmentations: by "
        "the mean validation Dice over WT, TC and ET, the classic U-Net's last epoch is its "
        "best and the improved U-Net's last epoch is 0.004 below its best.")
    assert ("The attention U-Net overfits by the segmentations too: the last epoch's mean "
            "validation Dice over WT, TC and ET is 0.05 below the best for the attention U-Net"
            in verdict)
    assert overfitting_verdict(histories, []) == ""


# --- chapter 4: the learning curves, the epoch kept --------------------------------------------------------

def _histories(**models):
    """model → History: each model given as ``{"dice": {region: [per epoch]}, "val_loss": [...],
    "train_loss": [...]}``; a region not given stays at 0.9 every epoch, a loss at 1.0."""
    from unet_lib.train import History

    histories = {}
    for name, given in models.items():
        epochs = len(next(iter([*given.get("dice", {}).values(), *[
            v for k, v in given.items() if k != "dice"]])))
        dice = {region: given.get("dice", {}).get(region, [0.9] * epochs)
                for region in ("WT", "TC", "ET", "NCR/NET")}
        histories[name] = History([
            {"epoch": e + 1, "train_loss": given.get("train_loss", [1.0] * epochs)[e],
             "val_loss": given.get("val_loss", [1.0] * epochs)[e],
             "val": {"dice": {region: values[e] for region, values in dice.items()}}}
            for e in range(epochs)])
    return histories


def test_a_fall_counts_once_the_curve_first_reached_a_half():
    from unet_course.readings.curves import largest_fall

    assert largest_fall([0.1, 0.6, 0.4, 0.7, 0.65]) == pytest.approx(0.2)  # 0.6 → 0.4
    assert largest_fall([0.3, 0.1, 0.55, 0.5]) == pytest.approx(0.05)  # 0.3 → 0.1: learning
    assert largest_fall([0.3, 0.1]) == 0.0  # never found
    assert largest_fall([0.5, 0.6, 0.7]) == 0.0  # never fell


def test_the_jumpiest_curve_is_named_with_a_small_regions_fall_when_a_large_one_fell_most():
    from unet_course.readings.curves import jumpiest_reading

    small = _histories(classic={"dice": {"WT": [0.9, 0.8, 0.9]}},  # WT fell 0.1
                       attention={"dice": {"ET": [0.6, 0.93, 0.6]}})  # ET fell 0.33
    fall, whose = jumpiest_reading(small)
    assert fall == pytest.approx(0.33)
    assert whose == "the attention U-Net's ET, a small region"
    large = _histories(classic={"dice": {"WT": [0.9, 0.6, 0.9]}},  # WT fell 0.3
                       improved={"dice": {"TC": [0.9, 0.8, 0.85], "ET": [0.9, 0.85, 0.9]}})
    fall, whose = jumpiest_reading(large)
    assert fall == pytest.approx(0.3)
    assert whose == ("the classic U-Net's WT, a large one this time; the small ones fell by up "
                     "to 0.10, the improved U-Net's TC")
    assert jumpiest_reading(_histories(classic={"dice": {"ET": [0.6, 0.7]}})) == (
        0.0, "none did: every curve only rose once found")
    low = {"TC": [0.1, 0.3, 0.2], "ET": [0.1, 0.2, 0.1], "NCR/NET": [0.0, 0.1, 0.05]}
    assert jumpiest_reading(_histories(classic={"dice": {"WT": [0.9, 0.6, 0.9], **low}})) == (
        pytest.approx(0.3), "the classic U-Net's WT, a large one this time; the small ones never "
                            "reached a Dice of 0.5")
    steady = {"TC": [0.6, 0.7, 0.8], "ET": [0.1, 0.2, 0.1], "NCR/NET": [0.0, 0.1, 0.05]}
    assert jumpiest_reading(_histories(classic={"dice": {"WT": [0.9, 0.6, 0.9], **steady}}))[1] == (
        "the classic U-Net's WT, a large one this time; the small ones never fell once found")


def test_batch_norm_is_named_only_when_its_curves_were_clearly_the_jumpiest():
    from unet_course.readings.curves import batch_norm_reading

    steady = {"val_loss": [1.0, 0.9, 0.95]}  # at most ×1.06 (0.95 / 0.9)
    jumpy = _histories(classic=steady, attention=steady,
                       improved={"val_loss": [1.0, 0.5, 0.8],  # ×1.60 from epoch 2 to 3
                                 "dice": {"NCR/NET": [0.9, 0.7, 0.9]}})  # fell 0.2
    words = batch_norm_reading(jumpy)
    assert words.startswith(
        "The Improved U-Net, the one model with batch norm, had the largest fall; its "
        "validation loss jumped the most of the three, ×1.60 from epoch 2 to 3 (the classic "
        "U-Net's at most ×1.06, the attention U-Net's at most ×1.06). Batch norm can move")
    # why it can: the training batches' statistics, drawn with the run's share of tumour
    assert words.endswith("which lag behind weights that still change fast (exercise 2.3).")
    assert batch_norm_reading(jumpy, tumour_share=0.8).endswith(
        "which lag behind weights that still change fast and come from batches in which four in "
        "five of the slices hold tumour (exercise 2.3).")
    assert "batches in which 35 % of the slices hold tumour" in batch_norm_reading(
        jumpy, tumour_share=0.35)
    # the others' loss rose nearly as much (×1.50: 1.60 is less than 1.15 × 1.50)
    close = _histories(classic={"val_loss": [1.0, 0.6, 0.9]}, attention=steady,
                       improved={"val_loss": [1.0, 0.5, 0.8]})
    words = batch_norm_reading(close)
    assert words.startswith(
        "No Dice curve fell once found, not even those of the Improved U-Net, the one model "
        "with batch norm; its validation loss rose by up to ×1.60 from one epoch to the next, "
        "and the models without batch norm nearly as much (the classic U-Net's at most ×1.50, "
        "the attention U-Net's at most ×1.06): these curves cannot single batch norm out.")
    more = _histories(classic={"val_loss": [1.0, 0.5, 0.9]}, attention=steady,
                      improved={"val_loss": [1.0, 0.5, 0.8]})
    assert "without batch norm about as much or more (the classic U-Net's at most ×1.80" in (
        batch_norm_reading(more))


def test_batch_norm_reading_when_curves_did_not_fall_or_losses_did_not_rise():
    from unet_course.readings.curves import batch_norm_reading, loss_rises

    falling = {"val_loss": [1.0, 0.9, 0.8]}  # never rose
    steady = {"val_loss": [1.0, 0.9, 0.95]}  # ×1.06 (0.95 / 0.9)
    # the others' curves fell, the Improved U-Net's never did; its loss never rose
    words = batch_norm_reading(_histories(
        classic={**steady, "dice": {"ET": [0.6, 0.5, 0.6]}}, attention=falling,
        improved=falling))
    assert words.startswith(
        "By Dice the Improved U-Net, the one model with batch norm, was not the jumpiest here "
        "(none of its curves fell once found); its validation loss never rose from one epoch "
        "to the next (the classic U-Net's at most ×1.06, the attention U-Net's never). ")
    # its loss rose a little, the others' never: too little to name
    words = batch_norm_reading(_histories(classic=falling, attention=falling, improved=steady))
    assert ("its validation loss rose by up to ×1.06 from one epoch to the next and that of the "
            "models without batch norm never: too little to single batch norm out.") in words
    # one other model: named in the singular
    assert "and the model without batch norm about as much or more (the classic U-Net's" in (
        batch_norm_reading(_histories(classic={"val_loss": [1.0, 0.5, 0.9]},
                                      improved={"val_loss": [1.0, 0.5, 0.8]})))
    # it rose clearly, the others' never
    assert "jumped the most of the three, ×1.20 from epoch 1 to 2 (the classic U-Net's never" in (
        batch_norm_reading(_histories(classic=falling, attention=falling,
                                      improved={"val_loss": [1.0, 1.2, 1.1]})))
    # no model to compare with
    assert "its validation loss rose by up to ×1.06 from one epoch to the next. Batch" in (
        batch_norm_reading(_histories(improved=steady)))
    assert loss_rises(_histories(improved={"val_loss": [0.5]})["improved"]) == (1.0, 0)
    assert loss_rises(_histories(improved={"val_loss": [0.0, 0.5, 0.6]})["improved"]) == (
        pytest.approx(1.2), 2)  # a rise from a loss of 0 has no factor: left out


def test_keeping_the_best_epoch_mattered_only_for_a_gap_of_a_hundredth():
    from unet_course.readings.overfitting import kept_reading

    curves = _histories(classic={"dice": {"WT": [0.5, 0.9, 0.84]}},  # mean 0.02 below kept
                        improved={"dice": {"WT": [0.5, 0.9, 0.89]}},  # 0.0033 below
                        attention={"dice": {"WT": [0.5, 0.8, 0.9]}})  # its last is its best
    assert kept_reading(curves, {"classic": 2, "improved": 2, "attention": 3}) == (
        "here it mattered for the classic U-Net, whose last epoch was 0.02 below the kept one "
        "in mean Dice")
    assert kept_reading(curves, {"classic": 3, "improved": 2, "attention": 3}) == (
        "here the improved U-Net kept an earlier epoch, but its last one was less than 0.01 "
        "below it in mean Dice: it hardly mattered")
    assert kept_reading(curves, {"classic": 3, "improved": 3, "attention": 3}) == (
        "here each model happened to do best in its last epoch")
    curves["attention"] = _histories(attention={"dice": {"WT": [0.5, 0.9, 0.89]}})["attention"]
    assert kept_reading(curves, {"classic": 3, "improved": 2, "attention": 2}) == (
        "here the improved and the attention U-Nets kept an earlier epoch, but the last epoch of "
        "each was less than 0.01 below the kept one in mean Dice: it hardly mattered")


def test_losses_that_rose_again_and_training_losses_above_validation_are_counted():
    from unet_course.readings.overfitting import (rising_losses, rising_reading,
                                                  training_loss_above)

    curves = _histories(classic={"val_loss": [1.0, 0.5, 0.6], "train_loss": [1.0, 0.5, 0.4]},
                        improved={"val_loss": [1.0, 0.5, 0.54], "train_loss": [1.0, 0.6, 0.6]},
                        attention={"val_loss": [1.0, 0.5, 0.5], "train_loss": [1.0, 0.6, 0.6]})
    rising = rising_losses(curves)
    assert rising == {"classic": pytest.approx(0.2)}  # 0.6 / 0.5; improved's 8 % is not 10 %
    assert rising_reading(rising) == ("here the validation loss ended 20 % above its lowest for "
                                      "the classic U-Net")
    assert rising_reading({}) == ("here no model's validation loss ended more than 10 % above its "
                                  "lowest")
    assert training_loss_above(curves) == "2 of the 3 models (improved, attention)"
    assert training_loss_above({"classic": curves["classic"]}) == "none of the models"


# --- chapter 6: the scores over all pixels -------------------------------------------------

def _scores(dice, precision=None, recall=None):
    return {"dice": dice, "precision": precision or dice, "recall": recall or dice}


def test_the_best_model_names_those_within_a_tie_of_it():
    from unet_course.readings.scores import best_model_reading

    results = {"classic": _scores({"WT": 0.918}), "improved": _scores({"WT": 0.9151}),
               "attention": _scores({"WT": 0.90})}
    assert best_model_reading(results) == ("classic U-Net, tied within 0.005 with the improved "
                                           "U-Net", 0.918)
    results["attention"] = _scores({"WT": 0.914})
    assert best_model_reading(results)[0] == ("classic U-Net, tied within 0.005 with the "
                                              "improved and the attention U-Nets")
    results["improved"] = results["attention"] = _scores({"WT": 0.85})
    assert best_model_reading(results)[0] == "classic U-Net"


def test_recall_above_precision_is_counted_over_models_and_regions():
    from unet_course.readings.scores import recall_reading

    results = {"classic": _scores({"WT": 0, "ET": 0}, precision={"WT": 0.8, "ET": 0.9},
                                  recall={"WT": 0.9, "ET": 0.8}),
               "improved": _scores({"WT": 0, "ET": 0}, precision={"WT": 0.7, "ET": 0.6},
                                   recall={"WT": 0.9, "ET": 0.8})}
    assert recall_reading(results, ["WT", "ET"]) == ("3 of the 4",
                                                     "marks too much rather than too little")
    assert recall_reading(results, ["ET"]) == ("1 of the 2", "marks too much as often as it misses")
    assert recall_reading(results, ["WT"]) == ("2 of the 2",
                                               "marks too much rather than too little")
    results["improved"]["recall"]["ET"] = 0.5  # now 2 of 4 pairs: a tie
    assert recall_reading(results, ["WT", "ET"]) == ("2 of the 4",
                                                     "marks too much as often as it misses")
    assert recall_reading(results, ["ET"]) == ("0 of the 2", "misses more than it marks wrongly")


def test_the_regions_order_and_its_exceptions_say_why_for_the_data_they_came_from():
    from unet_course.readings.scores import region_exceptions, region_orders

    usual = _scores({"WT": 0.9, "TC": 0.8, "ET": 0.7})
    odd = _scores({"WT": 0.8, "TC": 0.7, "ET": 0.85})
    orders = region_orders({"classic": usual, "improved": odd})
    assert orders == {"classic": ["WT", "TC", "ET"], "improved": ["ET", "WT", "TC"]}
    assert region_exceptions({"classic": orders["classic"]}, 3, phantom=True) == (
        "every model here follows it")
    assert region_exceptions(orders, 3, phantom=True) == (
        "the improved U-Net ranks differently here: 3 validation volumes are few, and a few "
        "slices can turn the order (the phantom's enhancing rims, regular rings, are also "
        "easier to trace than real ones); chapter 7 ranks the regions again on the test "
        "patients, one by one")
    real = region_exceptions({"classic": orders["improved"], "improved": orders["improved"]},
                             74, phantom=False)
    assert real == ("none of the models follows it here: over 74 validation volumes a few slices "
                    "hardly turn the order; chapter 7 ranks the regions again on the test "
                    "patients, one by one")
    assert region_exceptions(orders, 20, phantom=True) == (
        "the improved U-Net ranks differently here: over 20 validation volumes a few slices "
        "hardly turn the order (the phantom's enhancing rims, regular rings, are also easier to trace "
        "than real ones); chapter 7 ranks the regions again on the test patients, one by one")


def test_each_regions_thresholds_and_which_way_they_moved_the_test_dice():
    from unet_course.readings.scores import threshold_moves

    carried = [{"region": "WT", "chosen on validation": 0.10, "change": +0.02},
               {"region": "WT", "chosen on validation": 0.15, "change": +0.006},
               {"region": "WT", "chosen on validation": 0.10, "change": -0.004},
               {"region": "ET", "chosen on validation": 0.6, "change": -0.01},
               {"region": "ET", "chosen on validation": 0.6, "change": -0.03}]
    assert threshold_moves(carried) == (
        "WT (thresholds 0.10 to 0.15) raised it for 2 and left it about the same for 1 of the 3 "
        "models; ET (threshold 0.60 for every model) lowered it for every model")


# --- chapter 7: the test patients ----------------------------------------------------------

def _patients(*rows):
    """PatientScores of ``(volume, WT Dice, WT HD95)`` rows (TC and ET as WT; precision and
    recall as Dice; an ``"ET"`` fourth item marks ET as empty in the truth)."""
    from unet_lib.patients import PatientScores

    return PatientScores([{"volume": volume, "slices": 32,
                           **{m: {r: dice for r in ("WT", "TC", "ET")}
                              for m in ("dice", "precision", "recall")},
                           "hd95": {r: hd95 for r in ("WT", "TC", "ET")},
                           "empty": list(empty)} for volume, dice, hd95, *empty in rows])


def test_a_patient_whose_hd95_stands_out_while_its_dice_does_not_is_found_and_told():
    from unet_course.readings.patients import hd95_case, hd95_sentence, patient_to_draw, \
        standing_out

    patients = {"classic": _patients((12, 0.93, 18.1), (3, 0.90, 5.5), (5, 0.94, 7.0),
                                     (9, 0.96, 6.0)),
                "attention": _patients((12, 0.90, 9.0), (3, 0.91, 8.0), (5, 0.92, 6.0))}
    found = standing_out(patients)
    assert (found.model, found.row["volume"], found.empty) == ("classic", 12, 0)
    assert found.ratio == pytest.approx(18.1 / 7.0)
    assert hd95_sentence(patients, found) == (
        "the classic U-Net scored test patient 12's whole tumour with a Dice of 0.93, among "
        "those of its other patients (0.90 to 0.96), yet its HD95 there is 18.1 mm, against "
        "5.5 to 7.0 mm on the others: 2.6 times their largest. The next section draws this "
        "patient")
    assert patient_to_draw(patients, found) == ("classic", found.row)
    assert hd95_case(patients, "classic", found.row, found) == (
        "classic U-Net's test patient 12, whose whole-tumour HD95 (18.1 mm) stands out from "
        "its other patients' while its Dice does not")


@pytest.mark.parametrize("rows, why", [
    (((12, 0.80, 18.1), (3, 0.90, 5.5), (5, 0.94, 7.0)), "its Dice below the others' quartile"),
    (((12, 0.93, 17.5), (3, 0.90, 5.5), (5, 0.94, 12.0)), "×1.46 of the others' largest"),
    (((12, 0.93, 8.5), (3, 0.90, 3.5), (5, 0.94, 4.0)), "×2.1, but only 4.5 mm farther")])
def test_no_patient_stands_out_unless_far_beyond_the_others_with_a_dice_among_theirs(rows, why):
    from unet_course.readings.patients import hd95_sentence, patient_to_draw, standing_out

    patients = {"classic": _patients(*rows)}
    assert standing_out(patients) is None, why
    assert hd95_sentence(patients, None).startswith(
        "no patient's whole-tumour HD95 stands out 1.5 times above its model's other patients' "
        "with a Dice as good as theirs. Over the patients, the whole-tumour HD95 averaged ")
    model, row = patient_to_draw(patients, None)  # the largest HD95 between two outlines
    assert row["hd95"]["WT"] == max(hd95 for _, _, hd95 in rows)
    if "×1.46" in why:  # a looser rule finds it: 17.5 ÷ 12.0
        assert standing_out(patients, stands_out=1.4).ratio == pytest.approx(17.5 / 12.0)
    assert "stands out 2 times above" in hd95_sentence(patients, None, stands_out=2)


def test_an_empty_outline_is_left_out_of_the_comparison_and_of_the_drawing():
    from unet_course.readings.patients import hd95_case, hd95_sentence, patient_to_draw, \
        standing_out

    patients = {"classic": _patients((12, 0.93, 18.1), (3, 0.90, 5.5), (5, 0.94, 7.0),
                                     (7, 0.0, 373.13)),  # an outline empty
                "attention": _patients((12, 0.90, 9.0), (3, 0.91, 8.0), (5, 0.92, 6.0))}
    found = standing_out(patients)
    assert (found.row["volume"], found.empty) == (12, 1)
    assert "against 5.5 to 7.0 mm on the others whose outlines were both there: 2.6" in (
        hd95_sentence(patients, found))
    assert hd95_case(patients, "classic", found.row, found).endswith(
        "; its 373.13 mm for patient 7 says an outline is empty, with nothing to draw")
    # with none standing out: the classic's mean HD95 is the largest (its 373.13 counts), and
    # its largest HD95 between two outlines is drawn, not the empty one
    assert patient_to_draw(patients, None)[0] == "classic"
    assert patient_to_draw(patients, None)[1]["volume"] == 12
    # a model whose outlines are all empty has nothing to draw: another model's patient is
    only_empty = {"classic": _patients((7, 0.0, 373.13)), "attention": patients["attention"]}
    assert patient_to_draw(only_empty, None)[1]["volume"] == 12
    with pytest.raises(ValueError, match="no test patient has both a predicted and a true"):
        patient_to_draw({"classic": _patients((7, 0.0, 373.13))}, None)


@pytest.mark.parametrize("gap, without, words", [
    (0.03, 0.0001, "The empty-region rule makes up all of the gap"),
    (0.03, -0.01, "The empty-region rule makes up more than the whole gap: without it the "
                  "per-patient mean lies 0.010 below the score over all pixels"),
    (0.03, 0.01, "The empty-region rule makes up 67 % of the gap"),  # 1 - 0.01 / 0.03
    (0.2, 0.0009, "The empty-region rule makes up nearly all of the gap"),  # 99.55 %
    (0.2, 0.1995, "The empty-region rule makes up hardly any of the gap"),  # 0.25 %
    (0.03, 0.05, "The empty-region rule narrows the gap: without it the gap is +0.050"),
    (-0.03, 0.01, "The empty-region rule makes up more than the whole gap: without it the "
                  "per-patient mean lies 0.010 above the score over all pixels")])
def test_the_empty_region_rules_share_of_a_gap(gap, without, words):
    from unet_course.readings.patients import rule_share

    assert rule_share(gap, without) == words


def test_the_empty_region_reading_counts_the_patients_the_rule_scores():
    from unet_course.readings.patients import empty_region_reading

    rows = _patients((1, 1.0, 0.0, "ET"), (2, 0.8, 4.0), (3, 0.9, 4.0), (4, 0.85, 4.0)).rows
    # per-patient mean 0.8875, 0.0315 above 0.856; without patient 1: 0.850, 0.006 below
    assert empty_region_reading("classic", rows, all_pixels=0.856) == (
        "1 of the 4 test patients has no ET in the truth, and the classic U-Net scored a whole "
        "1 there (it marked none). Without it, its ET per-patient mean is 0.850, against 0.856 "
        "over all 4 patients' pixels. The empty-region rule makes up more than the whole gap: "
        "without it the per-patient mean lies 0.006 below the score over all pixels")
    assert empty_region_reading("classic", rows[1:], all_pixels=0.856) == (
        "Every test patient has ET in the truth here, so the empty-region rule plays no part "
        "in the gap")
    assert empty_region_reading("classic", rows[:1], all_pixels=1.0).startswith(
        "No test patient has ET in the truth here")
    # a false alarm where the truth has none: 0 there, and most of the gap
    alarm = _patients((1, 0.0, 373.13, "ET"), (2, 0.96, 4.0), (3, 0.97, 4.0),
                      (4, 0.962, 4.0)).rows
    # mean 0.723 against 0.972: gap -0.249; without patient 1: 0.964, gap -0.008 (97 % less)
    assert empty_region_reading("improved", alarm, all_pixels=0.972) == (
        "1 of the 4 test patients has no ET in the truth, and the improved U-Net scored 0 there "
        "(it marked some). Without it, its ET per-patient mean is 0.964, against 0.972 over all 4 "
        "patients' pixels. The empty-region rule makes up 97 % of the gap")
    two = _patients((1, 1.0, 0.0, "ET"), (2, 0.0, 373.13, "ET"), (3, 0.5, 4.0)).rows
    assert empty_region_reading("improved", two, all_pixels=0.5).startswith(
        "2 of the 3 test patients have no ET in the truth, and the improved U-Net scored 1 on 1 "
        "of them and 0 on 1 of them (1: it marked none; 0: it marked some). Without them, its "
        "ET per-patient mean is 0.500")
    both_hit = _patients((1, 1.0, 0.0, "ET"), (2, 1.0, 0.0, "ET"), (3, 0.5, 4.0)).rows
    assert "scored 1 on 2 of them (it marked none). Without them" in empty_region_reading(
        "classic", both_hit, all_pixels=0.5)
    both_missed = _patients((1, 0.0, 373.13, "ET"), (2, 0.0, 373.13, "ET"), (3, 0.5, 4.0)).rows
    assert "scored 0 on 2 of them (it marked some). Without them" in empty_region_reading(
        "classic", both_missed, all_pixels=0.5)


def test_the_settled_comparisons_are_counted_and_named():
    from unet_course.readings.patients import settled_sentence

    rows = [{"region": "TC", "higher mean": "classic", "than": "attention", "settled": "yes"},
            {"region": "WT", "higher mean": "classic", "than": "improved", "settled": "no"}]
    assert settled_sentence(rows[1:]) == "Of the 1 comparison, none reaches p < 0.05."
    assert settled_sentence(rows) == ("Of the 2 comparisons, 1 reaches p < 0.05: classic over "
                                      "attention in TC.")
    rows[1]["settled"] = "yes"
    assert settled_sentence(rows).startswith("Of the 2 comparisons, 2 reach p < 0.05: ")


# --- chapter 8: the attention gates --------------------------------------------------------

@pytest.mark.parametrize("contrast, words", [
    (0.3, "passes the tumour and damps the rest"), (0.051, "passes the tumour and damps the rest"),
    (0.05, "treats tumour and the rest alike"), (-0.02, "treats tumour and the rest alike"),
    (-0.2, "damps the tumour and passes the rest")])
def test_a_gates_contrast_in_words(contrast, words):
    from unet_course.readings.gates import gate_reading

    assert gate_reading(contrast) == words


def test_the_slices_a_search_kept_say_how_they_were_chosen():
    from unet_course.examples import scanned_slices
    from unet_course.readings.slices import slices_searched

    # a quick split: every slice read, fewer with tumour than wanted
    assert slices_searched(41, wanted=256, scanned=scanned_slices(range(128), 1024),
                           slices=128) == "every test slice that holds tumour, 41 of the 128"
    assert slices_searched(48, wanted=48, scanned=128, slices=128) == (
        "the 48 test slices with the most tumour")
    # a real BraTS test split: 74 patients of 155 slices, every 12th slice read
    assert slices_searched(256, wanted=256, scanned=scanned_slices(range(11_470), 1024),
                           slices=11_470) == ("the 256 test slices with the most tumour among "
                                              "956 evenly spaced ones of the 11,470")
    assert slices_searched(30, wanted=48, scanned=400, slices=11_470) == (
        "the 30 test slices that hold tumour among 400 evenly spaced ones of the 11,470, all it "
        "found")


@pytest.mark.parametrize("patients, room", [
    (4, '"cannot tell" is the only verdict'),  # p ≥ 2/16
    (5, '"cannot tell" is the only verdict'),  # 2/32 = 0.0625
    (6, "needs a model that wins on nearly every patient"),  # 2/64 = 0.031
    (10, "needs a model that wins on nearly every patient"),
    (11, "no obstacle with this many patients")])
def test_what_the_smallest_sign_flip_p_leaves_room_for(patients, room):
    from unet_course.readings.chance import verdict_room
    from unet_lib.comparison import smallest_sign_flip_p

    assert room in verdict_room(patients, smallest_sign_flip_p(patients))



def test_the_verdict_room_names_what_must_win():
    from unet_course.readings.chance import verdict_room

    assert verdict_room(8, 2 / 256, winner="loss") == (
        "so a verdict needs a loss that wins on nearly every patient")


# --- the readings on results of the slides' configuration ------------------------------------

def test_the_readings_read_the_full_scale_reference_results():
    # the committed H200 bundle (benchmarks/reference-*): 20 epochs at 240×240, batch 32, a
    # plain shuffle, 4 test patients of 155 slices: what the quick build never gives them
    from unet_course.bundles import false_alarms_on_absent_regions, reference_bundles
    from unet_course.readings import curves, overfitting, patients
    from unet_lib.outlines import HD95_ONE_EMPTY
    from unet_lib.patients import PatientScores

    full = [bundle for _, bundle, _ in reference_bundles() if bundle["scale"] == "full"]
    if not full:
        pytest.skip("no reference bundle of the full scale under benchmarks/")
    bundle = full[-1]  # the newest, as the book shows it
    models = bundle["models"]
    histories = {name: entry["history"] for name, entry in models.items()}
    words = [curves.jumpiest_reading(histories)[1], curves.learning_pace(histories),
             overfitting.kept_reading(histories, {n: e["best_epoch"] for n, e in models.items()}),
             overfitting.training_loss_above(histories),
             overfitting.rising_reading(overfitting.rising_losses(histories))]
    if "improved" in histories:
        share = bundle["recipe"]["config"]["tumour_share"]  # None: the slides shuffle plainly
        words.append(curves.batch_norm_reading(histories, tumour_share=share))
        assert ("of the slices hold tumour" in words[-1]) == (share is not None)
    assert all(text and "nan" not in text for text in words)
    scores = {name: PatientScores(entry["test"]["patients"]) for name, entry in models.items()}
    found = patients.standing_out(scores)
    model, row = patients.patient_to_draw(scores, found)
    assert row["hd95"]["WT"] < HD95_ONE_EMPTY and patients.hd95_sentence(scores, found)
    # a model that marked ET where a patient has none scored 0 there, and the reading says so
    for name, entry in models.items():
        reading = patients.empty_region_reading(name, scores[name].rows,
                                                entry["test"]["all_pixels"]["dice"]["ET"])
        alarm = f"the {name} U-Net marked ET in test volume" in (
            false_alarms_on_absent_regions(bundle))
        said_zero = "scored 0 there (it marked some)" in reading or " and 0 on " in reading or (
            "scored 0 on " in reading)
        assert said_zero == alarm, reading
