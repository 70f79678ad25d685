"""The few words the readings share: a list joined with "and", models named as U-Nets, small
numbers in words."""

from __future__ import annotations

from typing import Iterable


def and_list(items: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def u_nets(models: Iterable[str]) -> str:
    """``"classic U-Net"`` or ``"classic and improved U-Nets"``."""
    names = list(models)
    return and_list(names) + (" U-Net" if len(names) == 1 else " U-Nets")


def number_word(n: int) -> str:
    """``"three"`` for 3 (up to ten), else the digits."""
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if 0 <= n < len(words) else str(n)
