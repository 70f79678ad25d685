"""The per-epoch record of a training run, as :func:`unet_lib.train.fit` returns it."""

from __future__ import annotations

from typing import Iterable

#: the validation scores a :class:`History` gives as columns ``val_<score>``
VALIDATION_SCORES = ("dice", "precision", "recall")


class History:
    """Per-epoch records of a training run.

    Each record is a dict: ``epoch``, ``lr`` (the epoch's scheduled rate; in a warm-up epoch
    each step runs at that rate × the share of the warm-up's steps done), ``loss`` (its name,
    e.g. ``"bce"``), ``train_loss``, ``seconds``, ``skipped`` (the files skipped as unusable in
    that epoch, ``"path: problem"``), and with validation data ``val_loss`` (the training loss
    on the validation data) and ``val`` = ``{"dice"|"precision"|"recall": {name: value}}``.
    """

    def __init__(self, records: Iterable[dict] = ()):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list:
        """A column, one value per epoch: ``history["train_loss"]`` → floats,
        ``history["val_dice"]`` → ``{name: Dice}`` dicts (and ``val_precision``,
        ``val_recall``).

        Raises:
            KeyError: naming the column, when no epoch has it (the ``val_`` ones need a run
                with validation data).
        """
        score = key[4:] if key.startswith("val_") else None
        column = "val" if score in VALIDATION_SCORES else key
        if any(column not in record for record in self.records):
            known = sorted({name for record in self.records for name in record} - {"val"})
            if any("val" in record for record in self.records):
                known += [f"val_{name}" for name in VALIDATION_SCORES]
            reason = ("this run had no validation data" if column == "val"
                      else f"the columns are {', '.join(known)}")
            raise KeyError(f"{key}: not recorded for every epoch ({reason})")
        if column == "val":
            return [record["val"][score] for record in self.records]
        return [record[key] for record in self.records]

    def __repr__(self) -> str:
        return f"History({len(self)} epochs)"
