"""Skin typing: the Fitzpatrick type a session's limits are chosen by.

Either a clinician chooses the type, or a reflectance meter reads a melanin index that is
mapped to a type. The mapping belongs to the meter: each meter's index has its own scale and
cut-offs (``device_profiles.skin_meter``, a description with its source), so a melanin index
is taken only with the description of the meter that read it; without one it is refused.

The mapping is conservative: a reading within the meter's ``border_margin`` of the next
darker type's lower cut maps to that darker type, because a meter's reading scatters by a few
units and the darker type has the lower ceilings. When both a clinician's type and a reading
are given, the darker of the two is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from device_profiles.schema import SkinType
from device_profiles.skin_meter import SkinMeterDescription


class SkinTypingError(ValueError):
    """A melanin index from an unknown meter or outside its scale, or no typing at all."""


@dataclass(frozen=True)
class SkinTyping:
    """The skin type a session uses, and how it was arrived at (for the session record)."""

    skin_type: SkinType
    method: Literal["clinician", "melanin_index", "both"]
    melanin_index: float | None = None
    borderline: bool = False  # the reading sat within the meter's margin below a cut
    clinician_type: SkinType | None = None
    meter: SkinMeterDescription | None = None  # the meter that read the index

    @classmethod
    def from_clinician(cls, skin_type: SkinType) -> SkinTyping:
        return cls(skin_type, "clinician", clinician_type=skin_type)

    @classmethod
    def from_melanin_index(
        cls, index: float, meter: SkinMeterDescription | None = None
    ) -> SkinTyping:
        skin_type, borderline = melanin_to_type(index, meter)
        return cls(skin_type, "melanin_index", float(index), borderline, meter=meter)

    @classmethod
    def combine(
        cls,
        clinician: SkinType | None = None,
        melanin_index: float | None = None,
        meter: SkinMeterDescription | None = None,
    ) -> SkinTyping:
        """From either or both; with both, the darker type wins. A melanin index needs the
        description of the meter that read it."""
        if clinician is None and melanin_index is None:
            raise SkinTypingError("give a Fitzpatrick type or a melanin index")
        if melanin_index is None:
            assert clinician is not None
            return cls.from_clinician(clinician)
        reading = cls.from_melanin_index(melanin_index, meter)
        if clinician is None:
            return reading
        darker = max(clinician, reading.skin_type, key=lambda t: t.rank)
        return cls(
            darker, "both", reading.melanin_index, reading.borderline, clinician, reading.meter
        )

    def explain(self) -> str:
        if self.method == "clinician":
            return f"type {self.skin_type.value}, chosen by the clinician"
        assert self.meter is not None
        reading = f"melanin index {self.melanin_index:g} ({self.meter.name})"
        if self.borderline:
            reading += f" (within {self.meter.border_margin:g} of a cut: the darker type)"
        if self.method == "melanin_index":
            return f"type {self.skin_type.value} from {reading}"
        assert self.clinician_type is not None
        return (
            f"type {self.skin_type.value}: the darker of the clinician's "
            f"{self.clinician_type.value} and {reading}"
        )

    def as_record(self) -> dict[str, object]:
        meter = self.meter
        return {
            "skin_type": self.skin_type.value,
            "method": self.method,
            "melanin_index": self.melanin_index,
            "borderline": self.borderline,
            "clinician_type": None if self.clinician_type is None else self.clinician_type.value,
            "meter": None if meter is None else meter.label,
            "mapping": None if meter is None else meter.source,
            "explanation": self.explain(),
        }


def melanin_to_type(index: float, meter: SkinMeterDescription | None) -> tuple[SkinType, bool]:
    """(type, borderline) for a melanin index read by ``meter``. No meter, a reading outside
    the meter's scale, or NaN is refused."""
    if meter is None:
        raise SkinTypingError(
            f"melanin index {index!r} from an unknown meter: the cut-offs depend on the meter; "
            "name the meter that read it (its description, with the source of its cut-offs)"
        )
    x = float(index)
    lo, hi = meter.melanin_index.min, meter.melanin_index.max
    if math.isnan(x) or not lo <= x <= hi:
        raise SkinTypingError(
            f"melanin index {index!r} is outside {lo:g}–{hi:g} of the {meter.name}: re-measure"
        )
    skin_type, borderline = SkinType.I, False
    for cut, darker in meter.cuts():
        if x >= cut:
            skin_type, borderline = darker, False
        elif x >= cut - meter.border_margin:
            return darker, True
    return skin_type, borderline
