"""Clinical dimensions of a treatment, as data: where on the body, how the skin is cooled, what
the skin-temperature sensor can see, and the patient's test spots.

- ``TreatmentSite`` and ``CoolingMethod`` are dimensions of a limit row (``SettingsLimit.sites``,
  ``SettingsLimit.cooling``): a row published with cryogen cooling never judges a treatment
  under contact cooling, a row for the legs never judges the face.
- ``SkinSensorView`` states what a skin-temperature sensor measures: its kind, its spectral
  band and where it looks. ``view_problem`` refuses a combination that cannot measure skin: an
  8–14 µm pyrometer aimed through a sapphire window reads the window, because sapphire is
  opaque beyond about 6 µm.
- ``SKIN_LOW_BY_COOLING``: how low the skin may go, by cooling method. Cryogen takes the
  surface to −9 °C for milliseconds without injury; a contact plate must not freeze skin.
- ``TestSpotReading``: a test spot in the patient's history, done and read after a wait.

Every number carries its source, or says "clinic default, review".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class TreatmentSite(StrEnum):
    """Where on the body a session treats. Periorbital (inside the orbital rim) needs the
    patient's eye shields confirmed before arming."""

    FACE = "face"
    PERIORBITAL = "periorbital"
    LEGS = "legs"
    BODY = "body"  # trunk and arms


class CoolingMethod(StrEnum):
    """How the epidermis is cooled during treatment."""

    CONTACT = "contact"  # a chilled window (sapphire) pressed on the skin
    CRYOGEN = "cryogen"  # a cryogen spurt (R134a) just before each pulse
    AIR = "air"  # a cold-air blower
    NONE = "none"


# --- how low the skin may go, by cooling method ------------------------------------------------

#: Skin freezes at about −2 °C (cryogen spray practice).
SKIN_FREEZES_C = -2.0


@dataclass(frozen=True)
class SkinLowLimit:
    """The low skin-temperature limit a cooling method allows.

    ``lowest_c``: a setup's ``limits.skin_temp_c.low`` may not be set below it (any reading
    below the setup's low halts at once). ``freezing_hold_ms``: the skin may be below
    ``SKIN_FREEZES_C`` for at most this long before LaserGuard halts (None: the low limit
    already lies at or above freezing, so no hold is allowed at all).
    """

    lowest_c: float
    freezing_hold_ms: float | None
    source: str


_NO_FREEZING = (
    "skin freezes at about -2 degC: the low limit may not be below it (a contact plate, cold "
    "air or an uncooled surface must not freeze skin)"
)
SKIN_LOW_BY_COOLING: dict[CoolingMethod, SkinLowLimit] = {
    CoolingMethod.CONTACT: SkinLowLimit(SKIN_FREEZES_C, None, _NO_FREEZING),
    CoolingMethod.AIR: SkinLowLimit(SKIN_FREEZES_C, None, _NO_FREEZING),
    CoolingMethod.NONE: SkinLowLimit(SKIN_FREEZES_C, None, _NO_FREEZING),
    CoolingMethod.CRYOGEN: SkinLowLimit(
        -10.0,
        100.0,
        "R134a cryogen spurts of 20-100 ms take the surface to 5 to -9 degC for milliseconds "
        "without injury (Anvari et al., IEEE Trans Biomed Eng 1998;45:934; verify): a reading "
        "below -10 degC, or below freezing for longer than the longest published spurt "
        "(100 ms), is more than a spurt. Clinic default, review",
    ),
}


# --- what the skin-temperature sensor can see ---------------------------------------------------


class SensorKind(StrEnum):
    PYROMETER = "pyrometer"  # an infrared radiation thermometer: looks, at a spectral band
    THERMISTOR = "thermistor"  # touches: measures what it is in contact with
    THERMOCOUPLE = "thermocouple"


CONTACT_SENSORS = frozenset({SensorKind.THERMISTOR, SensorKind.THERMOCOUPLE})


class SensorPosition(StrEnum):
    """Where the sensor measures."""

    SKIN_BESIDE_WINDOW = "skin_beside_window"  # looks at (or touches) bare skin by the window
    THROUGH_WINDOW = "through_window"  # a pyrometer looking at the skin through the window
    IN_WINDOW = "in_window"  # a sensor built into the cooling window


class WindowMaterial(StrEnum):
    SAPPHIRE = "sapphire"
    ZINC_SELENIDE = "zinc_selenide"
    GERMANIUM = "germanium"
    CALCIUM_FLUORIDE = "calcium_fluoride"


@dataclass(frozen=True)
class Transmission:
    """The infrared band a window material passes, in micrometres."""

    min_um: float
    max_um: float
    source: str


#: Where each window material is transparent. Sapphire is opaque beyond about 6 µm (the
#: issue's review; sapphire optics catalogues give 0.15-5.5 µm); the others from optics
#: catalogues' transmission curves (verify against the window's own data sheet).
WINDOW_TRANSMISSION: dict[WindowMaterial, Transmission] = {
    WindowMaterial.SAPPHIRE: Transmission(
        0.15, 5.5, "sapphire transmits 0.15-5.5 um, opaque beyond about 6 um (optics catalogues)"
    ),
    WindowMaterial.ZINC_SELENIDE: Transmission(
        0.6, 16.0, "ZnSe transmits 0.6-16 um (optics catalogues; verify)"
    ),
    WindowMaterial.GERMANIUM: Transmission(
        2.0, 16.0, "germanium transmits 2-16 um (optics catalogues; verify)"
    ),
    WindowMaterial.CALCIUM_FLUORIDE: Transmission(
        0.13, 10.0, "CaF2 transmits 0.13-10 um (optics catalogues; verify)"
    ),
}


