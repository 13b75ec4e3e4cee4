#!/usr/bin/env python
"""Download a Vosk Russian model into models/ and check it (logic: callcenter.speech.models_fetch).

    python scripts/fetch_models.py            # vosk-model-small-ru-0.22 (about 45 MB), the default
    python scripts/fetch_models.py big        # vosk-model-ru-0.42 (about 1.8 GB)
    python scripts/fetch_models.py small --sha256 HEX --dest /srv/models

An interrupted download resumes on the next run. Standard library only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runs from a fresh checkout too, before the package is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.speech.models_fetch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
