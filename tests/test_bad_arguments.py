"""Bad arguments to the library's Python functions get an error naming the argument and
what is wrong, not a wrong answer or a traceback from deep inside PyTorch."""

from __future__ import annotations

import pytest
import torch

from unet_lib.attention import attention_maps
from unet_lib.checkpoint import CheckpointError, load_model, save_checkpoint
from unet_lib.comparison import paired_bootstrap
from unet_lib.config import ConfigError
from unet_lib.data import BraTSSlices, make_phantom
from unet_lib.inference import evaluate, predict, threshold_sweep
from unet_lib.metrics import SegmentationScores, best_threshold, binarize, dice, precision, recall
from unet_lib.models import build_model
from unet_lib.patients import evaluate_patients
from unet_lib.segment import labels_from_probabilities


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    root = make_phantom(tmp_path_factory.mktemp("ph") / "ph", n_volumes=1, image_size=32, n_slices=4)
    return BraTSSlices(root)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("attention", base_filters=4)


def test_device_auto_is_taken_wherever_a_device_is(model, slices):
    images = torch.stack([slices[i][0] for i in range(2)])
    # this machine's "auto" is the CPU when it has no GPU; elsewhere the GPU's answer is close
    expected = predict(model, images, device="cpu", amp=False)
    assert torch.allclose(predict(model, images, device="auto", amp=False), expected, atol=1e-2)
    assert len(attention_maps(model, images, device="auto")) == 4
    assert evaluate(model, slices, device="auto")["dice"].keys() == {"NCR/NET", "ED", "ET",
                                                                     "WT", "TC"}
    assert len(evaluate_patients(model, slices, device="auto").rows) == 1


@pytest.mark.parametrize("call", [
    lambda m, d: predict(m, torch.zeros(1, 4, 32, 32), device="cpuu"),
    lambda m, d: evaluate(m, d, device="gpu"),
    lambda m, d: threshold_sweep(m, d, [0.5], device="cpuu"),
    lambda m, d: evaluate_patients(m, d, device="cpuu"),
])
def test_a_misspelt_device_is_named(model, slices, call):
    with pytest.raises(ConfigError, match=r"^device: '(cpuu|gpu)' is not a device; use auto"):
        call(model, slices)


@pytest.mark.parametrize("batch_size", [0, -1])
@pytest.mark.parametrize("call", [
    lambda m, d, b: predict(m, torch.zeros(2, 4, 32, 32), batch_size=b),
    lambda m, d, b: evaluate(m, d, batch_size=b),  # said "holds no sample" before
    lambda m, d, b: threshold_sweep(m, d, [0.5], batch_size=b),
    lambda m, d, b: evaluate_patients(m, d, batch_size=b),  # returned no patient at all
    lambda m, d, b: attention_maps(m, torch.zeros(2, 4, 32, 32), batch_size=b),
])
def test_a_batch_size_below_one_is_refused_by_name(model, slices, call, batch_size):
    with pytest.raises(ConfigError, match=rf"^batch_size: must be a whole number of at least 1, "
                                          rf"got {batch_size}"):
        call(model, slices, batch_size)


def test_an_empty_list_of_thresholds_is_refused(model, slices):
    with pytest.raises(ValueError, match="thresholds is empty"):
        threshold_sweep(model, slices, [])


@pytest.mark.parametrize("threshold", [50, -0.5])
def test_label_maps_are_not_written_from_a_threshold_that_is_no_probability(threshold):
    # 50 would label nothing, -0.5 every voxel ET: a submission wrong from end to end
    with pytest.raises(ValueError, match=rf"threshold: must be a probability in \[0, 1\], "
                                         rf"got {threshold}"):
        labels_from_probabilities(torch.full((3, 4, 4), 0.7), threshold=threshold)


def test_a_good_checkpoint_is_not_blamed_for_a_bad_map_location(model, tmp_path):
    path = save_checkpoint(tmp_path / "best.pt", model)
    with pytest.raises(ConfigError, match=r"^map_location: 'gpu' is not a device") as refused:
        load_model(path, map_location="gpu")
    assert not isinstance(refused.value, CheckpointError)  # nothing is wrong with the file
    assert "corrupted" not in str(refused.value)
    loaded = load_model(path, map_location="auto")  # as device="auto" picks
    assert next(loaded.parameters()).device.type == ("cuda" if torch.cuda.is_available()
                                                     else "cpu")


