"""Splits by volume: slices of one brain never land on two sides.

The BraTS way of reporting: train on one set of patients, choose the checkpoint and any
threshold on a second (validation), and report the headline figures on a third (test) that
influenced nothing.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Mapping, NamedTuple

import numpy as np


class VolumeSplit(NamedTuple):
    """Sorted volume numbers of each side; no volume is on two sides."""

    train: list[int]
    val: list[int]
    test: list[int]


def split_train_val_test(volumes: Iterable[int], val_fraction: float = 0.2,
                         test_fraction: float = 0.2, seed: int = 0,
                         groups: Mapping[int, Hashable] | None = None) -> VolumeSplit:
    """Shuffle volume numbers with ``seed``; the first ``test_fraction`` of them are the test
    set, the next ``val_fraction`` the validation set, the rest the training set.

    With ``groups`` (volume → group, e.g. whether its tumour has an enhancing part) the split
    is *stratified*: each group is shuffled on its own and spread evenly over the order, so
    every side gets its share of every group (to within one volume) — a rare kind of tumour
    cannot end up only in the held-out sets, where no model learned it.

    The validation side always gets at least one volume (it chooses the epoch kept), the test
    side at least one when its fraction is above 0, and training keeps at least one. With
    ``test_fraction=0`` the validation set is the one :func:`split_volumes` gives for the same
    seed.

    Raises:
        ValueError: a fraction out of range, or too few volumes for the sides asked for.
    """
    volumes = sorted({int(v) for v in volumes})
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{name} must be in [0, 1), got {fraction}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1 (some volumes must be "
                         f"left to train on), got {val_fraction} + {test_fraction}")
    n_test = max(1, round(test_fraction * len(volumes))) if test_fraction > 0 else 0
    needed = 2 + (n_test > 0)
    if len(volumes) < needed:
        raise ValueError(f"need at least {needed} volumes to split into training, validation"
                         + (" and test" if n_test else "") + f", got {volumes}")
    n_test = min(n_test, len(volumes) - 2)  # one volume each left to validate and to train
    n_val = min(max(1, round(val_fraction * len(volumes))), len(volumes) - n_test - 1)
    order = (np.random.default_rng(seed).permutation(len(volumes)) if groups is None
             else _stratified_order(volumes, groups, seed))
    if n_test == 0:
        test, val = [], sorted(volumes[i] for i in order[:n_val])
    else:  # the test set first, then validation: adding a test set keeps the seed's shuffle
        test = sorted(volumes[i] for i in order[:n_test])
        val = sorted(volumes[i] for i in order[n_test:n_test + n_val])
    train = sorted(set(volumes) - set(val) - set(test))
    return VolumeSplit(train, val, test)


def _stratified_order(volumes: list[int], groups: Mapping[int, Hashable], seed: int
                      ) -> list[int]:
    """Positions into ``volumes``: each group shuffled, then all merged by their relative
    place within their group (systematic sampling), so any prefix holds each group in
    proportion."""
    rng = np.random.default_rng(seed)
    by_group: dict = {}
    for position, volume in enumerate(volumes):
        by_group.setdefault(groups.get(volume), []).append(position)
    keyed = []
    for rank, key in enumerate(sorted(by_group, key=repr)):
        members = [by_group[key][i] for i in rng.permutation(len(by_group[key]))]
        offset = rng.random()
        keyed += [((i + offset) / len(members), rank, m) for i, m in enumerate(members)]
    return [position for *_, position in sorted(keyed)]


def split_volumes(volumes: Iterable[int], val_fraction: float = 0.2, seed: int = 0
                  ) -> tuple[list[int], list[int]]:
    """``(train_volumes, val_volumes)``: :func:`split_train_val_test` without a test set."""
    split = split_train_val_test(volumes, val_fraction, 0.0, seed)
    return split.train, split.val
