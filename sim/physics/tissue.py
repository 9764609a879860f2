"""The skin as layers in depth: what each layer is made of, and the finite-volume grid.

Depth ``z`` runs from the skin surface (z = 0) into the body. Layers, top down:

    epidermis   0 .. epidermis_mm            melanin, no blood vessels, no perfusion
    dermis      .. dermis_bottom_mm          blood perfusion; holds the target vessel
      vessel    vessel_top_mm .. + diameter  a slab of blood (see below)
    subcutis    .. bottom_mm                 fat, little perfusion
    (bottom_mm: held at core temperature, or insulated for energy tests)

The vessel is a 1-D simplification: a horizontal slab of blood as thick as the vessel's
diameter. A real vessel is a cylinder that loses heat sideways, so the slab cools more
slowly after the pulse (which overstates its damage), and it shades the dermis below it
across the whole beam (which understates the heating there). Lateral heat flow and the
spot size do not enter a 1-D model at all: it describes the centre of a wide spot.

Thermal properties are SI (W/m·K, kg/m³, J/kg·K). Each has its source; "approximate,
review" marks values chosen within a published range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from device_profiles.schema import SkinType

F64 = npt.NDArray[np.float64]

ARTERIAL_C = 37.0
CORE_C = 37.0
BLOOD_DENSITY_KG_M3 = 1050.0  # IT'IS Foundation tissue properties database v4.1, blood
BLOOD_HEAT_CAPACITY_J_KGK = 3617.0  # IT'IS v4.1, blood


class Material(IntEnum):
    EPIDERMIS = 0
    DERMIS = 1
    BLOOD = 2
    SUBCUTIS = 3


@dataclass(frozen=True)
class Thermal:
    """One material's conduction, storage and perfusion."""

    conductivity_w_mk: float
    density_kg_m3: float
    heat_capacity_j_kgk: float
    #: Pennes perfusion: volume of blood per volume of tissue per second.
    perfusion_per_s: float

    @property
    def rho_c_j_m3k(self) -> float:
        return self.density_kg_m3 * self.heat_capacity_j_kgk

    @property
    def perfusion_w_m3k(self) -> float:
        """ω·ρ_b·c_b of the Pennes term ω ρ_b c_b (T_a − T)."""
        return self.perfusion_per_s * BLOOD_DENSITY_KG_M3 * BLOOD_HEAT_CAPACITY_J_KGK


#: Epidermis, dermis: conductivity, density and heat capacity from the ranges in the project's
#: domain facts (epidermis 0.21 W/m·K, 3600 J/kg·K; dermis 0.29-0.37 W/m·K, 3224 J/kg·K;
#: density 1110-1190 kg/m³), mid-range where a range is given. Dermal perfusion: resting skin
#: is of order 10⁻³ s⁻¹ (the IT'IS database lists about 2×10⁻³ s⁻¹ for skin); approximate,
#: review. Blood and fat: IT'IS v4.1. The vessel's blood takes the dermis's perfusion term, so
#: between pulses it relaxes like the tissue around it (in a real vessel the flow washes the
#: heat out faster).
THERMAL: dict[Material, Thermal] = {
    Material.EPIDERMIS: Thermal(0.21, 1150.0, 3600.0, 0.0),
    Material.DERMIS: Thermal(0.33, 1150.0, 3224.0, 1.0e-3),
    Material.BLOOD: Thermal(0.52, BLOOD_DENSITY_KG_M3, BLOOD_HEAT_CAPACITY_J_KGK, 1.0e-3),
    Material.SUBCUTIS: Thermal(0.21, 911.0, 2348.0, 0.5e-3),
}

#: Epidermal melanin volume fraction by Fitzpatrick type. Jacques (OMLC News, Jan 1998, "Skin
#: optics") gives 1.3-6.3 % for light-skinned, 11-16 % for moderately pigmented and 18-43 %
#: for darkly pigmented adults; the six types are placed on those three bands (approximate,
#: review). The project's domain facts quote a higher set (I <= 10 % ... VI > 43 %, "others
#: give lower figures"): spread evenly over a 0.1 mm epidermis, those put a type II epidermis
#: at 532 nm, 14 J/cm² (a published leg setting with 5 °C contact cooling) at an adiabatic
#: rise of ~240 K, which clinical use contradicts. Pass ``melanin_fraction`` to use another value.
MELANIN_FRACTION: dict[SkinType, float] = {
    SkinType.I: 0.02,
    SkinType.II: 0.04,
    SkinType.III: 0.06,
    SkinType.IV: 0.13,
    SkinType.V: 0.22,
    SkinType.VI: 0.35,
}


