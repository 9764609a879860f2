"""`keys` subcommands (the anchor key and checkpoints of a session log's head), and the
anchor a bridge writes with.

- ``keys init``: make the bridge's Ed25519 key (mode 0600) once, print the public key for
  the setup profile (``anchor: {public_key: ...}``), and checkpoint the log's current head.
- ``keys anchor``: checkpoint a log's current head again, after its chain verified; for a
  log whose checkpoint file was lost (a start refuses such a log until then).

Exit codes (``exit_status``): 0 done; 1 refused (the log fails verification, or is behind
its checkpoints, or a checkpoint is forged); 2 bad input (no key, a key that is not the
setup's, a file that is unreadable).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from device_profiles.schema import Setup
from monitor.cli.common import DEFAULT_SETUP, add_db_arg, load_setup
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.record.anchor import (
    HeadAnchor,
    LogBehindCheckpoint,
    Verdict,
    anchor_for,
    checkpoint_path,
    compare,
    default_key_path,
    head_info,
)
from monitor.record.checkpoints import Checkpoint, format_public_key, make_private_key
from monitor.record.sqlite_store import SessionLog

__all__ = ["KEY_ENV_VAR", "add_anchor_key_arg", "add_keys_parser", "bridge_anchor", "key_path"]

KEY_ENV_VAR = "LASERGUARD_ANCHOR_KEY"


def add_anchor_key_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--anchor-key",
        default=os.environ.get(KEY_ENV_VAR),
        metavar="FILE",
        help=f"the bridge's private anchor key (default: ${KEY_ENV_VAR}, else "
        "anchor-ed25519.key in the session log's folder)",
    )


def key_path(args: argparse.Namespace, db: Path) -> Path:
    return Path(args.anchor_key) if args.anchor_key else default_key_path(db)


def bridge_anchor(setup: Setup, db: Path, key_file: Path) -> HeadAnchor | None:
    """The anchor a bridge writes ``db`` with: the setup's key, or none if it names none.

    A setup without a key over a log that has checkpoints is refused: leaving the key out of
    the profile must not be a way around the check."""
    if setup.anchor is None:
        if checkpoint_path(db).exists():
            raise BadInput(
                f"{db} has signed checkpoints ({checkpoint_path(db).name}) but setup"
                f" {setup.name} names no anchor key: use the setup whose key signed them"
            )
        return None
    return anchor_for(db, setup.anchor.public_key, key_file)


def add_keys_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser(
        "keys",
        help="the anchor key that signs checkpoints of the session log's head",
        description="Make the bridge's anchor key; checkpoint a session log's head.",
    )
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    p_init = sub.add_parser("init", help="make the anchor key (once) and print its public key")
    add_db_arg(p_init)
    add_anchor_key_arg(p_init)
    p_init.set_defaults(func=cmd_init)
    p_anchor = sub.add_parser("anchor", help="checkpoint the log's head after it verifies")
    add_db_arg(p_anchor)
    add_anchor_key_arg(p_anchor)
    p_anchor.add_argument("--setup", default=DEFAULT_SETUP, help="setup naming the anchor key")
    p_anchor.set_defaults(func=cmd_anchor)


def _checkpoint_head(db: Path, anchor_cp: HeadAnchor, why: str) -> Checkpoint | None:
    """Write a checkpoint of the verified head of ``db`` (None for an empty or missing log)."""
    if not db.is_file():
        return None
    with SessionLog(db, read_only=True) as log:
        result = log.verify()
        if not result.ok:
            raise BadInput(f"{db} fails verification ({result.reason}): not anchored")
        with log.store.reading() as r:
            head = head_info(r)
            check = compare(r, anchor_cp.file.read(), str(db))
    if check.verdict not in (Verdict.ANCHORED, Verdict.NOT_ANCHORED):
        raise LogBehindCheckpoint(check)  # main: refused, exit 1
    if head is None:
        return None
    entries = anchor_cp.file.read()
    cp = Checkpoint(0, head.chain, head.seq, head.hash, time.time(), why)
    return anchor_cp.file.append(cp, entries)[-1]


def cmd_init(args: argparse.Namespace) -> int:
    db = Path(args.db)
    key_file = key_path(args, db)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    public = format_public_key(make_private_key(key_file))
    print(f"anchor key written to {key_file} (mode 600; keep it off backups you hand out)")
    print("add to the setup profile:")
    print("anchor:")
    print(f"  public_key: {public}")
    anchor = anchor_for(db, public, key_file)
    cp = _checkpoint_head(db, anchor, "keys init")
    if cp is not None:
        print(f"checkpointed {db} at head seq {cp.seq} in {anchor.file.path}")
    return int(ExitStatus.OK)


def cmd_anchor(args: argparse.Namespace) -> int:
    db = Path(args.db)
    loaded, _ = load_setup(args.setup)
    if loaded.setup.anchor is None:
        raise BadInput(f"setup {loaded.setup.name} names no anchor key (anchor: public_key)")
    if not db.is_file():
        raise BadInput(f"no session log at {db}")
    anchor = anchor_for(db, loaded.setup.anchor.public_key, key_path(args, db))
    cp = _checkpoint_head(db, anchor, "keys anchor")
    if cp is None:
        print(f"{db} is empty: nothing to anchor")
    else:
        print(f"checkpointed {db} at head seq {cp.seq} in {anchor.file.path}")
    return int(ExitStatus.OK)
