"""Loading setups: the bundled one loads, a broken one is refused naming the field."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from device_profiles.loader import (
    ProfileError,
    bundled_dir,
    bundled_names,
    bundled_tables_dir,
    combined_digest,
    load,
    parse,
    with_endpoints,
)
from device_profiles.schema import ModbusTcpTransport, Setup

DEMO = "demo-ndyag-1064"
DEMO_FILE = bundled_dir() / f"{DEMO}.yaml"
TABLE_FILE = bundled_tables_dir() / "nd-yag-1064.yaml"


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


Data = dict[str, Any]


@pytest.fixture(scope="module")
def pristine() -> Data:
    data: Data = yaml.safe_load(DEMO_FILE.read_bytes())
    return data


@pytest.fixture
def data(pristine: Data) -> Data:
    return copy.deepcopy(pristine)


def refused(data: Data) -> str:
    """The loader's message for a setup built from ``data``; fails if it loads."""
    with pytest.raises(ProfileError) as exc:
        parse(yaml.safe_dump(data), "broken.yaml")
    return str(exc.value)


# --- the bundled setup ------------------------------------------------------------------------


def test_bundled_setup_loads_by_name_and_by_path() -> None:
    by_name = load(DEMO)
    by_path = load(DEMO_FILE)
    assert by_name.setup == by_path.setup
    assert by_name.setup.name == DEMO
    assert by_name.setup.version >= 1
    assert by_name.setup.laser.wavelength_nm == 1064
    assert Path(by_name.source) == DEMO_FILE
    assert DEMO in bundled_names()


def test_digest_covers_the_setup_and_its_table_bytes() -> None:
    loaded = load(DEMO)
    setup_sha, table_sha = sha(DEMO_FILE.read_bytes()), sha(TABLE_FILE.read_bytes())
    assert loaded.setup_digest == setup_sha
    assert loaded.table_digest == table_sha
    assert loaded.table_name == "nd-yag-1064"
    # As documented: SHA-256 of "<setup sha256 hex>\n<table sha256 hex>\n".
    expected = sha(f"{setup_sha}\n{table_sha}\n".encode("ascii"))
    assert loaded.digest == expected == combined_digest(setup_sha, table_sha)


def test_one_changed_byte_in_a_comment_is_a_new_digest_with_the_same_content() -> None:
    raw = bytearray(DEMO_FILE.read_bytes())
    assert raw.startswith(b"# LaserGuard")
    raw[2] ^= 0x20  # "L" -> "l" in the first comment
    original, changed = parse(DEMO_FILE.read_bytes()), parse(bytes(raw))
    assert changed.setup == original.setup
    assert changed.digest != original.digest
    assert changed.digest == combined_digest(sha(bytes(raw)), sha(TABLE_FILE.read_bytes()))


def test_text_and_bytes_give_the_same_digest() -> None:
    text = DEMO_FILE.read_text(encoding="utf-8")
    assert parse(text).digest == parse(text.encode("utf-8")).digest


def test_an_unchanged_round_trip_loads(data: Data) -> None:
    # Guards every refusal below: only the mutation can be what the loader refuses.
    assert parse(yaml.safe_dump(data)).setup == load(DEMO).setup


def test_every_settings_row_cites_a_source() -> None:
    rows = load(DEMO).setup.limits.settings
    assert all(row.source.strip() for row in rows)


# --- broken setups: the message names the field ----------------------------------------------


def _set(path: str, value: Any) -> Callable[[Data], None]:
    """A mutation that sets ``a.b.0.c`` to ``value``."""

    def mutate(d: Data) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _both(first: Callable[[Data], None], second: Callable[[Data], None]) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        first(d)
        second(d)

    return mutate


def _drop(path: str) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def _inline(d: Data) -> None:
    """Replace the table reference with the same rows inline."""
    del d["limits"]["table"]
    d["limits"]["settings"] = yaml.safe_load(TABLE_FILE.read_bytes())["rows"]


def _remove_skin_types(*types: str) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        _inline(d)
        rows = d["limits"]["settings"]
        for row in rows:
            row["skin_types"] = [t for t in row["skin_types"] if t not in types]
        d["limits"]["settings"] = [row for row in rows if row["skin_types"]]

    return mutate


def _status_without(group: str) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        status = d["laser"]["protocol"]["status"]
        status["reply"] = re.sub(rf"\(\?P<{group}>([^)]*)\)", r"(\1)", status["reply"])
        assert f"<{group}>" not in status["reply"]

    return mutate


