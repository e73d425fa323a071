"""``python -m webapp.demo``: see ``webapp.demo.runner``."""

import sys

from .runner import main

sys.exit(main())
