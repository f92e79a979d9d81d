"""``python -m dist_train.report RUN_DIR ...`` = ``giantgcn-plot``."""

import sys

from dist_train.report.cli import main

sys.exit(main())
