"""``python -m kktmon.agent`` runs the ``kktmon`` command line."""

import sys

from kktmon.agent.cli import main

sys.exit(main())
