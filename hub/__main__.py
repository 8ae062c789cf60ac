"""``python -m hub`` is the ``callback-hub`` command."""

from hub.cli import main

raise SystemExit(main())
