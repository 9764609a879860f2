"""``laserguard users add|list|disable|enable``: the console's users, from the command line.

The first administrator is added here (``laserguard users add NAME --role admin``); the
console's administrators add the others. A password is read from a prompt (twice, when
stdin is a terminal) or as one line from stdin (a script), never from an argument: an
argument is seen by every user of the machine and kept in the shell's history.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from monitor.cli.common import add_db_arg
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.service.roles import Role
from monitor.service.users import UserError, UserStore, role_of, users_path

__all__ = ["add_users_parser"]


def _store(args: argparse.Namespace) -> UserStore:
    path = Path(args.users) if args.users else users_path(args.db)
    try:
        return UserStore(path)
    except UserError as e:
        raise BadInput(str(e)) from e


def _by() -> str:
    return f"command line ({os.environ.get('USER', 'unknown')})"


def read_password(stdin_is_tty: bool | None = None) -> str:
    """From a prompt (asked twice) on a terminal, else one line from stdin."""
    tty = sys.stdin.isatty() if stdin_is_tty is None else stdin_is_tty
    if tty:
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise BadInput("the two passwords differ: nothing changed")
        return first
    line = sys.stdin.readline()
    if not line.strip():
        raise BadInput("no password on stdin (one line): nothing changed")
    return line.rstrip("\r\n")


def cmd_add(args: argparse.Namespace) -> int:
    try:
        role = role_of(args.role)
    except UserError as e:
        raise BadInput(str(e)) from e
    store = _store(args)
    try:
        user = store.add(args.name, role, read_password(), by=_by())
    except UserError as e:
        raise BadInput(str(e)) from e
    print(f"added {user.username} ({user.role}) to {store.path}")
    return int(ExitStatus.OK)


def cmd_list(args: argparse.Namespace) -> int:
    users = _store(args).list()
    if args.json:
        print(json.dumps([u.as_dict() for u in users]))
        return int(ExitStatus.OK)
    if not users:
        print("no users: add the first administrator with `laserguard users add NAME --role admin`")
    for u in users:
        print(f"{u.username:24} {u.role.value:10} {'DISABLED' if u.disabled else 'enabled'}")
    return int(ExitStatus.OK)


def _switch(args: argparse.Namespace, disable: bool) -> int:
    store = _store(args)
    try:
        user = store.disable(args.name, by=_by()) if disable else store.enable(args.name, by=_by())
    except UserError as e:
        raise BadInput(str(e)) from e
    print(f"{user.username} is {'disabled' if user.disabled else 'enabled'}")
    return int(ExitStatus.OK)


def add_users_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = subparsers.add_parser(
        "users",
        help="the console's users: add, list, disable, enable",
        description="Manage who may sign in to the console (`laserguard serve`). Passwords "
        "come from a prompt or one line on stdin, never from an argument.",
    )
    sub = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        add_db_arg(p)
        p.add_argument(
            "--users", default=None, metavar="PATH", help="users file (default: beside --db)"
        )

    add = sub.add_parser("add", help="add a user (the password is asked for)")
    add.add_argument("name", help="user name: lower-case letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, help=f"one of {', '.join(r.value for r in Role)}")
    common(add)
    add.set_defaults(func=cmd_add)

    lst = sub.add_parser("list", help="list the users")
    lst.add_argument("--json", action="store_true", help="print JSON")
    common(lst)
    lst.set_defaults(func=cmd_list)

    for name, disable in (("disable", True), ("enable", False)):
        p = sub.add_parser(name, help=f"{name} a user")
        p.add_argument("name")
        common(p)
        p.set_defaults(func=lambda a, d=disable: _switch(a, d))
