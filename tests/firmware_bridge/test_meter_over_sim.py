"""Issue 11 item 1: the meter driver against the simulated meter over a real pty, for both
bundled descriptions, reading the shots of a simulated laser in its service mode.

The simulated meter reads delivered x (1 + N(0, 1.5 %)) + N(0, head noise floor), seeded;
the bounds below are about four standard deviations (one shot) or of the mean (N shots).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup, parse
from firmware_bridge.errors import DeviceRejected, LinkLost, MeterOverRange
from firmware_bridge.transport import SerialLineTransport
from tests.device_profiles.meter_setups import METERS, meter_block, meter_setup, setup_text
from tests.sim.meter_rig import SET_J, OpenBench, benches

pytestmark = pytest.mark.timeout(60)

NOISE = 0.015  # the simulated meter's shot-to-shot RMS (sim.scenario.MeterSettings)
SHOTS = 10


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[OpenBench]:
    yield from benches(tmp_path)


def mean_ratio(readings: list[float], set_j: float = SET_J) -> float:
    return statistics.fmean(readings) / set_j


@pytest.mark.parametrize("device", METERS)
def test_item1_the_driver_reads_a_firing_laser_within_the_meters_noise(
    bench: OpenBench, device: str
) -> None:
    rig = bench(device)
    ident = rig.meter.identify()
    assert ident.model == "SIM-METER" and ident.serial == "SIM00001"
    assert rig.meter.head_info().head_type == "SIM-HEAD"
    # The meter powers up at 532 nm: the laser is 1064 nm, so it must be set.
    assert rig.meter.set_wavelength(1064.0) == pytest.approx(1064.0)
    assert rig.meter.set_range_auto() is (device == "scpi-style")
    rig.set_fluence(20.0)
    rig.service()
    readings = rig.shots(SHOTS)
    assert len(readings) == SHOTS
    assert all(abs(r / SET_J - 1.0) < 4 * NOISE for r in readings), readings
    assert abs(mean_ratio(readings) - 1.0) < 4 * NOISE / SHOTS**0.5
    # A real spread about the stated noise, not one value repeated.
    assert 0.3 * NOISE < statistics.stdev(readings) / SET_J < 2.5 * NOISE
    # What the meter measured is what the laser delivered: fluence x spot area.
    assert [e["delivered_j"] for e in rig.meter_pulses()] == pytest.approx([SET_J] * SHOTS)


@pytest.mark.parametrize("device", METERS)
def test_item1_a_laser_30_percent_hot_reads_30_percent_high(bench: OpenBench, device: str) -> None:
    rig = bench(device, {"t_s": 0.0, "action": "laser_output_error", "gain": 1.3})
    rig.meter.set_wavelength(1064.0)
    rig.set_fluence(20.0)
    rig.service()
    ratio = mean_ratio(rig.shots(SHOTS))
    assert ratio == pytest.approx(1.3, abs=1.3 * 4 * NOISE / SHOTS**0.5)


def test_item1_offset_and_drift_follow_the_stated_formula(bench: OpenBench) -> None:
    rig = bench(
        "ophir-style",
        {"t_s": 0.0, "action": "laser_output_error", "gain": 1.1, "offset_j": -0.2,
         "drift_per_shot": 0.02},
    )  # fmt: skip
    rig.meter.set_wavelength(1064.0)
    rig.set_fluence(20.0)
    rig.service()
    readings = rig.shots(8)
    expected = [SET_J * 1.1 * (1 + 0.02 * n) - 0.2 for n in range(8)]
    assert [e["delivered_j"] for e in rig.meter_pulses()] == pytest.approx(expected)
    for reading, want in zip(readings, expected, strict=True):
        assert reading == pytest.approx(want, rel=4 * NOISE, abs=0.002)


def test_item1_a_meter_left_at_another_wavelength_reads_wrong(bench: OpenBench) -> None:
    """The head's spectral correction for 532 nm applied to a 1064 nm pulse: the stated
    factor, 0.8, not the delivered energy."""
    rig = bench("scpi-style")
    rig.set_fluence(20.0)
    rig.service()
    ratio = mean_ratio(rig.shots(SHOTS))
    assert ratio == pytest.approx(0.8, abs=0.8 * 4 * NOISE / SHOTS**0.5)
    assert {e["meter_wavelength_nm"] for e in rig.meter_pulses()} == {532.0}


@pytest.mark.parametrize(("device", "fluence"), [("ophir-style", 150.0), ("scpi-style", 60.0)])
def test_item1_a_shot_above_the_heads_range_is_over_range(
    bench: OpenBench, device: str, fluence: float
) -> None:
    """10.6 J on the 10 J Ophir-style head, 4.2 J on the 3 J SCPI-style sensor."""
    rig = bench(device)
    rig.meter.set_wavelength(1064.0)
    set_j = rig.set_fluence(fluence)
    assert rig.loaded.meter is not None and set_j > rig.loaded.meter.description.head.max_energy_j
    rig.service()
    with pytest.raises(MeterOverRange):
        rig.shots(1)
    assert rig.laser.command("SERVICE OFF") == "OK SERVICE OFF"
    rig.set_fluence(20.0)
    rig.service()
    assert abs(mean_ratio(rig.shots(1)) - 1.0) < 4 * NOISE  # in range again


def test_item1_the_meters_own_calibration_date_is_settable(bench: OpenBench) -> None:
    rig = bench("scpi-style", meter={"head_calibrated": "2020-01-01"})
    assert rig.meter.head_info().calibrated == date(2020, 1, 1)


def test_item1_the_meters_own_calibration_date_is_recent_by_default(bench: OpenBench) -> None:
    rig = bench("scpi-style")
    calibrated = rig.meter.head_info().calibrated
    assert calibrated is not None and 0 < (date.today() - calibrated).days <= 31


def test_item1_the_simulated_ophir_meter_refuses_with_a_question_mark(bench: OpenBench) -> None:
    rig = bench("ophir-style")
    line = SerialLineTransport(
        rig.loaded.meter.description.transport.model_copy(  # type: ignore[union-attr]
            update={"port": rig.runner.endpoints["meter"]}
        ),
        "\r\n",
    )
    try:
        assert line.request("$XX") == "?UNKNOWN COMMAND"
        assert line.request("$WL20000") == "?WAVELENGTH OUT OF RANGE"
    finally:
        line.close()
    with pytest.raises(DeviceRejected, match="WAVELENGTH OUT OF RANGE"):
        rig.meter.set_wavelength(20_000.0)


def test_item1_the_simulated_scpi_meter_refuses_silently_and_queues(bench: OpenBench) -> None:
    rig = bench("scpi-style")
    desc = rig.loaded.meter.description  # type: ignore[union-attr]
    cfg = desc.transport.model_copy(update={"port": rig.runner.endpoints["meter"]})
    line = SerialLineTransport(cfg.model_copy(update={"timeout_ms": 150.0}), "\n")
    try:
        with pytest.raises(LinkLost):
            line.request("MEAS:POWR?")
        assert line.request("SYST:ERR?") == '-113,"UNDEFINED HEADER"'
        assert line.request("SYST:ERR?") == '0,"NO ERROR"'
    finally:
        line.close()
    with pytest.raises(DeviceRejected, match=r"kept 532 nm \(-222, DATA OUT OF RANGE\)"):
        rig.meter.set_wavelength(50_000.0)


GENTEC_STYLE = r"""
spec: "1"
name: gentec-style
version: 1
description: A third command set, written for this test only (Gentec P-Link-like).
model: Gentec-style energy meter
transport: {kind: serial, port: /dev/ttyUSB2, baudrate: 57600, timeout_ms: 500}
terminator: "\r\n"
energy_unit: mJ
head:
  model: test head
  max_energy_j: 5
  noise_floor_j: 0.0001
  wavelength_nm: {min: 190, max: 20000}
  source: "test head, no datasheet"
