#!/usr/bin/env python3
"""Run the AMI simulator: ``python scripts/ami_simulator.py --speed 10 --loop``.

A thin wrapper around ``callcenter.ami.simulator.main`` (the same as ``callcenter simulate``).
"""

import sys
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.ami.simulator import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