def test_scores_of_nothing_are_refused_not_reported_perfect():
    scores = SegmentationScores()
    with pytest.raises(ValueError, match="no masks were scored.*were all the samples skipped"):
        scores.compute()
    with pytest.raises(ValueError, match="pred has 4 channels, but these scores are of 3"):
        scores.update(torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8))


def test_logits_given_where_binary_masks_are_expected_are_refused():
    target = torch.zeros(1, 3, 4, 4)
    target[..., :2, :2] = 1
    logits = torch.randn(1, 3, 4, 4)
    for score in (dice, precision, recall):
        with pytest.raises(ValueError, match="pred must be a binary mask.*binarize"):
            score(logits, target)
    binary = binarize(logits, 0.5, logits=True)
    # a binarized mask, float or bool, is scored as before: Dice of a mask with itself is 1
    assert dice(target.bool(), target).tolist() == [1.0, 1.0, 1.0]
    assert dice(binary, binary).tolist() == [1.0, 1.0, 1.0]


def test_a_sweep_asked_for_a_region_it_lacks_says_which_it_has():
    sweep = {0.5: {"dice": {"WT": 0.8, "TC": 0.6, "ET": 0.5}}}
    assert best_threshold(sweep, "TC") == 0.5
    with pytest.raises(ValueError, match=r"no 'dice' of 'wt' at threshold 0.5: it holds dice "
                                         r"of WT, TC, ET$"):
        best_threshold(sweep, "wt")


@pytest.mark.parametrize("level", [95, 0, 1.5])
def test_a_bootstrap_level_given_as_a_percentage_is_refused(level):
    with pytest.raises(ValueError, match=rf"level must be a coverage between 0 and 1 .* got "
                                         rf"{level}"):
        paired_bootstrap([0.9, 0.8], [0.7, 0.8], level=level)


@pytest.mark.parametrize("image_size", [0, -32, 2.5, 24.0, "24"])
def test_a_dataset_asked_for_an_impossible_size_says_so_when_opened(slices, image_size):
    from unet_lib.data import open_dataset

    # 24.0 passed and failed later, deep in torch's interpolate; "24" named no argument
    with pytest.raises(ValueError, match=rf"image_size must be a whole number of pixels.*got "
                                         rf"{image_size!r}"):
        open_dataset(slices.root, image_size=image_size)


def test_a_numpy_whole_number_is_a_size(slices):
    import numpy as np

    from unet_lib.data import open_dataset

    dataset = open_dataset(slices.root, image_size=np.int64(24))
    assert dataset.image_size == 24 and type(dataset.image_size) is int
    assert dataset[0][0].shape == (4, 24, 24)


def test_thresholds_may_come_as_any_iterable_and_are_all_checked_before_predicting(model,
                                                                                   slices):
    as_list = threshold_sweep(model, slices, [0.3, 0.5], device="cpu")
    as_generator = threshold_sweep(model, slices, (t / 10 for t in (3, 5)), device="cpu")
    assert as_generator == as_list and list(as_list) == [0.3, 0.5]
    assert list(threshold_sweep(model, slices, 0.5, device="cpu")) == [0.5]
    predicted = []
    with pytest.raises(ValueError, match=r"threshold: must be a probability in \[0, 1\], got 5"):
        threshold_sweep(_Counting(model, predicted), slices, [0.5, 5], device="cpu")
    assert predicted == []  # refused before the first batch


class _Counting(torch.nn.Module):
    """``model``, noting each forward pass in ``calls``."""

    def __init__(self, model, calls: list):
        super().__init__()
        self.model, self.calls = model, calls

    def forward(self, x):
        self.calls.append(len(x))
        return self.model(x)


