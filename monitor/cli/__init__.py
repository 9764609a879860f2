"""The ``laserguard`` command, its subcommands and terminal views."""
