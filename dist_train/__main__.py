"""``python -m dist_train`` (what torchrun's ``-m`` and ``mpiexec python -m`` run)."""

import sys

from dist_train.cli import main

sys.exit(main())
