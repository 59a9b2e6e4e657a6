"""Human-readable values for the CLI and the orchestrators' UIs."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["IEC_UNITS", "SHORT_UNITS", "format_size"]

IEC_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
"""Unit labels of powers of 1024: ``"1.5 KiB"``."""

SHORT_UNITS = ("B", "KB", "MB", "GB", "TB")
"""The same powers of 1024 with short labels, as the CLI prints them: ``"1.5 KB"``."""


def format_size(size: int | None, units: Sequence[str] = IEC_UNITS) -> str:
    """``size`` bytes in the largest unit below 1024 of it (the last unit has no upper bound).

    Bytes are whole (``"512 B"``), larger units have one decimal (``"2.0 KiB"``); an unknown
    size (``None``) is ``"?"``.
    """
    if size is None:
        return "?"
    value = float(size)
    for unit in units[:-1]:
        if value < 1024:
            return f"{size} {unit}" if unit == units[0] else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {units[-1]}"
