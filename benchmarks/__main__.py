"""``python -m benchmarks``: the same as ``laserguard bench``."""

import sys

from benchmarks.run import main

if __name__ == "__main__":  # the simulator child re-imports this module under another name
    sys.exit(main())