@dataclass(frozen=True)
class SkinGeometry:
    """Layer depths in mm. Defaults: a leg telangiectasia in an adult's skin (approximate)."""

    #: Domain facts: 0.075-0.15 mm; the leg and the face, where vessels are treated, are at the
    #: thin end (approximate, review). Results at the basal layer depend on it strongly.
    epidermis_mm: float = 0.08
    vessel_top_mm: float = 0.3
    vessel_diameter_mm: float = 0.3
    dermis_bottom_mm: float = 2.0
    bottom_mm: float = 6.0

    def __post_init__(self) -> None:
        ep, top, dia = self.epidermis_mm, self.vessel_top_mm, self.vessel_diameter_mm
        if not (ep > 0 and dia > 0 and ep < top and top + dia < self.dermis_bottom_mm):
            raise ValueError(
                f"the vessel ({top}..{top + dia} mm) must lie in the dermis "
                f"({ep}..{self.dermis_bottom_mm} mm) and the epidermis be > 0 thick"
            )
        if not self.bottom_mm > self.dermis_bottom_mm:
            raise ValueError(f"bottom {self.bottom_mm} mm must lie below the dermis")

    @property
    def vessel_bottom_mm(self) -> float:
        return self.vessel_top_mm + self.vessel_diameter_mm


@dataclass(frozen=True)
class Grid:
    """Finite-volume cells, top down. Arrays have one entry per cell."""

    widths_m: F64
    material: npt.NDArray[np.int_]

    @property
    def n(self) -> int:
        return int(self.widths_m.shape[0])

    @property
    def faces_m(self) -> F64:
        return np.concatenate(([0.0], np.cumsum(self.widths_m)))

    @property
    def centres_m(self) -> F64:
        faces = self.faces_m
        out: F64 = 0.5 * (faces[:-1] + faces[1:])
        return out

    def cells_of(self, material: Material) -> npt.NDArray[np.int_]:
        return np.flatnonzero(self.material == material)

    def property_of(self, name: str) -> F64:
        """A `Thermal` property per cell, e.g. ``"conductivity_w_mk"``."""
        table = {m: float(getattr(THERMAL[m], name)) for m in Material}
        return np.array([table[Material(m)] for m in self.material], dtype=np.float64)


def _uniform(length_m: float, dz_m: float) -> list[float]:
    n = max(1, math.ceil(length_m / dz_m - 1e-9))
    return [length_m / n] * n


def _growing(length_m: float, first_m: float, growth: float) -> list[float]:
    """Cells that grow by ``growth`` from ``first_m``, scaled to fill ``length_m`` exactly."""
    widths: list[float] = []
    w = first_m
    while sum(widths) + w < length_m:
        widths.append(w)
        w *= growth
    widths.append(w)
    scale = length_m / sum(widths)
    return [x * scale for x in widths]


def build_grid(geometry: SkinGeometry, dz_um: float = 5.0, growth: float = 1.15) -> Grid:
    """Uniform ``dz_um`` cells from the surface to 0.3 mm below the vessel (or 1 mm), where
    the laser deposits its heat and the gradients are steep; growing cells below.

    Every layer boundary is a cell face, so no cell mixes two materials.
    """
    if not dz_um > 0:
        raise ValueError(f"grid spacing must be positive, got {dz_um} µm")
    g = geometry
    dz = dz_um * 1e-6
    fine_end = min(max(1.0, g.vessel_bottom_mm + 0.3), g.dermis_bottom_mm)
    segments: list[tuple[float, float, Material, bool]] = [
        (0.0, g.epidermis_mm, Material.EPIDERMIS, True),
        (g.epidermis_mm, g.vessel_top_mm, Material.DERMIS, True),
        (g.vessel_top_mm, g.vessel_bottom_mm, Material.BLOOD, True),
        (g.vessel_bottom_mm, fine_end, Material.DERMIS, True),
        (fine_end, g.dermis_bottom_mm, Material.DERMIS, False),
        (g.dermis_bottom_mm, g.bottom_mm, Material.SUBCUTIS, False),
    ]
    widths: list[float] = []
    materials: list[int] = []
    for start_mm, end_mm, material, fine in segments:
        length = (end_mm - start_mm) * 1e-3
        if length <= 0:
            continue
        cells = _uniform(length, dz) if fine else _growing(length, widths[-1] * growth, growth)
        widths += cells
        materials += [int(material)] * len(cells)
    return Grid(np.array(widths, dtype=np.float64), np.array(materials, dtype=np.int_))