def test_a_loaded_model_sits_on_the_device_named_by_either_name_but_not_both(model, tmp_path,
                                                                            monkeypatch):
    import unet_lib.checkpoint as checkpoint

    path = save_checkpoint(tmp_path / "best.pt", model)
    with pytest.raises(ConfigError, match=r"^device: 'gpu' is not a device"):
        load_model(path, device="gpu")  # the argument named is the one given
    for device in ("cpu", torch.device("cpu"), "auto"):  # any device given, the default too
        with pytest.raises(ConfigError, match=r"^map_location: 'cpu' and device=.* both given"):
            load_model(path, device=device, map_location="cpu")
    with pytest.raises(TypeError, match=r"^map_location: load_model puts the model on one "
                                        r"device, not \{'cuda:0': 'cpu'\}; read_checkpoint"):
        load_model(path, map_location={"cuda:0": "cpu"})  # torch.load's mapping: elsewhere
    # where the model ends up is the device resolved, whatever the weights were read onto:
    # "meta" stands in for a GPU (the file is read onto the CPU, then the model moved)
    read_onto = []
    real_read = checkpoint.read_checkpoint
    monkeypatch.setattr(checkpoint, "read_checkpoint", lambda path, where, **kwargs: (
        read_onto.append(where), real_read(path, where, **kwargs))[1])
    monkeypatch.setattr(checkpoint, "resolve_device", lambda device: torch.device(
        "cpu" if str(device) == "cpu" else "meta"))
    for given, where in (({"device": "cuda"}, "meta"), ({"map_location": "cuda"}, "meta"),
                         ({}, "cpu")):
        loaded = load_model(path, **given)
        assert {p.device.type for p in loaded.parameters()} == {where}, given
        assert not loaded.training
    assert read_onto == ["cpu"] * 3  # a last.pt's optimizer state never goes to the GPU


def test_a_map_location_given_as_a_device_is_checked_too(model, tmp_path):
    path = save_checkpoint(tmp_path / "best.pt", model)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^map_location: 'cuda': no CUDA GPU"):
            load_model(path, map_location=torch.device("cuda"))
    with pytest.raises(ConfigError, match=r"^map_location: 'cuda:99': "):
        load_model(path, map_location=torch.device("cuda:99"))  # no machine has a GPU 99
    assert next(load_model(path, map_location=torch.device("cpu")).parameters()).device.type \
        == "cpu"


def test_segment_folder_checks_its_arguments_before_it_makes_the_output_folder(model,
                                                                              tmp_path):
    from unet_lib.segment import segment_folder

    for bad, said in (({"threshold": 50}, "threshold: must be a probability in .0, 1., got 50"),
                      ({"batch_size": 0}, "batch_size: must be a whole number of at least 1"),
                      ({"device": "cpuu"}, "device: 'cpuu' is not a device")):
        with pytest.raises(ValueError, match=said):  # each refused for its own reason
            segment_folder(model, tmp_path / "cases", tmp_path / "labels", **bad)
        assert not (tmp_path / "labels").exists(), bad


def test_a_patients_masks_of_another_shape_are_refused_and_arrays_are_taken():
    import numpy as np

    from unet_lib.patients import score_patient

    mask = np.zeros((3, 2, 8, 8), dtype=bool)
    mask[:, :, 2:5, 2:5] = True
    assert score_patient(mask, mask, (1.0, 1.0, 1.0))["dice"] == {"WT": 1.0, "TC": 1.0,
                                                                  "ET": 1.0}
    four = np.zeros((4, 2, 8, 8), dtype=bool)  # the 4th channel was dropped without a word
    with pytest.raises(ValueError, match=r"must both be \(3, D, H, W\).*got \(4, 2, 8, 8\)"):
        score_patient(four, four, (1.0, 1.0, 1.0))


def test_attention_statistics_name_the_shape_they_take():
    from unet_lib.attention import attention_inside_outside, brain_mask

    with pytest.raises(ValueError, match=r"one slice, \(C, H, W\); got shape \(8, 8\)"):
        brain_mask(torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"one gate's map of one slice.*got shape \(2, 1, 4, 4\)"):
        attention_inside_outside(torch.zeros(2, 1, 4, 4), torch.zeros(3, 8, 8))
    target = torch.zeros(3, 8, 8)
    target[0, :4] = 1  # the top half is tumour
    alpha = torch.cat([torch.full((1, 2, 4), 0.9), torch.full((1, 2, 4), 0.1)], dim=1)
    assert attention_inside_outside(alpha, target) == pytest.approx((0.9, 0.1))


