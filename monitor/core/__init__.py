"""The safety core: settings gate, checks, interlock loop, session state machine, risk.

Imports nothing of the CLI, the simulator, the benchmarks, ``rich`` or any web framework, and
nothing of ``monitor.record``: the session writes through the ``Recorder`` it is given.
"""
