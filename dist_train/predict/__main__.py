"""``python -m dist_train.predict``: the same as ``giantgcn-predict``."""

import sys

from dist_train.predict.cli import main

sys.exit(main())