def test_a_surface_is_found_in_a_0_1_mask_of_any_type():
    import numpy as np

    from unet_lib.metrics import surface

    square = np.zeros((5, 5))
    square[1:4, 1:4] = 1  # a 3×3 square: its 8 outer pixels are surface, the centre is not
    expected = np.zeros((5, 5), dtype=bool)
    expected[1:4, 1:4] = True
    expected[2, 2] = False
    for mask in (square, square.astype(np.uint8), square.astype(bool)):
        assert np.array_equal(surface(mask), expected)


def test_fit_refuses_a_resume_without_a_folder_and_a_progress_it_does_not_know(slices):
    from unet_lib.train import fit

    model = build_model("classic", base_filters=4)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="resume=True continues checkpoint_dir/last.pt"):
        fit(model, slices, resume=True)  # trained from scratch before, silently
    for progress in ("off", 1, None):  # "off" printed every summary, 1 no bar
        with pytest.raises(ValueError, match=f"progress must be True, False or 'epochs', got "
                                             f"{progress!r}"):
            fit(model, slices, progress=progress)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # untrained


def test_a_history_column_no_epoch_has_is_named_with_the_reason():
    from unet_lib.train import History

    scored = {"dice": {"WT": 0.5}, "precision": {"WT": 0.4}, "recall": {"WT": 0.6}}
    with_val = History([{"epoch": 1, "train_loss": 0.3, "val_loss": 0.2, "val": scored}])
    assert with_val["val_recall"] == [{"WT": 0.6}] and with_val["train_loss"] == [0.3]
    without_val = History([{"epoch": 1, "train_loss": 0.3}])
    with pytest.raises(KeyError, match="val_dice: not recorded for every epoch "
                                       r"\(this run had no validation data\)"):
        without_val["val_dice"]  # was KeyError: 'val'
    with pytest.raises(KeyError, match="trian_loss: .*the columns are epoch, train_loss, "
                                       "val_loss, val_dice, val_precision, val_recall"):
        with_val["trian_loss"]


def test_a_recipe_trains_on_data_or_a_phantom_one_of_the_two(tmp_path):
    from unet_lib.recipe import PhantomSpec, RunRecipe

    with pytest.raises(ConfigError, match="data: a recipe trains on .* got neither"):
        RunRecipe().validate()  # was: AttributeError from data_root(), later
    with pytest.raises(ConfigError, match="got both"):
        RunRecipe(data=tmp_path, phantom=PhantomSpec(32, 3, 4, 0)).validate()
    with pytest.raises(ConfigError, match="data: is empty"):
        RunRecipe.for_scale("quick", data="")  # was: a recipe with neither
    with pytest.raises(ConfigError, match="n_slices: shapes the phantom, which data replaces"):
        RunRecipe.for_scale("quick", data=tmp_path, n_slices=8)  # was: silently ignored
    assert RunRecipe.for_scale("quick").phantom.n_volumes == 16
    assert RunRecipe.for_scale("quick", data=tmp_path).data == tmp_path
    with pytest.raises(ValueError, match="run.json: not a run recipe .*data or phantom"):
        RunRecipe.from_json({"model": "classic", "config": {}, "data": None, "phantom": None})


class SureOfTumour(torch.nn.Module):
    """Every pixel of every channel at probability 0.4: marked at a threshold of 0.3, not 0.5."""

    def forward(self, images):
        logit = torch.logit(torch.tensor(0.4))
        return torch.full((len(images), 3, *images.shape[-2:]), float(logit))


def test_scoring_binarizes_at_the_threshold_the_model_was_trained_at_unless_told(tmp_path):
    image, tumour = torch.zeros(4, 8, 8), torch.zeros(3, 8, 8)
    tumour[1] = 1  # every pixel oedema: the whole tumour everywhere
    model = SureOfTumour()
    assert evaluate(model, [(image, tumour)])["dice"]["WT"] == 0.0  # 0.5: 0.4 marks nothing
    model.trained_threshold = 0.3  # as fit and load_model set it
    assert evaluate(model, [(image, tumour)])["dice"]["WT"] == 1.0  # 0.4 > 0.3: all marked
    assert evaluate(model, [(image, tumour)], threshold=0.5)["dice"]["WT"] == 0.0  # as told
    # a checkpoint's run threshold comes back with the model
    save_checkpoint(tmp_path / "best.pt", build_model("classic", base_filters=4),
                    config={"threshold": 0.3, "image_size": 8})
    loaded = load_model(tmp_path / "best.pt")
    assert (loaded.trained_threshold, loaded.trained_image_size) == (0.3, 8)


