"""Chapter 7's pictures of where an HD95 comes from: the curves mark the distances they say,
and the slider draws each outline voxel where it is, in the colour of its distance."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from test_outlines import brute_force  # noqa: E402
from unet_course.viz.frames import head_window  # noqa: E402
from unet_course.viz.outlines import (distance_colours, distance_curves,  # noqa: E402
                                          outline_slider)
from unet_lib.patient_volume import PatientVolume  # noqa: E402


def a_case() -> PatientVolume:
    """8 slices of 24×24, the head everywhere but a 2-pixel border; the whole tumour a
    6×6×3 block (slices 2-4) and, predicted, the block plus a 3×3 false blob on slice 6 in
    rows 1-3, columns 17-19 (which, read transposed, would be rows 17-19, columns 1-3)."""
    image = np.zeros((4, 8, 24, 24), np.float32)
    image[:, :, 2:22, 2:22] = 1 + np.random.default_rng(0).random((4, 8, 20, 20))
    truth = np.zeros((3, 8, 24, 24), bool)
    truth[:, 2:5, 8:14, 8:14] = True
    pred = truth.copy()
    pred[:, 6, 1:4, 17:20] = True
    return PatientVolume(1, image, truth, pred, (1.0, 1.0, 1.0), list(range(8)))


def pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
                      .convert("RGB")).astype(int)


def test_the_head_window_is_the_smallest_square_around_every_slice_s_head():
    flair = np.full((3, 20, 30), -1.0)
    flair[0, 5:10, 10:20] = 0.5   # rows 5-9, columns 10-19
    flair[2, 4:7, 12:15] = 2.0    # rows 4-6
    # the head spans rows 4-9 and columns 10-19: 10 wide, 14 with 2 pixels each side, centred
    assert head_window(flair) == (0, 14, 8, 22)
    assert head_window(np.zeros((2, 5, 5))) == (0, 5, 0, 5)  # no head: the whole slice
    assert head_window(flair, holding=[[5, 10], [13, 21]]) == (0, 14, 8, 22)  # inside it
    assert head_window(flair, holding=[[5, 10], [14, 21]]) == (0, 20, 0, 30)  # row 14: not


def test_the_slider_holds_the_slices_with_an_outline_and_opens_on_the_far_blob():
    case = a_case()
    slider = outline_slider(case)
    assert slider.labels == [["2", "3", "4", "6"]]
    assert slider.start == (3,)
    _, caption = slider.frame((3,))
    outlines = case.outlines("WT")
    expected = brute_force(case.pred[0], case.truth[0], (1, 1, 1))
    assert outlines.prediction_to_truth.distances == pytest.approx(expected)
    blob = expected[-9:]  # the blob's 9 voxels (all outline) come last in slice order
    assert (f"predicted outline: 9 voxels here, farthest {blob.max():.1f} mm away, "
            f"{int((blob > outlines.hd95).sum())} beyond HD95") in caption
    # slice 6 holds only the predicted blob: the caption says the truth has no outline there
    assert "true outline: none (the truth has no WT on this slice)" in caption
    assert f"HD95 of the patient: {outlines.hd95:.1f} mm" in caption


def test_each_outline_voxel_is_drawn_at_its_place_in_the_colour_of_its_distance():
    case = a_case()
    slider = outline_slider(case, width=240)
    top, _, left, right = head_window(case.image[0])
    scale = 240 / (right - left)

    def at(picture, row, col):
        return picture[int((row - top + 0.5) * scale), int((col - left + 0.5) * scale)]

    blob_slice = pixels(slider.frame((3,))[0][0])
    far, transposed = at(blob_slice, 1, 19), at(blob_slice, 19, 1)
    assert far[0] > 150 and far[2] < 80           # orange to red: beyond HD95
    assert abs(transposed[0] - transposed[2]) < 10  # grey: nothing drawn there
    block_slice = pixels(slider.frame((0,))[0][0])
    on_truth = at(block_slice, 8, 8)              # a corner of the block: distance 0
    assert on_truth.tolist() == pytest.approx([0x56, 0xb4, 0xe9], abs=12)


def test_a_long_volume_shows_at_most_the_slices_asked_for_and_keeps_the_start():
    case = a_case()
    deep = np.zeros((3, 40, 24, 24), bool)
    deep[:, 5:35, 8:14, 8:14] = True
    pred = deep.copy()
    pred[:, 37, 1:4, 17:20] = True
    image = np.ones((4, 40, 24, 24), np.float32)
    long_case = PatientVolume(2, image, deep, pred, case.spacing, list(range(40)))
    labels = outline_slider(long_case, most_slices=6).labels[0]
    assert len(labels) <= 6 and "37" in labels and labels == sorted(labels, key=int)


def test_the_colours_run_blue_to_yellow_up_to_hd95_and_orange_to_red_beyond():
    colours = distance_colours(hd95=10.0, longest=40.0)
    hex_of = [matplotlib.colors.to_hex(c) for c in colours([0.0, 10.0, 10.001, 40.0])]
    assert hex_of == ["#56b4e9", "#f0e442", "#e69f00", "#d55e00"]
    # below HD95 by the square root: a quarter of HD95 lies halfway from blue to yellow
    halfway = (np.array(matplotlib.colors.to_rgb("#56b4e9"))
               + matplotlib.colors.to_rgb("#f0e442")) / 2
    assert colours([2.5])[0, :3] == pytest.approx(halfway, abs=0.01)


def test_the_curves_mark_each_direction_s_95th_percentile_and_name_the_hd95():
    outlines = a_case().outlines("WT")
    fig = distance_curves(outlines, title="patient 1")
    try:
        top = fig.axes[1]
        dots = sorted(line.get_xdata()[0] for line in top.lines if line.get_marker() == "o")
        assert dots == pytest.approx(sorted([outlines.prediction_to_truth.percentile(),
                                             outlines.truth_to_prediction.percentile()]))
        texts = [t.get_text() for t in top.texts]
        assert f"HD95 = {outlines.hd95:.1f} mm" in texts
        assert any(f"{outlines.hausdorff:.1f} mm" in t for t in texts)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("tail", [
    # like chapter 7's patient: one curve reaches 100 % at 5 mm, the other has a far tail
    dict(pred=[*np.linspace(0, 10, 90), *np.linspace(25, 35, 6), 60.0, 70.0, 74.6],
         truth=np.linspace(0, 5, 100)),
    # the deciding curve far out, HD95 in the right half: the label must still miss the curves
    dict(pred=[*np.linspace(0, 3, 50), *np.linspace(50, 60, 50)], truth=np.linspace(0, 2, 50)),
])
def test_the_farthest_voxel_label_hides_no_part_of_either_curve(tail):
    fig = distance_curves(distances_between(tail["pred"], tail["truth"]))
    try:
        fig.canvas.draw()
        top = fig.axes[1]
        label = next(t for t in top.texts if t.get_text().startswith("farthest voxel"))
        box = label.get_bbox_patch().get_window_extent()
        hd95 = next(t for t in top.texts if t.get_text().startswith("HD95"))
        assert not box.overlaps(matplotlib.text.Text.get_window_extent(hd95))
        for line in top.lines:  # the two step curves and their dots, not the 95 % guide
            if line.get_linestyle() == ":":
                continue
            x, y = line.get_xdata(), line.get_ydata()
            if line.get_drawstyle().startswith("steps"):  # sampled along each step, densely
                x, y = np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]
                t = np.linspace(0, 1, 50)[:, None]
                x = (x[:-1] + t * np.diff(x)).ravel()
                y = (y[:-1] + t * np.diff(y)).ravel()
            pixels = top.transData.transform(np.column_stack([x, y]))
            inside = [box.contains(px, py) for px, py in pixels]
            assert not any(inside), line.get_label()
    finally:
        plt.close(fig)


def distances_between(pred_to_truth, truth_to_pred):
    """An OutlineDistances of given distances (the voxels themselves do not matter here)."""
    from unet_lib.outlines import OutlineDistances, SurfaceDistances

    def one_way(values):
        values = np.asarray(values, dtype=float)
        return SurfaceDistances(np.zeros((len(values), 3), int), np.zeros((len(values), 3), int),
                                values)

    return OutlineDistances(one_way(pred_to_truth), one_way(truth_to_pred))


@pytest.mark.parametrize("far, expected", [
    # 90 near voxels (0-5 mm) and 10 at 40 mm: rank 0.95 · 99 = 94.05 lies among the far ones
    (10, ["the 10 beyond that gap are 10.00 % of them: over 5 %", "lands among them",
          "HD95 (40.0 mm)", "would have been about 5.0 mm"]),
    # 97 near and 3 far: the 95th percentile stays among the near ones, at 4.9 mm
    (3, ["3 beyond that gap are 3.00 % of them: under 5 %", "HD95 (4.9 mm)",
         "up to 40.0 mm away"]),
])
def test_the_reading_says_on_which_side_of_the_curve_s_jump_hd95_lies(far, expected):
    from unet_course.readings.outlines import read_curves

    near = np.linspace(0, 5, 100 - far)
    reading = read_curves(distances_between([*near, *[40.0] * far], [0.0, 1.0]))
    assert reading.startswith("Here the predicted outline's curve decides, and it jumps: none "
                              "of its 100 voxels lies between 5.0 and 40.0 mm")
    for part in expected:
        assert part in reading


def test_a_single_far_voxel_is_read_in_the_singular_with_the_slice_it_lies_on():
    """One voxel beyond the gap (1 % of the outline): it moves only the Hausdorff distance,
    and the reading says on which slice to look for it (the slider's start may be another)."""
    from unet_lib.outlines import OutlineDistances, SurfaceDistances
    from unet_course.readings.outlines import read_curves

    values = np.array([*np.linspace(0, 5, 99), 40.0])
    points = np.zeros((100, 3), int)
    points[:, 0] = 3
    points[-1, 0] = 7  # the far voxel alone on slice 7
    reading = read_curves(OutlineDistances(SurfaceDistances(points, points, values),
                                           distances_between([0.0], [0.0]).truth_to_prediction))
    assert "and the one voxel beyond that gap is 1.00 % of them: under 5 %" in reading
    assert ("the far voxel, up to 40.0 mm away (the farthest on slice 7), moves only the plain "
            "Hausdorff distance") in reading


def test_the_reading_of_a_jump_at_5_percent_a_smooth_tail_and_the_truth_s_side():
    from unet_course.readings.outlines import read_curves

    # 113 near and 6 far of 119: rank 0.95 · 118 = 112.1, a tenth of the way across the gap
    inside = read_curves(distances_between([*np.linspace(0, 5, 113), *[40.0] * 6], [0.0]))
    assert "5.04 % of them: about 5 %, so its 95th percentile falls inside the gap" in inside
    assert "(HD95 8.5 mm)" in inside
    smooth = read_curves(distances_between([0.0], np.linspace(0, 30, 100)))
    assert smooth == ("Here the true outline's curve decides, and it runs on without a wide "
                      "gap: HD95 (28.5 mm) lies in its tail, where its last 5 % of voxels begin")
    assert "without a wide gap" in read_curves(distances_between([12.0], [0.0]))  # one voxel


def test_an_outline_voxel_outside_the_head_widens_the_pictures_to_the_whole_slice():
    case = a_case()
    case.image[:] = 0
    case.image[:, :, 6:18, 6:18] = 1.0  # a smaller head: its window is rows and columns 4-19
    case.pred[:, 6, 0, 23] = True  # and a false voxel in the corner, outside it
    assert head_window(case.image[0]) == (4, 20, 4, 20)
    slider = outline_slider(case, width=240)
    picture = pixels(slider.frame((slider.labels[0].index("6"),))[0][0])
    scale = 240 / 24  # the whole 24×24 slice
    corner = picture[int(0.5 * scale), int(23.5 * scale)]
    assert corner[0] > 150 and corner[2] < 80  # drawn, in a far voxel's colour
