"""Skin typing: the Fitzpatrick type a session's limits are chosen by.

Either a clinician chooses the type, or a reflectance meter reads a melanin index (0–99)
that is mapped to a type. The mapping is conservative: a reading within ``BORDER_MARGIN`` of
the next darker type's lower cut maps to that darker type, because a meter's reading
scatters by a few units and the darker type has the lower ceilings. When both a clinician's
type and a reading are given, the darker of the two is used.

Mapping (melanin index → type), a vendor-style table; clinic default, review against the
meter's own manual:

======  =======  =======  =======  =======  =======
I       II       III      IV       V        VI
0–14    15–24    25–34    35–49    50–69    70–99
======  =======  =======  =======  =======  =======
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from device_profiles.schema import SkinType

MELANIN_INDEX_MAX = 99.0
# The lowest melanin index of types II..VI (type I starts at 0). Clinic default, review.
CUTS: tuple[tuple[float, SkinType], ...] = (
    (15.0, SkinType.II),
    (25.0, SkinType.III),
    (35.0, SkinType.IV),
    (50.0, SkinType.V),
    (70.0, SkinType.VI),
)
BORDER_MARGIN = 2.0  # readings this close below a cut count as the darker type
MAPPING_SOURCE = "vendor-style melanin index mapping; clinic default, review"


class SkinTypingError(ValueError):
    """A melanin index that is not a number in 0–99, or no typing at all."""


@dataclass(frozen=True)
class SkinTyping:
    """The skin type a session uses, and how it was arrived at (for the session record)."""

    skin_type: SkinType
    method: Literal["clinician", "melanin_index", "both"]
    melanin_index: float | None = None
    borderline: bool = False  # the reading sat within BORDER_MARGIN below a cut
    clinician_type: SkinType | None = None

    @classmethod
    def from_clinician(cls, skin_type: SkinType) -> SkinTyping:
        return cls(skin_type, "clinician", clinician_type=skin_type)

    @classmethod
    def from_melanin_index(cls, index: float) -> SkinTyping:
        skin_type, borderline = melanin_to_type(index)
        return cls(skin_type, "melanin_index", float(index), borderline)

    @classmethod
    def combine(
        cls, clinician: SkinType | None = None, melanin_index: float | None = None
    ) -> SkinTyping:
        """From either or both; with both, the darker type wins."""
        if clinician is None and melanin_index is None:
            raise SkinTypingError("give a Fitzpatrick type or a melanin index")
        if melanin_index is None:
            assert clinician is not None
            return cls.from_clinician(clinician)
        meter = cls.from_melanin_index(melanin_index)
        if clinician is None:
            return meter
        darker = max(clinician, meter.skin_type, key=lambda t: t.rank)
        return cls(darker, "both", meter.melanin_index, meter.borderline, clinician)

    def explain(self) -> str:
        if self.method == "clinician":
            return f"type {self.skin_type.value}, chosen by the clinician"
        reading = f"melanin index {self.melanin_index:g}"
        if self.borderline:
            reading += f" (within {BORDER_MARGIN:g} of a cut: the darker type)"
        if self.method == "melanin_index":
            return f"type {self.skin_type.value} from {reading}"
        assert self.clinician_type is not None
        return (
            f"type {self.skin_type.value}: the darker of the clinician's "
            f"{self.clinician_type.value} and {reading}"
        )

    def as_record(self) -> dict[str, object]:
        return {
            "skin_type": self.skin_type.value,
            "method": self.method,
            "melanin_index": self.melanin_index,
            "borderline": self.borderline,
            "clinician_type": None if self.clinician_type is None else self.clinician_type.value,
            "mapping": MAPPING_SOURCE if self.melanin_index is not None else None,
            "explanation": self.explain(),
        }


def melanin_to_type(index: float) -> tuple[SkinType, bool]:
    """(type, borderline) for a melanin index 0–99; outside it, or NaN, is refused."""
    x = float(index)
    if math.isnan(x) or not 0.0 <= x <= MELANIN_INDEX_MAX:
        raise SkinTypingError(
            f"melanin index {index!r} is outside 0–{MELANIN_INDEX_MAX:g}: re-measure"
        )
    skin_type, borderline = SkinType.I, False
    for cut, darker in CUTS:
        if x >= cut:
            skin_type, borderline = darker, False
        elif x >= cut - BORDER_MARGIN:
            return darker, True
    return skin_type, borderline
