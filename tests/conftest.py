"""Shared fixtures: a small phantom made once, and one model trained on it once."""

from __future__ import annotations

import pytest
import torch

from unet_lib.data import BraTSSlices, list_volumes, make_phantom, split_volumes
from unet_lib.models import build_model
from unet_lib.train import TrainConfig, fit

# The phantom and training run every test session uses: small enough for a 2-core CPU.
PHANTOM = dict(n_volumes=12, image_size=64, n_slices=32, seed=0)
# The course's quick settings as they were when the stated figures of test_train were measured
# (tumour pixels weighted, a plain shuffle), on this small 64×64 phantom.
TRAINING = TrainConfig.quick(epochs=6, base_filters=16, seed=0, pos_weight=(5.0, 2.0, 5.0),
                             tumour_share=None, channels_last=False)


@pytest.fixture(autouse=True)
def slides_palette(monkeypatch):
    """Every test draws masks in the slides' colours unless it chooses otherwise, whatever
    $UNET_COURSE_PALETTE the shell that runs the tests has (the README offers it to readers)."""
    from unet_course.viz.mask_colours import PALETTE_VARIABLE, use_palette

    monkeypatch.delenv(PALETTE_VARIABLE, raising=False)
    use_palette(None)
    yield
    use_palette(None)


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory):
    """A 12-volume 64×64 phantom with 32 slices per volume."""
    return make_phantom(tmp_path_factory.mktemp("phantom"), **PHANTOM)


@pytest.fixture(scope="session")
def split(phantom_root):
    """(train_volumes, val_volumes), a quarter held out."""
    return split_volumes(list_volumes(phantom_root), val_fraction=0.25, seed=0)


@pytest.fixture(scope="session")
def datasets(phantom_root, split):
    train_volumes, val_volumes = split
    return BraTSSlices(phantom_root, train_volumes), BraTSSlices(phantom_root, val_volumes)


@pytest.fixture(scope="session")
def trained(datasets):
    """A Classic U-Net trained with the quick configuration, and its history."""
    torch.manual_seed(0)
    model = build_model("classic", base_filters=TRAINING.base_filters)
    history = fit(model, *datasets, config=TRAINING, progress=False)
    return model.eval(), history


def pytest_collection_modifyitems(items):
    """Tests that need the real training run (the ``trained`` fixture) are slow."""
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


class UnusableFolder(torch.utils.data.Dataset):
    """A data folder ``root`` of ``n`` slice files, every one unusable for ``problem``."""

    def __init__(self, root: str, n: int, problem: str):
        self.root, self.n, self.problem = root, n, problem

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        from unet_lib.data.samples import SkippedSample

        return SkippedSample(f"slice_{index}.h5", self.problem)


@pytest.fixture
def unusable_folder():
    """Makes an :class:`UnusableFolder`: ``unusable_folder(root, n, problem)``."""
    return UnusableFolder
