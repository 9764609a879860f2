"""What every data file of LaserGuard shares: finding it by name, and saying what is wrong."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


def find(name_or_path: str | Path, folder: Path) -> Path | None:
    """A YAML path as given, or ``folder/NAME.yaml`` for a bundled name; None if neither."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = folder / f"{name_or_path}.yaml"
    return candidate if candidate.exists() else None


def format_errors(err: ValidationError) -> str:
    """One line per invalid field, named by its path (``sensor.poll_period_ms: ...``)."""
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)
