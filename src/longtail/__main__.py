"""``python -m longtail``: the same command line as the ``longtail`` console script."""

from longtail.cli import main

raise SystemExit(main())
