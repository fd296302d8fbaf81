"""``python -m analysis <experiment> ...`` is ``python -m analysis.report <experiment> ...``."""

import sys

from analysis.report import main

if __name__ == "__main__":
    sys.exit(main())
