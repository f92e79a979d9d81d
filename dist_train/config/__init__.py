"""Run configuration: nested dataclasses (``schema``) and the YAML / ``key=value`` loader (``load``).

``from dist_train.config import Config, load_config`` is the public way in.
"""

from dist_train.config.schema import *  # noqa: F401,F403
from dist_train.config.schema import __all__  # noqa: F401
