"""``python -m monitor.cli``: the ``laserguard`` command."""

import sys

from monitor.cli.main import main

sys.exit(main())
