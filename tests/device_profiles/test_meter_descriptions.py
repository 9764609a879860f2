"""Issue 11 item 1: energy meters as data, validated strictly at load.

A meter description is a file a biomedical engineer writes from a manual. Each refusal here
starts from a bundled description's text with one edit a person could make, and checks that
the message names the field.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from device_profiles.loader import (
    ProfileError,
    bundled_meter_names,
    check_endpoints,
    load_meter,
    parse,
    parse_meter,
    with_endpoints,
)
from device_profiles.meter import SAMPLE_FIELDS
from tests.device_profiles.meter_setups import (
    METERS,
    edited,
    meter_block,
    meter_setup,
    meter_text,
    setup_text,
)

OPHIR = meter_text("ophir-style")
SCPI = meter_text("scpi-style")


def refusal(text: str) -> str:
    with pytest.raises(ProfileError) as exc:
        parse_meter(text, "meter.yaml")
    return str(exc.value)


def setup_refusal(text: str, base_dir: Path | None = None) -> str:
    with pytest.raises(ProfileError) as exc:
        parse(text, "clinic.yaml", base_dir=base_dir)
    return str(exc.value)


# --- the bundled descriptions -----------------------------------------------------------------


def test_item1_both_bundled_meters_load() -> None:
    assert bundled_meter_names() == sorted(METERS)
    ophir = load_meter("ophir-style").description
    scpi = load_meter("scpi-style").description
    assert (ophir.transport.baudrate, ophir.terminator) == (9600, "\r\n")
    assert ophir.commands.read_energy.send == "$SE"
    assert ophir.commands.set_wavelength.send.format(nm=1064.0) == "$WL1064"
    assert ophir.error_reply is not None and ophir.error_query is None
    assert scpi.commands.identify.send == "*IDN?"
    assert scpi.commands.read_energy.send == "MEAS:ENER?"
    assert scpi.commands.set_wavelength.send.format(nm=1064.0).startswith("SENS:CORR:WAV 1064")
    assert scpi.error_reply is None and scpi.error_query is not None
    # Only the SCPI sensor reports its own calibration date; for the Ophir head the setup must.
    assert scpi.reports_head_calibration and not ophir.reports_head_calibration


@pytest.mark.parametrize("name", METERS)
def test_item1_every_command_states_its_source(name: str) -> None:
    desc = load_meter(name).description
    sources = [cmd.source for cmd in desc.commands.named().values()] + [desc.over_range.source]
    assert all(len(source) > 10 for source in sources)
    assert "datasheet" in desc.head.source


@pytest.mark.parametrize("name", METERS)
def test_item1_each_reply_pattern_reads_its_meters_own_answer(name: str) -> None:
    """What the loader checks, shown from outside: the answers parse back to their values."""
    desc = load_meter(name).description
    cmds = desc.commands
    energy = re.fullmatch(cmds.read_energy.reply, cmds.read_energy.format_answer(energy=0.5))
    assert energy is not None and float(energy["energy"]) == 0.5
    assert re.fullmatch(desc.over_range.reply, desc.over_range.format_answer())
    ident = re.fullmatch(cmds.identify.reply, cmds.identify.format_answer())
    assert ident is not None and ident["model"] == SAMPLE_FIELDS["model"]


def test_item1_energy_units_and_scale() -> None:
    data = OPHIR.replace("energy_unit: J", "energy_unit: mJ").replace(
        "energy_scale: 1.0", "energy_scale: 10.0"
    )
    desc = parse_meter(data).description
    assert desc.energy_j(2.5) == pytest.approx(0.025)
    assert desc.reported(0.025) == pytest.approx(2.5)


# --- refused descriptions name the field --------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("baudrate: 9600", "baudrate: yes", "transport.baudrate"),
        ("max_energy_j: 10.0", 'max_energy_j: "10"', "head.max_energy_j"),
        ("noise_floor_j: 0.0005", "noise_floor_j: 20", "noise_floor_j 20 must be below"),
        ("energy_unit: J", "energy_unit: kJ", "energy_unit"),
        ('spec: "1"', 'spec: "2"', "spec"),
        ("max_reply_bytes: 128", "max_reply_bytes: 1e9", "max_reply_bytes"),
        ("version: 1", "version: 1\ncolour: red", "colour"),
        ("poll_ms: 100", "poll_ms: .nan", "commands.energy_ready.poll_ms"),
        ("{min: 190, max: 3000}", "{min: 3000, max: 190}", "head.wavelength_nm"),
        # A reply pattern that does not compile.
        (r"reply: '\*(?P<ready>[01])'", r"reply: '\*(?P<ready>[01]'", "does not compile"),
        # The pattern cannot read the meter's own answer.
        ('answer: "*{energy:.3E}"', 'answer: "{energy:.3E}"', "read_energy.reply does not match"),
        # The answer uses a field the command does not have.
        ('answer: "*{energy:.3E}"', 'answer: "*{joules:.3E}"', "read_energy.answer uses"),
        ('answer: "*{energy:.3E}"', 'answer: "*{energy:d}"', "read_energy.answer cannot be"),
        # The reply has no group for what the command is for.
        ("(?P<energy>[-+]?", "(?P<value>[-+]?", "read_energy.reply lacks the groups ['energy']"),
        # A setter without the wavelength, and two commands that send the same line.
        ('send: "$WL{nm:.0f}"', 'send: "$WL1064"', "set_wavelength.send must use {nm}"),
        ('send: "$EF"', 'send: "$SE"', "cannot be told apart"),
        ('ready_value: "1"', 'ready_value: "0"', "must differ"),
        ('answer: "*{ready}"', 'answer: "*1"', "energy_ready.reply reads ready"),
        # An over-range pattern that an ordinary reading matches: every shot would be OVER.
        (r"reply: '\*OVER'", r"reply: '\*.*'", "over_range.reply matches an ordinary reading"),
        ('send: "$II"', 'send: "$II\\r\\n"', "must not contain a line terminator"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else None,
)
def test_item1_an_invalid_description_is_refused_naming_the_field(
    old: str, new: str, field: str
) -> None:
    message = refusal(edited(OPHIR, old, new))
    assert field in message
    assert message.startswith("meter.yaml: invalid meter description")


def test_item1_a_setter_without_read_back_needs_a_query() -> None:
    start = OPHIR.index("  get_wavelength:")
    end = OPHIR.index("  read_energy:")
    message = refusal(OPHIR[:start] + OPHIR[end:])
    assert "give get_wavelength" in message


def test_item1_a_reported_calibration_date_needs_its_format() -> None:
    message = refusal(edited(SCPI, '    calibrated_format: "%d-%b-%Y"\n', ""))
    assert "head_info.calibrated_format" in message
    message = refusal(edited(SCPI, '"%d-%b-%Y"', '"%Y-%m-%d"'))
    assert "head_info.reply does not match" in message


def test_item1_an_error_query_needs_code_and_reason() -> None:
    message = refusal(edited(SCPI, "(?P<code>[-+]?[0-9]+)", "(?P<number>[-+]?[0-9]+)"))
    assert "error_query" in message and "code" in message


@pytest.mark.parametrize(
    "raw",
    [b"\x89PNG\r\n\x1a\n\x00\x00binary", b"", OPHIR.encode()[: len(OPHIR) // 2] + b"\n  - ["],
    ids=["binary", "empty", "truncated"],
)
def test_item1_a_binary_empty_or_truncated_file_is_refused(raw: bytes) -> None:
    with pytest.raises(ProfileError, match=r"meter\.yaml: "):
        parse_meter(raw, "meter.yaml")


def test_item1_an_unknown_meter_lists_the_bundled_ones() -> None:
    with pytest.raises(ProfileError, match="bundled: ophir-style, scpi-style"):
        load_meter("gentec-style")


# --- a setup names its meter ------------------------------------------------------------------


def test_item1_a_setup_names_a_bundled_meter() -> None:
    loaded = meter_setup("ophir-style", "2026-05-01")
    block = loaded.setup.energy_meter
    assert block is not None and block.head_calibrated == date(2026, 5, 1)
    assert block.head_calibration_interval_days == 365
    assert loaded.meter is not None and loaded.meter.description.name == "ophir-style"
    assert loaded.meter.digest == load_meter("ophir-style").digest
    assert loaded.setup.laser.protocol.has_service_mode


def test_item1_a_meter_that_reports_its_calibration_needs_no_date_in_the_setup() -> None:
    loaded = meter_setup("scpi-style", head_calibrated=None)
    assert loaded.meter is not None and loaded.setup.energy_meter is not None
    assert loaded.setup.energy_meter.head_calibrated is None


def test_item1_a_meter_that_cannot_report_its_calibration_needs_the_date() -> None:
    message = setup_refusal(setup_text(meter_block("ophir-style", None)))
    assert "energy_meter.head_calibrated" in message and "ophir-style" in message


def test_item1_a_setup_without_a_meter_is_unchanged() -> None:
    loaded = parse(setup_text(None, service=False), "clinic.yaml")
    assert loaded.meter is None and loaded.setup.energy_meter is None
    assert not loaded.setup.laser.protocol.has_service_mode


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("{device: gentec-style, head_calibration_interval_days: 365}", "energy_meter.device"),
        (meter_block("ophir-style", "2026-13-01"), "energy_meter.head_calibrated"),
        (meter_block("ophir-style", "2026-5-1"), "energy_meter.head_calibrated"),
        (meter_block("ophir-style", "yes"), "energy_meter.head_calibrated"),
        (meter_block("ophir-style", "20260501"), "energy_meter.head_calibrated"),
        (
            "{device: ophir-style, head_calibrated: 2026-05-01, head_calibration_interval_days: 0}",
            "energy_meter.head_calibration_interval_days",
        ),
        (
            "{device: ophir-style, head_calibrated: 2026-05-01, "
            'head_calibration_interval_days: "365"}',
            "energy_meter.head_calibration_interval_days",
        ),
        ("{device: ophir-style, head_calibrated: 2026-05-01}", "head_calibration_interval_days"),
        (
            "{device: scpi-style, head_calibration_interval_days: 365, baud: 9600}",
            "energy_meter.baud",
        ),
    ],
    ids=[
        "unknown-meter",
        "month-13",
        "not-iso",
        "yes",
        "integer",
        "zero-interval",
        "quoted-interval",
        "no-interval",
        "unknown-key",
    ],
)
def test_item1_a_bad_energy_meter_block_is_refused_naming_the_field(block: str, field: str) -> None:
    assert field in setup_refusal(setup_text(block))


def test_item1_a_meter_for_another_wavelength_is_refused(tmp_path: Path) -> None:
    visible = edited(OPHIR, "{min: 190, max: 3000}", "{min: 400, max: 700}")
    (tmp_path / "meters").mkdir()
    (tmp_path / "meters" / "visible-only.yaml").write_text(visible, encoding="utf-8")
    text = setup_text(meter_block("meters/visible-only.yaml"))
    message = setup_refusal(text, base_dir=tmp_path)
    assert "400–700 nm" in message and "1064 nm" in message


def test_item1_a_meter_file_is_found_beside_the_setup(tmp_path: Path) -> None:
    (tmp_path / "bench-meter.yaml").write_text(SCPI, encoding="utf-8")
    setup = tmp_path / "clinic.yaml"
    setup.write_text(setup_text(meter_block("bench-meter.yaml", None)), encoding="utf-8")
    loaded = parse(setup.read_bytes(), str(setup))
    assert loaded.meter is not None and loaded.meter.source == str(tmp_path / "bench-meter.yaml")


def test_item1_an_invalid_meter_file_refuses_the_setup(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(edited(OPHIR, "baudrate: 9600", "baudrate: 0"), "utf-8")
    message = setup_refusal(setup_text(meter_block("bad.yaml")), base_dir=tmp_path)
    assert "energy_meter.device" in message and "transport.baudrate" in message


def test_item1_a_service_mode_is_all_three_commands_or_none() -> None:
    text = setup_text(None)
    text = edited(text, '    service_off: {send: "SERVICE OFF", reply: "OK SERVICE OFF"}\n', "")
    message = setup_refusal(text)
    assert "laser.protocol" in message and "service_off missing" in message


# --- the simulator's endpoints move the meter ---------------------------------------------------


def test_item1_an_endpoint_moves_the_meter_and_nothing_else() -> None:
    loaded = meter_setup("ophir-style")
    moved = with_endpoints(loaded.setup, {"meter": "/dev/pts/77"})
    assert moved.energy_meter is not None and moved.energy_meter.port == "/dev/pts/77"
    assert moved.energy_meter.head_calibrated == date(2026, 5, 1)
    # A setup without a meter ignores a meter endpoint, as one with a serial-line relay
    # ignores an interlock endpoint.
    plain = parse(setup_text(None), "clinic.yaml").setup
    assert with_endpoints(plain, {"meter": "/dev/pts/77"}).energy_meter is None


@pytest.mark.parametrize(
    "endpoint", [{"host": "127.0.0.1", "port": 1}, "", 5], ids=["object", "empty", "number"]
)
def test_item1_a_meter_endpoint_is_a_port_path(endpoint: object) -> None:
    with pytest.raises(ProfileError, match="meter's endpoint is a serial port"):
        check_endpoints({"meter": endpoint})
