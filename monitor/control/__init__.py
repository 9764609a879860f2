"""The control channel between the bridge process and the console service.

The bridge process keeps the session and its real-time threads; it serves a Unix-domain
socket (``server.ControlServer``) that carries typed commands in and typed snapshots and
events out (``protocol``). The console service is another process and reaches the session
only through ``client.ControlClient``. Nothing here is on the halt path: the channel's
threads never hold a lock the halt path takes, a slow or hostile client is dropped, and
every command goes through the session's own methods, which enforce every limit.

Modules: ``protocol`` (the message set, version 1, one JSON object per line, 64 KiB at
most), ``alarms`` (reset one condition at a time), ``feed`` (the session's events, teed off
its recorder without blocking), ``host`` (the session's owner in the bridge process, and
the console watch: a console lost during a session halts), ``server`` (the socket),
``client`` (the library the service uses).

This package imports nothing of the service, the web framework or the CLI (import
contract ``control-below-service`` in ``pyproject.toml``); ``client`` and ``protocol``
import nothing of the session either, so the service can use them without the core's
threads.
"""
