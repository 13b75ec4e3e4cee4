"""``python -m callcenter`` is the same as the ``callcenter`` command."""

from callcenter.cli import main

raise SystemExit(main())
