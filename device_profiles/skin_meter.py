"""Reflectance meters that read a melanin index, as data: how each meter's index maps to a
Fitzpatrick type.

A melanin index is a number on the meter's own scale: a DSM-style meter, a Mexameter-style one
(0–999) and a laser vendor's reader (0–99) give different numbers for the same skin, so the
cut-offs belong to the meter, with their source, not to LaserGuard. A melanin index from a
meter without a description is refused (``monitor.core.skin_typing``).

A description::

    spec: "1"
    name: example-reflectance-0-99
    version: 1
    model: Example reflectance melanin reader (0-99)
    melanin_index: {min: 0, max: 99}
    melanin_cuts:              # the lowest index of types II..VI, rising
      - {from: 15, skin_type: II}
      - {from: 25, skin_type: III}
      ...
    border_margin: 2           # a reading this close below a cut counts as the darker type
    source: "the meter's manual, page ..."

Validated at load: the cuts name II..VI once each, in order, strictly rising, inside the
scale; the margin is smaller than the narrowest band.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, model_validator

from device_profiles.schema import SkinType, SkinTypeName, Strict

DARKER_TYPES = [SkinType.II, SkinType.III, SkinType.IV, SkinType.V, SkinType.VI]


class MelaninScale(Strict):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> MelaninScale:
        if not self.min < self.max:
            raise ValueError(f"min {self.min:g} must be below max {self.max:g}")
        return self


class MelaninCut(Strict):
    """From this index on (``from``), the type is ``skin_type``."""

    from_: float = Field(alias="from")
    skin_type: SkinTypeName


class SkinMeterDescription(Strict):
    """One reflectance meter's melanin index and its mapping to Fitzpatrick types."""

    spec: Literal["1"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    model: str = Field(min_length=1)
    melanin_index: MelaninScale
    melanin_cuts: Annotated[list[MelaninCut], Field(min_length=5, max_length=5)]
    border_margin: float = Field(ge=0)
    source: str = Field(min_length=1, description="Where the cut-offs come from")

    @model_validator(mode="after")
    def _cuts_rise_through_the_types(self) -> SkinMeterDescription:
        types = [c.skin_type for c in self.melanin_cuts]
        if types != DARKER_TYPES:
            names = ", ".join(t.value for t in types)
            raise ValueError(f"melanin_cuts name types II, III, IV, V, VI in order, not {names}")
        bounds = [self.melanin_index.min, *(c.from_ for c in self.melanin_cuts)]
        bounds.append(self.melanin_index.max)
        for (a, b), t in zip(itertools.pairwise(bounds), SkinType, strict=True):
            if not a < b:
                raise ValueError(
                    f"melanin_cuts must rise strictly inside {self.melanin_index.min:g}-"
                    f"{self.melanin_index.max:g}: type {t.value} would span {a:g}-{b:g}"
                )
        narrowest = min(b - a for a, b in itertools.pairwise(bounds))
        if self.border_margin >= narrowest:
            raise ValueError(
                f"border_margin {self.border_margin:g} is not below the narrowest type band "
                f"({narrowest:g}): a reading could move up two types"
            )
        return self

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def cuts(self) -> tuple[tuple[float, SkinType], ...]:
        """(lowest index, type) of types II..VI, rising."""
        return tuple((c.from_, c.skin_type) for c in self.melanin_cuts)