class BandUm(_Strict):
    """A pyrometer's spectral band, in micrometres."""

    min: float = Field(gt=0, le=100)
    max: float = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> BandUm:
        if not self.min < self.max:
            raise ValueError(f"min {self.min:g} um must be below max {self.max:g} um")
        return self


class SkinSensorView(_Strict):
    """What the skin-temperature sensor measures (``sensor.view`` in a setup).

    A pyrometer gives its ``band_um``; a sensor looking ``through_window`` names the
    ``window`` material. ``view_problem`` says why a combination cannot measure skin.
    """

    kind: SensorKind = Field(strict=False)
    position: SensorPosition = Field(strict=False)
    band_um: BandUm | None = None
    window: WindowMaterial | None = Field(None, strict=False)
    source: str = Field(min_length=1, description="The sensor's data sheet (band, position)")

    @model_validator(mode="after")
    def _measures_skin(self) -> SkinSensorView:
        problem = view_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self


def view_problem(view: SkinSensorView) -> str | None:
    """Why this sensor cannot measure the skin's surface, or None if it can."""
    if view.kind is SensorKind.PYROMETER:
        if view.band_um is None:
            return "a pyrometer states its spectral band (band_um: {min, max} in micrometres)"
        if view.position is SensorPosition.IN_WINDOW:
            return (
                "a pyrometer built into the window sees the window, not the skin: it looks "
                "at the skin beside the window or through it"
            )
        if view.position is SensorPosition.THROUGH_WINDOW:
            if view.window is None:
                return "a pyrometer looking through a window names the window's material"
            passes = WINDOW_TRANSMISSION[view.window]
            band = view.band_um
            if band.min < passes.min_um or band.max > passes.max_um:
                return (
                    f"a {band.min:g}-{band.max:g} um pyrometer aimed through a {view.window} "
                    f"window reads the window, not the skin: {view.window} passes only "
                    f"{passes.min_um:g}-{passes.max_um:g} um ({passes.source}); look at the "
                    "skin beside the window, or use a pyrometer whose band the window passes"
                )
        elif view.window is not None:
            return "window is given only for a pyrometer looking through_window"
        return None
    if view.band_um is not None:
        return f"a {view.kind} touches what it measures: it has no spectral band (band_um)"
    if view.position is SensorPosition.THROUGH_WINDOW:
        return f"a {view.kind} touches what it measures: it cannot measure through a window"
    if view.position is SensorPosition.IN_WINDOW:
        return (
            f"a {view.kind} in the cooling window measures the window (near the plate's "
            "temperature), not the skin's surface after a pulse: put it on the skin beside "
            "the window, or use a pyrometer"
        )
    if view.window is not None:
        return "window is given only for a pyrometer looking through_window"
    return None


# --- test spots in the patient's history --------------------------------------------------------

#: Vendor guidance: read a test spot 1-2 weeks after it was done. The longer end is the
#: conservative one. Clinic default, review.
TEST_SPOT_READ_AFTER_DAYS = 14
#: A clinic may shorten the wait to the vendor's shortest, never below it.
TEST_SPOT_READ_AFTER_DAYS_MIN = 7


class TestSpotResult(StrEnum):
    __test__ = False  # a clinical term, not a pytest test class

    NO_REACTION = "no_reaction"  # no blister, no pigment change, no scar: treat up to its settings
    ADVERSE = "adverse"  # blister, crust, pigment change...: not a basis for treatment


class TestSpotReading(_Strict):
    """A test spot in the patient's history: when and where it was done, at which settings,
    when and by whom it was read, and what was seen."""

    __test__ = False  # a clinical term, not a pytest test class

    done_on: date = Field(strict=False)
    read_on: date | None = Field(None, strict=False)
    read_by: str | None = Field(None, min_length=1)
    site: TreatmentSite = Field(strict=False)
    wavelength_nm: float = Field(gt=200, lt=11_000)
    fluence_j_cm2: float = Field(gt=0)
    pulse_ms: float = Field(gt=0)
    spot_mm: float = Field(gt=0)
    result: TestSpotResult | None = Field(None, strict=False)

    @model_validator(mode="after")
    def _read_after_done(self) -> TestSpotReading:
        read = (self.read_on, self.read_by, self.result)
        if any(x is not None for x in read) and any(x is None for x in read):
            raise ValueError("a read test spot gives read_on, read_by and result together")
        if self.read_on is not None and self.read_on < self.done_on:
            raise ValueError(f"read_on {self.read_on} is before done_on {self.done_on}")
        return self

    @property
    def days_before_reading(self) -> int | None:
        return None if self.read_on is None else (self.read_on - self.done_on).days

    def describe(self) -> str:
        read = (
            "not read"
            if self.read_on is None
            else f"read {self.read_on} by {self.read_by}: {self.result}"
        )
        return (
            f"test spot {self.done_on} ({self.site}, {self.wavelength_nm:g} nm, "
            f"{self.fluence_j_cm2:g} J/cm², {self.pulse_ms:g} ms, {self.spot_mm:g} mm; {read})"
        )
