"""``python -m callguard`` is the same as the ``callguard`` console script."""

from callguard.cli.main import main

raise SystemExit(main())