BROKEN: list[tuple[str, Callable[[Data], None], list[str]]] = [
    (
        "negative sensor poll period",
        _set("sensor.poll_period_ms", -5),
        ["sensor.poll_period_ms", "greater than 0"],
    ),
    ("unknown top-level key", _set("colour", "red"), ["colour", "Extra inputs"]),
    (
        "unknown register field",
        _set("sensor.registers.skin_temp_c.offset_c", 0.5),
        ["sensor.registers.skin_temp_c.offset_c"],
    ),
    (
        "unknown transport field",
        _set("cooler.transport.hostname", "chiller.local"),
        ["cooler.transport", "hostname"],
    ),
    (
        "fluence min above max",
        _both(_inline, _set("limits.settings.0.fluence_j_cm2", {"min": 300, "max": 220})),
        ["limits.settings.0.fluence_j_cm2", "min 300", "max 220"],
    ),
    (
        "heartbeat timeout under twice the period",
        _both(_set("laser.heartbeat_period_ms", 50), _set("laser.heartbeat_timeout_ms", 90)),
        ["laser", "heartbeat_timeout_ms"],
    ),
    (
        "relay watchdog under twice the refresh",
        _both(
            _set("interlock_output.refresh_period_ms", 50), _set("interlock_output.watchdog_ms", 60)
        ),
        ["interlock_output", "watchdog_ms"],
    ),
    (
        "skin types V and VI not covered",
        _remove_skin_types("V", "VI"),
        ["limits", "skin types", "'V'", "'VI'"],
    ),
    (
        "plate trip band inside the warn band",
        _set("limits.cooler_plate_trip_c", {"low": -15.0, "high": 10.0}),
        ["limits", "cooler_plate_trip_c must contain cooler_plate_temp_c"],
    ),
    (
        "reply pattern that does not compile",
        _set("laser.protocol.arm.reply", "OK (READY"),
        ["laser.protocol.arm", "does not compile"],
    ),
    (
        "status reply without a pulses group",
        _status_without("pulses"),
        ["laser.protocol", "status reply lacks groups", "pulses"],
    ),
    (
        "no setter for the repetition rate",
        _drop("laser.protocol.set.rep_rate_hz"),
        ["laser.protocol", "no setter", "rep_rate_hz"],
    ),
    (
        "sample counter not a register",
        _set("sensor.sample_counter", "frame_count"),
        ["sensor", "sample_counter", "frame_count"],
    ),
    (
        "two registers on one address",
        _set("cooler.registers.fault_code.address", 0),
        ["cooler", "share an address"],
    ),
    (
        "skin temperature register missing",
        _drop("sensor.registers.skin_temp_c"),
        ["sensor.registers needs skin_temp_c"],
    ),
    ("stale_ms without the laser", _drop("limits.stale_ms.laser"), ["limits", "stale_ms"]),
    ("unknown stale_ms device", _set("limits.stale_ms.pump", 100), ["limits.stale_ms.pump"]),
    ("unknown spec version", _set("spec", "2"), ["spec"]),
    ("name with capitals", _set("name", "Demo"), ["name"]),
    ("version zero", _set("version", 0), ["version"]),
    ("Modbus port above 65535", _set("sensor.transport.port", 70000), ["sensor.transport"]),
    (
        "unknown interlock output kind",
        _set("interlock_output.kind", "gpio"),
        ["interlock_output", "gpio"],
    ),
    (
        "unknown skin type",
        _both(_inline, _set("limits.settings.0.skin_types", ["VII"])),
        ["limits.settings.0"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in BROKEN], ids=[i for i, _, _ in BROKEN]
)
def test_a_broken_setup_is_refused_naming_the_field(
    data: Data, mutate: Callable[[Data], None], expected: list[str]
) -> None:
    mutate(data)
    message = refused(data)
    assert message.startswith("broken.yaml: invalid setup:")
    for part in expected:
        assert part in message


def test_not_yaml_is_refused() -> None:
    with pytest.raises(ProfileError, match=r"^notes\.txt: not valid YAML"):
        parse("laser: [unclosed\n  model: x\n", "notes.txt")


@pytest.mark.parametrize("text", ["- laser\n- cooler\n", "just a sentence\n", ""])
def test_a_setup_is_a_mapping_at_the_top_level(text: str) -> None:
    with pytest.raises(ProfileError, match="a setup is a mapping at the top level"):
        parse(text, "list.yaml")


def test_an_unknown_bundled_name_lists_the_bundled_names() -> None:
    with pytest.raises(ProfileError) as exc:
        load("demo-ndyag-532")
    assert "'demo-ndyag-532'" in str(exc.value)
    for name in bundled_names():
        assert name in str(exc.value)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "clinic-b.yaml"
    with pytest.raises(ProfileError, match=r"clinic-b\.yaml"):
        load(missing)


def test_a_missing_file_also_lists_the_bundled_names(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as exc:
        load(tmp_path / "demo-ndyag-1046.yaml")
    assert DEMO in str(exc.value)


def test_a_file_that_is_not_a_setup_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clinic-b.yaml"
    path.write_text("name: clinic-b\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"clinic-b\.yaml: invalid setup:"):
        load(path)


# --- missing load-time checks (the rule: validate at load, never at use) ----------------------


def test_a_sensor_polled_slower_than_the_required_reaction_is_refused(data: Data) -> None:
    data["limits"]["required_reaction_ms"] = 50
    data["sensor"]["poll_period_ms"] = 500  # the poll period alone is ten times too slow
    assert "required_reaction_ms" in refused(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [("reply", "OK F=[0-9.]+"), ("send", "SET F {fluence:.1f}")],
    ids=["reply-without-value-group", "send-with-unknown-placeholder"],
)
def test_a_setter_that_cannot_work_is_refused(data: Data, field: str, value: str) -> None:
    data["laser"]["protocol"]["set"]["fluence_j_cm2"][field] = value
    assert "laser.protocol" in refused(data)


# --- with_endpoints ---------------------------------------------------------------------------

ENDPOINTS: dict[str, Any] = {
    "laser": "/dev/ttyS7",
    "cooler": {"host": "10.0.0.21", "port": 1502},
    "sensor": {"host": "10.0.0.22", "port": 1503},
    "interlock": {"host": "10.0.0.23", "port": 1504},
}


def test_with_endpoints_moves_the_addresses() -> None:
    moved = with_endpoints(load(DEMO).setup, ENDPOINTS)
    assert moved.laser.transport.port == "/dev/ttyS7"
    for key, transport in [
        ("cooler", moved.cooler.transport),
        ("sensor", moved.sensor.transport),
        ("interlock", moved.interlock_output.transport),  # type: ignore[union-attr]
    ]:
        assert isinstance(transport, ModbusTcpTransport)
        assert (transport.host, transport.port) == (ENDPOINTS[key]["host"], ENDPOINTS[key]["port"])


def test_with_endpoints_changes_nothing_but_addresses() -> None:
    original = load(DEMO).setup
    moved = with_endpoints(original, ENDPOINTS)
    assert moved.limits == original.limits
    assert moved.loop == original.loop
    assert moved.laser.protocol == original.laser.protocol
    assert moved.cooler.registers == original.cooler.registers
    assert moved.sensor.registers == original.sensor.registers
    assert moved.laser.transport.timeout_ms == original.laser.transport.timeout_ms
    assert moved.sensor.transport.timeout_ms == original.sensor.transport.timeout_ms
    assert moved.sensor.transport.device_id == original.sensor.transport.device_id
    # The loaded setup itself is untouched.
    assert original == load(DEMO).setup


def test_with_endpoints_leaves_devices_it_is_not_given() -> None:
    original = load(DEMO).setup
    moved = with_endpoints(original, {"sensor": ENDPOINTS["sensor"]})
    assert moved.laser == original.laser
    assert moved.cooler == original.cooler
    assert moved.interlock_output == original.interlock_output


@pytest.mark.parametrize(
    "endpoint",
    [{"host": "127.0.0.1", "port": 70000}, {"hots": "10.0.0.9", "port": 1502}],
    ids=["port-out-of-range", "misspelt-key"],
)
def test_with_endpoints_refuses_an_invalid_address(endpoint: dict[str, Any]) -> None:
    with pytest.raises((ProfileError, ValueError)):
        with_endpoints(load(DEMO).setup, {"cooler": endpoint})


def test_setup_is_frozen() -> None:
    setup: Setup = load(DEMO).setup
    with pytest.raises(ValueError, match="frozen"):
        setup.limits.required_reaction_ms = 500  # type: ignore[misc]
