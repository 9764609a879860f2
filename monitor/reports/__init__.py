"""Reports a clinic files: the session report (HTML), the clinic summary over a period (text,
CSV, JSON), and the session plot (SVG) they share with ``laserguard sessions plot``."""
