"""Calibration for the biomedical engineer: the guided procedure, certificates, enforcement.

``procedure`` (``CalibrationRun``: preconditions, reference checks, the energy sweep, the
verdict) over a ``rig`` (the bridge and the energy meter); ``analysis`` (points, the line
fit, verdicts); ``certificate`` (a run's chained records read back); ``status`` (the
``CalibrationStatus`` a session arms under); ``report`` (HTML with the delivered-against-set
plot, JSON). See docs/calibration.md.
"""
