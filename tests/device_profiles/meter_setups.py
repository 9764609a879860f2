"""Setups and meter descriptions for the calibration tests, written as a person would: the
bundled demo setup's text with a service mode for its laser and an ``energy_meter`` block."""

from __future__ import annotations

from pathlib import Path

from device_profiles.loader import LoadedSetup, bundled_dir, bundled_meters_dir, parse

DEMO_TEXT = (bundled_dir() / "demo-ndyag-1064.yaml").read_text(encoding="utf-8")
METERS = ("ophir-style", "scpi-style")

HEARTBEAT_LINE = '    heartbeat: {send: "HB", reply: "OK HB"}\n'
SERVICE_COMMANDS = (
    '    service_on: {send: "SERVICE ON", reply: "OK SERVICE ON"}\n'
    '    service_off: {send: "SERVICE OFF", reply: "OK SERVICE OFF"}\n'
    '    service_shot: {send: "SERVICE SHOT", reply: "OK SHOT"}\n'
)


def meter_text(name: str) -> str:
    return (bundled_meters_dir() / f"{name}.yaml").read_text(encoding="utf-8")


def edited(text: str, old: str, new: str) -> str:
    """``text`` with one piece replaced (it must be there exactly once)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def setup_text(meter_block: str | None, *, service: bool = True) -> str:
    """The demo setup, with the laser's service commands and ``energy_meter: <block>``."""
    text = DEMO_TEXT
    if service:
        text = edited(text, HEARTBEAT_LINE, HEARTBEAT_LINE + SERVICE_COMMANDS)
    if meter_block is not None:
        text += f"\nenergy_meter: {meter_block}\n"
    return text


def meter_block(device: str, head_calibrated: str | None = "2026-05-01") -> str:
    dated = "" if head_calibrated is None else f"head_calibrated: {head_calibrated}, "
    return f"{{device: {device}, {dated}head_calibration_interval_days: 365}}"


def meter_setup(
    device: str = "ophir-style",
    head_calibrated: str | None = "2026-05-01",
    base_dir: Path | None = None,
) -> LoadedSetup:
    """The demo setup with a service mode and the meter ``device``, loaded."""
    text = setup_text(meter_block(device, head_calibrated))
    return parse(text, "calibration-bench.yaml", base_dir=base_dir)
