"""``python -m partition`` is ``giantgcn-partition``."""

from partition.cli import main

raise SystemExit(main())