commands:
  identify: {send: "*VER", reply: 'Version (?P<firmware>\S+) (?P<model>\S+)',
             answer: "Version {firmware} {model}", source: "test"}
  head_info: {send: "*STS", reply: 'Head (?P<head_type>\S+) SN(?P<head_serial>\S+)',
              answer: "Head {head_type} SN{head_serial}", source: "test"}
  set_wavelength: {send: "*PWC{nm:05.0f}", reply: "ACK", answer: "ACK", source: "test"}
  get_wavelength: {send: "*GWL", reply: 'PWC: (?P<wavelength_nm>[0-9]+)',
                   answer: "PWC: {wavelength_nm:.0f}", source: "test"}
  read_energy: {send: "*CVU", reply: 'Current Value: (?P<energy>[-+0-9.]+)',
                answer: "Current Value: {energy:.4f}", source: "test"}
  energy_ready: {send: "*NVU", reply: 'New Data (?P<ready>Available|Not Available)',
                 answer: "New Data {ready}", ready_value: "Available",
                 not_ready_value: "Not Available", poll_ms: 20, source: "test"}
over_range: {reply: "Current Value: OVR", answer: "Current Value: OVR", source: "test"}
error_reply: {reply: 'Command Error (?P<reason>.*)', answer: "Command Error {reason}",
              source: "test"}