@pytest.mark.parametrize("threshold", ["0.5", None, "high", float("nan"), True])
def test_a_threshold_that_is_no_number_is_named(model, slices, threshold):
    with pytest.raises(ConfigError, match="threshold: must be a probability"):
        binarize(torch.zeros(1, 3, 2, 2), threshold, logits=True)
    if threshold is not None:  # None: the model's own threshold
        with pytest.raises(ConfigError, match="threshold: must be a probability"):
            evaluate(model, slices, threshold=threshold)


def test_evaluate_wants_masks_beside_the_images_and_predict_something_to_predict(model):
    images = torch.zeros(2, 4, 16, 16)
    with pytest.raises(TypeError, match="evaluate scores \\(image, mask\\) samples"):
        evaluate(model, images)
    with pytest.raises(ValueError, match=r"got masks \(2, 16, 16\) for \(3, 16, 16\)"):
        evaluate(model, [(images[0], torch.zeros(2, 16, 16))])  # two channels, not three
    with pytest.raises(ValueError, match=r"got masks \(3, 8, 8\) for \(3, 16, 16\)"):
        evaluate(model, [(images[0], torch.zeros(3, 8, 8))])  # another size than the image
    for empty in ([], images[:0], images[:0].numpy()):
        with pytest.raises(ValueError, match="no sample to score: it holds no sample"):
            predict(model, empty)
    for array in (images.numpy(), images.double().numpy()):  # NumPy images, float64 too
        assert predict(model, array).shape == (2, 3, 16, 16)


def test_scores_of_a_patient_want_binary_masks_and_a_voxel_size_per_axis():
    from unet_lib.patients import score_patient

    truth = torch.zeros(3, 2, 4, 4)
    truth[:, :, 1:3, 1:3] = 1
    with pytest.raises(ValueError, match="pred must be a binary mask"):
        score_patient(truth * 0.3, truth, (1, 1, 1))  # probabilities: not counted as tumour
    with pytest.raises(ValueError, match=r"spacing must be one voxel size per spatial axis"):
        score_patient(truth, truth, 1.0)


def test_other_arguments_are_named():
    from unet_lib.attention import attention_contrast

    with pytest.raises(ValueError, match="resamples: must be a whole number of at least 1, got "
                                         "10.5"):
        paired_bootstrap([0.5, 0.7], [0.4, 0.6], resamples=10.5)
    with pytest.raises(ValueError, match="no usable slice among the 0 indices given"):
        attention_contrast(build_model("attention", base_filters=4), [], [])


def test_every_scoring_of_a_patient_defaults_to_the_model_s_threshold(slices):
    from unet_lib.patient_volume import predict_patient
    from unet_lib.temperature import TemperatureScaled

    volume = slices.volumes[0]
    model = SureOfTumour()  # 0.4 everywhere: all marked at 0.3, nothing at 0.5
    assert not predict_patient(model, slices, volume).pred.any()
    model.trained_threshold = 0.3
    assert predict_patient(model, slices, volume).pred.all()
    assert not predict_patient(model, slices, volume, threshold=0.5).pred.any()
    scaled = TemperatureScaled(model, 1.0)  # carries the threshold with the image size
    assert scaled.trained_threshold == 0.3
    at_own, at_half = (evaluate_patients(m, slices, threshold=t).rows[0]["dice"]["WT"]
                       for m, t in ((scaled, None), (model, 0.5)))
    assert at_half == 0.0 and at_own > 0  # the truth has tumour: at 0.3 every voxel is marked
    assert at_own == evaluate_patients(model, slices, threshold=0.3).rows[0]["dice"]["WT"]


def test_fit_gives_the_model_the_threshold_it_validated_at(slices):
    from unet_lib.config import TrainConfig
    from unet_lib.train import fit

    torch.manual_seed(0)
    model = build_model("classic", base_filters=4)
    fit(model, slices, slices, TrainConfig.quick(epochs=1, batch_size=2, threshold=0.3),
        progress=False)
    assert model.trained_threshold == 0.3
