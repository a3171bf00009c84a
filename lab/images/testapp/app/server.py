#!/usr/bin/env python3
"""Run the test app's HTTP server (the image's CMD)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testapp.web import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