"""


def test_item1_a_third_command_set_is_a_file_not_code(bench: OpenBench, tmp_path: Path) -> None:
    """A meter in millijoules with its own words for everything: the same driver and the same
    simulator, from a description written here."""
    (tmp_path / "gentec-style.yaml").write_text(GENTEC_STYLE, encoding="utf-8")
    loaded: LoadedSetup = parse(
        setup_text(meter_block("gentec-style.yaml")), "bench.yaml", base_dir=tmp_path
    )
    rig = bench(loaded=loaded)
    assert rig.meter.identify().model == "SIM-METER"
    assert rig.meter.set_wavelength(1064.0) == 1064.0
    rig.set_fluence(20.0)
    rig.service()
    assert abs(mean_ratio(rig.shots(5)) - 1.0) < 4 * NOISE / 5**0.5


def test_item1_a_setup_without_a_meter_gets_no_meter_endpoint(tmp_path: Path) -> None:
    from sim.runner import SimRunner
    from tests.sim.conftest import make_scenario

    plain = parse(setup_text(None), "plain.yaml").setup
    with SimRunner(plain, make_scenario(), run_dir=tmp_path / "plain") as runner:
        assert "meter" not in runner.endpoints and runner.meter is None
    with SimRunner(meter_setup().setup, make_scenario(), run_dir=tmp_path / "bench") as runner:
        # Given no description, the runner loads the one the setup names (bundled here).
        assert runner.meter is not None and runner.meter.desc.name == "ophir-style"
        written = (tmp_path / "bench" / "endpoints.json").read_text(encoding="utf-8")
        assert runner.endpoints["meter"].startswith("/dev/") and '"meter"' in written


def test_item1_a_procedure_drives_laser_and_meter_through_their_drivers(
    bench: OpenBench,
) -> None:
    """The call shape the calibration procedure will use: the laser's service mode through
    `LineLaserDriver` (the profile's optional commands), the shot read through the meter's."""
    from firmware_bridge.drivers import LineLaserDriver

    rig = bench("scpi-style")
    # One talker on the laser's port: the bench's keepalive stops sending heartbeats (it
    # keeps the relay closed) and the driver sends its own.
    rig.keepalive.heartbeat = False
    time.sleep(0.1)
    laser_cfg = rig.loaded.setup.laser
    line = SerialLineTransport(
        laser_cfg.transport.model_copy(update={"port": rig.runner.endpoints["laser"]}),
        laser_cfg.protocol.terminator,
    )
    laser = LineLaserDriver(laser_cfg, line)
    try:
        laser.heartbeat()
        assert laser.set("fluence_j_cm2", 20.0) == 20.0
        laser.service_on()
        rig.meter.set_wavelength(1064.0)
        rig.meter.discard_pending()
        laser.heartbeat()
        laser.service_shot()
        assert rig.meter.wait_pulse_energy_j(2.0) == pytest.approx(SET_J, rel=4 * NOISE)
        laser.service_off()
        with pytest.raises(DeviceRejected, match="NOT IN SERVICE MODE"):
            laser.service_shot()
    finally:
        line.close()


def test_item1_a_laser_profile_without_a_service_mode_says_so() -> None:
    from device_profiles.loader import load
    from firmware_bridge.drivers import LineLaserDriver

    class Unused(SerialLineTransport):
        def request(self, line: str) -> str:
            raise AssertionError(f"nothing may be sent: {line!r}")

    laser = load("demo-ndyag-1064").setup.laser
    driver = LineLaserDriver(laser, Unused(laser.transport, "\r\n"))
    with pytest.raises(ValueError, match="has no service mode"):
        driver.service_shot()
