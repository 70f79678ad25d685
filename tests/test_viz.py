"""The course's figures: the RGB mask mapping and that each figure draws what it says."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

from unet_course.viz import (attention_overlay, mask_to_rgb, plot_history, show_attention, show_modalities,  # noqa: E402
                          show_prediction)


def test_stored_uint8_masks_show_in_full_colour():
    mask = np.zeros((3, 2, 2), np.uint8)
    mask[0, 0, 0] = 1
    rgb = mask_to_rgb(mask)
    assert rgb.dtype == np.float32 and rgb[0, 0].tolist() == [1.0, 0.0, 0.0]


def test_mask_channels_become_red_green_blue():
    mask = torch.zeros(3, 2, 2)
    mask[0, 0, 0] = mask[1, 0, 1] = mask[2, 1, 0] = 1
    rgb = mask_to_rgb(mask)
    assert rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [1, 0, 0] and rgb[0, 1].tolist() == [0, 1, 0]
    assert rgb[1, 0].tolist() == [0, 0, 1] and rgb[1, 1].tolist() == [0, 0, 0]


def test_mask_to_rgb_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"expected a \(3, H, W\) mask"):
        mask_to_rgb(np.zeros((2, 2, 3)))


def test_prediction_figure_shows_the_binarized_mask_and_its_dice():
    image, target = torch.randn(4, 16, 16), torch.zeros(3, 16, 16)
    target[1, 4:8, 4:8] = 1
    probs = target * 0.8 + 0.1  # above 0.5 exactly where the target is
    fig = show_prediction(image, target, probs, threshold=0.5)
    axes = fig.axes
    assert [ax.get_title().split("\n")[0] for ax in axes] == [
        "FLAIR", "ground truth", "prediction (probabilities)", "binarized at 0.50"]
    assert "ED 1.00" in axes[3].get_xlabel()
    shown = axes[3].images[0].get_array()
    assert np.array_equal(np.asarray(shown), mask_to_rgb(target))
    core_taken_for_oedema = target[[1, 0, 2]]  # the truth's pixels are NCR/NET, marked ED
    fig = show_prediction(image, core_taken_for_oedema, probs, threshold=0.5)
    assert fig.axes[3].get_xlabel() == ("Dice per label:\nNCR/NET 0.00, ED 0.00, ET 1.00\n"
                                        "per region:\nWT 1.00, TC 0.00, ET 1.00\n"
                                        "no pixel in two channels")
    both = probs.clone()
    both[2, 4:6, 4:8] = 0.9  # 8 of the oedema's pixels marked ET as well: cyan in the picture
    fig = show_prediction(image, target, both, threshold=0.5)
    assert fig.axes[3].get_xlabel().endswith("\nin two channels: ED+ET 8 px")


@pytest.mark.parametrize("threshold", [None, 0.5])
@pytest.mark.parametrize("overlaps", [False, True])
def test_the_prediction_figures_title_sits_above_every_panel_and_caption(threshold, overlaps):
    image, target = torch.randn(4, 96, 96), torch.zeros(3, 96, 96)
    target[1, 30:60, 30:60] = 1
    # the short caption ("no pixel in two channels") let the layout give up before, the
    # title then covering the panels' titles; the longest: each pair of channels, and all three
    probs = target * 0.9
    if overlaps:
        for rows, channels in ((slice(0, 24), [0, 1]), (slice(24, 48), [1, 2]),
                               (slice(48, 72), [0, 2]), (slice(72, 96), [0, 1, 2])):
            probs[channels, rows] = 0.9
    fig = show_prediction(image, target, probs, threshold=threshold,
                          title="improved U-Net, test volume 3, slice 19")
    fig.canvas.draw()
    try:
        title = fig._suptitle.get_window_extent()
        for ax in fig.axes:
            assert title.y0 >= ax.title.get_window_extent().y1, ax.get_title()
            assert title.y0 >= ax.get_window_extent().y1, ax.get_title()
        width = fig.bbox.width  # and every caption within the figure
        assert all(0 <= ax.xaxis.label.get_window_extent().x0 and
                   ax.xaxis.label.get_window_extent().x1 <= width for ax in fig.axes)
        legend = fig.legends[0].get_window_extent()  # under the pictures, on no caption
        for ax in fig.axes:
            assert not legend.overlaps(ax.get_window_extent())
            assert not ax.get_xlabel() or not legend.overlaps(ax.xaxis.label.get_window_extent())
    finally:
        plt.close(fig)


def test_modalities_history_and_attention_figures_have_a_panel_each():
    image = torch.randn(4, 32, 32)
    assert len(show_modalities(image, torch.zeros(3, 32, 32)).axes) == 5
    records = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e,
                "val": {"dice": {"WT": e / 10, "TC": e / 20}}} for e in (1, 2, 3)]
    fig = plot_history(records)
    assert [line.get_label() for line in fig.axes[1].lines] == ["WT", "TC"]
    fig.canvas.draw()
    for ax in fig.axes[:2]:  # epochs are whole: no tick at 1.5 or 2.5
        assert all(float(tick).is_integer() for tick in ax.get_xticks())
    maps = [torch.rand(1, 4, 4), torch.rand(1, 8, 8), torch.rand(1, 16, 16), torch.rand(1, 32, 32)]
    maps[0] = torch.full((1, 4, 4), 0.5) + torch.linspace(0, 0.01, 16).reshape(1, 4, 4)  # flat
    fig = show_attention(image, maps)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[:5]] == [
        "FLAIR", "gate at 4×4", "gate at 8×8", "gate at 16×16", "gate at 32×32"]
    low, high = maps[1].min().item(), maps[1].max().item()
    assert fig.axes[2].get_title().split("\n")[1] == f"α {low:.2f} – {high:.2f}"
    assert [ax.get_title() for ax in fig.axes[6:10]] == ["flat: 0…1 scale"] + ["stretched"] * 3
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 5  # one per stretched map, one shared by the top row
    assert np.allclose(bars[0].get_xlim(), (0, 1))  # the flat map is not blown up
    assert np.allclose(bars[1].get_xlim(), (low, high))  # its own α, not 0…1
    assert np.allclose(bars[-1].get_xlim(), (0, 1))  # the top row's common scale
    plt.close(fig)
    top_only = show_attention(image, maps, stretch=False)
    assert len(top_only.axes) == 5 + 1  # FLAIR, four maps, the common bar
    plt.close(top_only)


def test_stretched_overlay_uses_the_whole_colour_map():
    channel = torch.zeros(8, 8)
    attention = torch.linspace(0.42, 0.50, 64).reshape(8, 8)  # a gate early in training
    plain = attention_overlay(channel, attention, alpha=1.0)
    stretched = attention_overlay(channel, attention, alpha=1.0, stretch=True)
    inferno = plt.get_cmap("inferno")
    assert np.allclose(stretched[0, 0], inferno(0.0)[:3], atol=0.05)  # lowest α: darkest
    assert np.allclose(stretched[-1, -1], inferno(1.0)[:3], atol=0.05)  # highest: yellow
    assert np.ptp(plain[..., 0]) < 0.2 < np.ptp(stretched[..., 0])


def _ring(first: int, last: int, size: int) -> np.ndarray:
    """(size, size) bool: the border pixels of the square [first, last) × [first, last)."""
    ring = np.zeros((size, size), bool)
    ring[first:last, first:last] = True
    ring[first + 1:last - 1, first + 1:last - 1] = False
    return ring


def test_the_true_tumours_outline_is_a_white_line_edged_in_black_on_both_sides():
    from unet_course.viz.attention import (HALO_COLOUR, OUTLINE_COLOUR, OUTLINE_SCALE,
                                                draw_outline, tumour_outline)

    assert OUTLINE_SCALE == 2  # the squares below are worked out on the grid twice as fine
    target = torch.zeros(3, 8, 8)
    target[1, 2:6, 2:6] = 1  # a 4×4 square of oedema: the whole tumour
    target[2, 3:5, 3:5] = 1  # enhancing tumour inside it, also whole tumour
    target[1, 3:5, 3:5] = 0  # (BraTS labels: one per pixel)
    outline = tumour_outline(target)
    line = _ring(4, 12, 16)  # the 8×8 square's edge on the 16×16 grid
    halo = _ring(3, 13, 16) | _ring(5, 11, 16)  # one pixel outside it and one inside
    assert (outline.line == line).all() and (outline.halo == halo).all()
    for label in range(3):  # each label alone is whole tumour too: the same square, outlined
        alone = torch.zeros(3, 8, 8)
        alone[label, 2:6, 2:6] = 1
        assert (tumour_outline(alone).line == line).all()
    # the case the chapter is about: a gate open on the tumour, shut around it
    attention = torch.full((8, 8), 0.05)
    attention[2:6, 2:6] = 0.95
    picture = attention_overlay(torch.zeros(8, 8), attention, outline=outline)
    assert picture.shape == (16, 16, 3)  # each pixel of the slice a 2×2 block
    white = np.all(np.isclose(picture, OUTLINE_COLOUR), axis=-1)
    black = np.all(np.isclose(picture, HALO_COLOUR), axis=-1)
    assert (white == line).all() and (black == halo).all()
    plain = np.repeat(np.repeat(attention_overlay(torch.zeros(8, 8), attention), 2, 0), 2, 1)
    untouched = ~(line | halo)  # the map's own colours everywhere else, the tumour's middle too
    assert np.allclose(picture[untouched], plain[untouched]) and untouched[6:10, 6:10].all()
    empty = tumour_outline(torch.zeros(3, 8, 8))  # no tumour: nothing drawn
    assert not empty.line.any() and not empty.halo.any()
    with pytest.raises(TypeError, match="tumour_outline"):  # an edge mask is not an Outline
        draw_outline(np.zeros((8, 8, 3)), line)
    with pytest.raises(ValueError, match="8×8 slice, the picture is 6×6"):
        draw_outline(np.zeros((6, 6, 3)), outline)
    image = torch.zeros(4, 8, 8)
    fig = show_attention(image, [torch.rand(1, 4, 4), torch.rand(1, 8, 8)], target=target)
    assert "outline" in fig.axes[-1].get_xlabel()  # the key says what the line is
    # in a figure, a line over FLAIR and each of the 2 × 2 maps: between the square's edge
    # pixels (centres 2 and 5) and those outside it (1 and 6), corners cut across
    pictures = [ax for ax in fig.axes if ax.images]
    assert len(pictures) == 5
    for ax in pictures:
        (line,) = ax.collections
        points = np.concatenate([path.vertices for path in line.get_paths()])
        from_centre = np.abs(points - 3.5).max(axis=1)  # the square's centre: (3.5, 3.5)
        assert ((from_centre > 1.5 - 1e-9) & (from_centre < 2.0 + 1e-9)).all()
        assert np.isclose(from_centre, 2.0).mean() > 0.5  # on the sides, but at the corners
    plt.close(fig)


def test_gates_are_named_deepest_and_shallowest_by_their_size():
    from unet_course.viz.attention import gate_names

    maps = [torch.zeros(2, 1, n, n) for n in (12, 24, 48, 96)]
    assert gate_names(maps) == ["12×12 (deepest)", "24×24", "48×48", "96×96 (shallowest)"]
    assert gate_names(maps[::-1])[0] == "96×96 (shallowest)"  # by size, not by place
    assert gate_names([torch.zeros(1, 1, 8, 8)]) == ["8×8"]


def test_a_flat_map_is_not_stretched_into_a_pattern():
    channel = torch.zeros(8, 8)
    flat = torch.linspace(0.49, 0.495, 64).reshape(8, 8)  # range 0.005 < MIN_STRETCH
    assert np.allclose(attention_overlay(channel, flat, 1.0, stretch=True),
                       attention_overlay(channel, flat, 1.0, stretch=False))


def test_attention_contrast_averages_inside_and_outside_per_gate():
    from unet_lib.attention import attention_contrast

    class TwoGates(torch.nn.Module):  # stands in for an AttentionUNet: α = 0.9 in the top half
        def forward(self, x, return_attention=False):
            coarse = torch.full((len(x), 1, 2, 2), 0.2)
            coarse[..., 0, :] = 0.9
            fine = torch.full((len(x), 1, 4, 4), 0.5)
            return torch.zeros(len(x), 3, 4, 4), [coarse, fine]

    mask = torch.zeros(3, 4, 4)
    mask[1, :2] = 1  # tumour in the top half
    dataset = [(torch.zeros(4, 4, 4), mask)] * 3
    inside, outside = attention_contrast(TwoGates(), dataset, [0, 1, 2], batch_size=2,
                                         device="cpu")
    assert np.allclose(inside, [0.9, 0.5]) and np.allclose(outside, [0.2, 0.5])


def test_attention_outside_the_tumour_is_measured_in_the_brain_not_in_the_air():
    from unet_lib.attention import attention_contrast, brain_mask

    class OpenOnAir(torch.nn.Module):  # α 0.9 on the tumour, 0.1 on the brain, 1 in the air
        def forward(self, x, return_attention=False):
            alpha = torch.full((len(x), 1, 4, 4), 0.1)
            alpha[..., :2, :] = 0.9
            alpha[..., 3, :] = 1.0
            return torch.zeros(len(x), 3, 4, 4), [alpha]

    image = torch.full((4, 4, 4), -0.6)  # z-scored: the air is every channel's lowest value
    image[0, :3] = 1.5  # the head: rows 0-2 (FLAIR signal), row 3 air
    assert brain_mask(image).tolist() == [[True] * 4] * 3 + [[False] * 4]
    mask = torch.zeros(3, 4, 4)
    mask[1, :2] = 1  # tumour in rows 0-1
    inside, outside = attention_contrast(OpenOnAir(), [(image, mask)], [0], device="cpu")
    assert np.allclose(inside, [0.9]) and np.allclose(outside, [0.1])  # row 2 only, not 0.55


def test_the_legend_colours_are_the_mask_colours_in_the_slides_palette():
    from matplotlib.colors import to_rgb

    from unet_course.viz import channel_colours

    for channel, colour in enumerate(channel_colours("slides")):
        mask = torch.zeros(3, 2, 2)
        mask[channel] = 1
        assert tuple(mask_to_rgb(mask)[0, 0]) == to_rgb(colour)


# --- the pictures that compare models, and the committed phantom figure --------------------

def test_plot_training_draws_a_column_per_model_and_marks_the_kept_epoch():
    records = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e,
                "val": {"dice": {"WT": 0.5, "TC": 0.4, "ET": 0.3, "NCR/NET": 0.2}}}
               for e in (1, 2, 3)]
    from unet_course.viz import plot_training

    fig = plot_training({"classic": records, "attention": records}, chosen={"attention": 2})
    axes = fig.axes
    assert len(axes) == 4  # 2 rows × 2 models
    kept = [line for ax in axes for line in ax.get_lines() if list(line.get_xdata()) == [2, 2]]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["WT", "TC", "ET", "NCR/NET"]
    assert len(kept) == 2  # the dashed line on both panels of the attention column only
    # no two regions' curves differ by colour alone (TC purple and ET blue look alike to a
    # red-green colour-blind eye): each has its own marker and line
    curves = [line for line in axes[2].get_lines() if line.get_label() in ("WT", "TC", "ET",
                                                                          "NCR/NET")]
    assert len({(line.get_marker(), line.get_linestyle()) for line in curves}) == 4
    plt.close(fig)


def test_the_models_curves_differ_by_more_than_colour():
    from unet_course.viz import plot_histories

    records = [{"epoch": e, "val_loss": 0.1 / e, "val": {"dice": {"WT": 0.5, "TC": 0.4,
                                                                  "ET": 0.3}}} for e in (1, 2)]
    fig = plot_histories({"classic": records, "improved": records, "attention": records})
    lines = fig.axes[1].get_lines()
    assert len({(line.get_marker(), line.get_linestyle()) for line in lines}) == 3
    plt.close(fig)
    from unet_course.viz.frames import model_style

    assert model_style("Classic U-Net") == model_style("classic")
    assert model_style("improved-nchw-depthwise") == model_style("improved")
    assert model_style("monai BasicUNet") not in [model_style(n) for n in ("classic", "improved",
                                                                        "attention")]


def test_compare_models_captions_each_prediction_with_its_own_dice():
    from unet_course.viz import compare_models

    target = torch.zeros(2, 3, 8, 8)
    target[:, 1, 2:6, 2:6] = 1  # oedema only: WT = 16 pixels, TC and ET empty
    perfect = target.clone()
    half = target.clone()
    half[:, 1, 2:4, 2:6] = 0  # 8 of 16 found: WT Dice 2·8/(8+16) = 0.67
    fig = compare_models(torch.zeros(2, 4, 8, 8), target, {"a": perfect, "b": half},
                         ["s1", "s2"], notes=["", "hard"])
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert labels[:2] == ["WT 1.00 TC 1.00 ET 1.00", "WT 0.67 TC 1.00 ET 1.00"]
    assert fig.axes[4].get_ylabel() == "s2"  # the second row: FLAIR, truth, a, b
    assert fig.axes[4].get_xlabel() == "hard"  # its note, under the picture
    plt.close(fig)


def test_the_phantom_figure_shows_each_volume_s_modalities_and_mask():
    from unet_course.viz.gallery import phantom_figure, phantom_rows

    rows = phantom_rows(image_size=32, n_slices=12, volumes=((1, "one: first"), (2, "two: second")))
    assert [r[1].shape for r in rows] == [(4, 32, 32)] * 2 and rows[0][2].shape == (3, 32, 32)
    assert rows[0][0].startswith("volume 1, slice ")
    fig = phantom_figure(rows)
    assert len(fig.axes) == 10
    plt.close(fig)


def test_the_committed_phantom_figure_is_shown_by_the_intro_and_the_data_card():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    picture = root / "book" / "images" / "phantom-240.png"
    assert picture.stat().st_size > 20_000
    for page in ("intro.md", "data_card.md"):
        assert "images/phantom-240.png" in (root / "book" / page).read_text()


def test_maps_drawn_inside_the_head_take_their_colour_range_from_the_head():
    image = torch.full((4, 8, 8), -0.6)  # z-scored air: every channel's lowest value
    image[0, :6] = 1.0  # the head: rows 0-5
    alpha = torch.linspace(0.2, 0.4, 16).reshape(1, 4, 4)
    alpha[..., 3, :] = 1.0  # wide open on the air (rows 6-7 at 8×8)
    fig = show_attention(image, [alpha])
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")  # the stretched map's
    head = alpha[0, :3]
    assert np.allclose(bar.get_xlim(), (head.min(), head.max()))  # not up to the air's 1.0
    assert fig.axes[1].get_title().split("\n")[1] == f"α {head.min():.2f} – {head.max():.2f}"
    plt.close(fig)


def test_histories_plot_the_mean_dice_best_pt_is_kept_on_from_an_axis_that_says_where_it_starts():
    from unet_course.viz import plot_histories

    def record(epoch, wt, tc, et):
        dice = {"NCR/NET": 0.1, "ED": 0.2, "ET": et, "WT": wt, "TC": tc}
        return {"epoch": epoch, "val_loss": 0.01 / epoch, "val": {"dice": dice}}

    histories = {"a": [record(1, 0.97, 0.94, 0.91), record(2, 0.98, 0.96, 0.95)]}
    fig = plot_histories(histories, chosen={"a": 2})
    dice_axes = fig.axes[1]
    curve = dice_axes.lines[0]
    assert list(curve.get_ydata()) == pytest.approx([(0.97 + 0.94 + 0.91) / 3,
                                                     (0.98 + 0.96 + 0.95) / 3])
    assert dice_axes.get_ylim() == pytest.approx((0.8, 1.0))  # below 0.94, at a tenth
    assert dice_axes.get_ylabel() == "Dice (axis from 0.8)"
    assert dice_axes.get_title() == "validation Dice, mean of WT, TC, ET"
    plt.close(fig)
    fig = plot_histories({"a": [record(1, 0.3, 0.1, 0.0)]}, metric="WT")
    assert fig.axes[1].get_ylim() == pytest.approx((0.0, 1.0))
    assert fig.axes[1].get_ylabel() == "Dice" and list(fig.axes[1].lines[0].get_ydata()) == [0.3]
    plt.close(fig)


def test_a_log_loss_axis_labels_its_minor_ticks_at_2_and_5_only():
    from unet_course.viz.frames import label_log_axis

    fig, ax = plt.subplots()
    ax.plot([1, 2], [0.0015, 0.045])
    ax.set_yscale("log")
    label_log_axis(ax)
    fig.canvas.draw()
    shown = {tick.get_text() for tick in ax.yaxis.get_minorticklabels()
             if tick.get_text() and 0.0015 <= tick.get_position()[1] <= 0.045}
    assert shown == {r"$2\times10^{-3}$", r"$5\times10^{-3}$", r"$2\times10^{-2}$"}
    plt.close(fig)


def test_the_showcase_ends_on_the_slice_with_the_smallest_core_for_models_marking_everything(
        datasets):
    import math

    from torch import nn

    from unet_course.examples import showcase, tumour_slices

    def marks_everything(probability):  # Dice 2T / (P + T): the smaller the core, the lower
        model = nn.Conv2d(4, 3, 1)
        nn.init.zeros_(model.weight)
        nn.init.constant_(model.bias, math.log(probability / (1 - probability)))
        return model.eval()

    val = datasets[1]
    shown = showcase({"a": marks_everything(0.9), "b": marks_everything(0.8)}, val, count=2,
                     search=12)
    candidates = tumour_slices(val, count=12, min_gap=1)
    core = {i: int(val[i][1][[0, 2]].amax(0).sum()) for i in candidates}
    smallest = min((i for i in candidates if core[i] >= 20), key=core.get)
    assert shown.indices[-1] == smallest and len(shown.indices) == 3
    assert shown.indices[:2] == [i for i in candidates if i != smallest][:2]
    assert shown.images.shape[0] == shown.truths.shape[0] == shown.probs["a"].shape[0] == 3
    pixels = core[smallest] / shown.truths[-1][0].numel()
    assert shown.hardest_tc == pytest.approx(2 * pixels / (1 + pixels), rel=1e-6)
    assert shown.problem.startswith("marked") and shown.hardest_model == "a"  # a tie: the first
    with_tumour = sum(bool(val[i][1].any()) for i in range(len(val)))
    assert shown.searched == min(12, with_tumour) == len(candidates)
    assert shown.scanned == len(val)  # a small split is read whole


def test_a_large_split_is_scanned_in_evenly_spaced_slices():
    from unet_course.examples import scanned_slices

    assert scanned_slices(range(400)) == 400  # every slice
    assert scanned_slices(range(401)) == 201  # every 2nd: 0, 2, ..., 400
    assert scanned_slices(range(14_000)) == 400  # every 35th: 0, 35, ..., 13965


@pytest.mark.parametrize("values, floor", [
    ([0.86, 0.93], 0.8), ([0.65], 0.6), ([0.3, 0.9], 0.0),  # the docstring's examples
    ([float("nan"), 0.86], 0.8), ([0.86, float("nan")], 0.8),  # a NaN is not drawn, anywhere
    ([float("nan")], 0.0)])
def test_a_score_axis_starts_below_the_lowest_score_drawn(values, floor):
    from unet_course.viz.frames import score_axis_floor

    assert score_axis_floor(values) == pytest.approx(floor)


def test_the_block_diagram_draws_the_layers_the_block_has():
    from unet_course.viz.diagrams import draw_block
    from unet_lib.models.layers import InvertedBottleneckBlock

    for batch_norm in (True, False):
        fig = draw_block(InvertedBottleneckBlock(8, 8, batch_norm=batch_norm))
        texts = [t.get_text() for t in fig.axes[0].texts]
        plt.close(fig)
        # the residual branch: depthwise 7×7, [batch norm], 1×1 expand ×4, ReLU, 1×1 compress
        assert texts[1].startswith("depthwise 7×7 conv, 8 → 8")
        assert ("BatchNorm, 8" in texts) == batch_norm
        assert texts[2 + batch_norm:5 + batch_norm] == ["1×1 conv, 8 → 32", "ReLU",
                                                        "1×1 conv, 32 → 8"]
        assert not any("Identity" in t for t in texts)  # no box for a layer switched off


@pytest.mark.parametrize("imported", ["unet_course.labs", "unet_course.viz.calibration",
                                      "unet_course.viz.diagrams", "unet_course.viz"])
def test_every_chapter_draws_in_the_course_lettering_whichever_module_it_imports(imported):
    import subprocess
    import sys

    from unet_course.viz.style import FONT_SIZES

    shown = subprocess.run(  # a fresh process: matplotlib's 10-point default until the import
        [sys.executable, "-c", f"import matplotlib, {imported}; "
                               f"print(matplotlib.rcParams['font.size'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert float(shown) == FONT_SIZES["font.size"] != 10
