"""A calibration bench in the simulator: a laser with a service mode, its relay kept closed
and its heartbeat kept alive (as the bridge would), and an energy meter on its own pty."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from device_profiles.loader import LoadedSetup
from device_profiles.schema import ModbusCoilOutput
from firmware_bridge.meter import EnergyMeterDriver, meter_transport
from sim.laser import spot_area_cm2
from sim.runner import SimRunner
from tests.device_profiles.meter_setups import meter_setup
from tests.sim.conftest import Keepalive, LaserPort, make_scenario

FLUENCE_J_CM2 = 20.0
SPOT_MM = 3.0
#: What the laser is set to deliver per pulse: fluence x spot area (about 1.41 J).
SET_J = FLUENCE_J_CM2 * spot_area_cm2(SPOT_MM)


class Bench:
    """The simulator, the laser's port with a keepalive, and the meter's driver."""

    def __init__(self, loaded: LoadedSetup, runner: SimRunner) -> None:
        assert loaded.meter is not None
        assert isinstance(loaded.setup.interlock_output, ModbusCoilOutput)
        self.loaded = loaded
        self.runner = runner
        self.laser = LaserPort(runner.endpoints["laser"])
        self.keepalive = Keepalive(
            self.laser, runner.endpoints["interlock"], loaded.setup.interlock_output.coil
        )
        self.keepalive.__enter__()
        desc = loaded.meter.description
        self.meter = EnergyMeterDriver(desc, meter_transport(desc, runner.endpoints["meter"]))

    def set_fluence(self, fluence_j_cm2: float, spot_mm: float = SPOT_MM) -> float:
        """Set the laser (in STANDBY); returns the energy per pulse it is set to, in J."""
        assert self.laser.command(f"SET F {fluence_j_cm2}").startswith("OK F=")
        assert self.laser.command(f"SET SPOT {spot_mm}").startswith("OK SPOT=")
        return fluence_j_cm2 * spot_area_cm2(spot_mm)

    def service(self) -> None:
        assert self.laser.command("SERVICE ON") == "OK SERVICE ON"

    def shots(self, n: int) -> list[float]:
        """``n`` test shots into the meter, each read as the calibration procedure will."""
        readings = []
        self.meter.discard_pending()
        for _ in range(n):
            assert self.laser.command("SERVICE SHOT") == "OK SHOT"
            readings.append(self.meter.wait_pulse_energy_j(2.0))
        return readings

    def meter_pulses(self) -> list[dict[str, Any]]:
        return [e for e in self.runner.events() if e["kind"] == "meter_pulse"]

    def close(self) -> None:
        self.meter.close()
        self.keepalive.__exit__()
        self.laser.close()


OpenBench = Callable[..., Bench]


def benches(tmp_path: Path) -> Iterator[OpenBench]:
    """For a fixture: ``open_bench(meter_name, *events, **scenario_fields)`` starts a bench;
    every bench is closed when the fixture ends."""
    made: list[tuple[Bench | None, SimRunner]] = []

    def open_bench(
        device: str = "ophir-style",
        *events: dict[str, Any],
        loaded: LoadedSetup | None = None,
        **fields: Any,
    ) -> Bench:
        loaded = loaded or meter_setup(device)
        assert loaded.meter is not None
        runner = SimRunner(
            loaded.setup,
            make_scenario(*events, **fields),
            speed=10.0,
            run_dir=tmp_path / f"run{len(made)}",
            meter=loaded.meter.description,
        )
        made.append((None, runner))
        runner.start()
        rig = Bench(loaded, runner)
        made[-1] = (rig, runner)
        return rig

    yield open_bench
    for rig, runner in made:
        if rig is not None:
            rig.close()
        runner.stop()
