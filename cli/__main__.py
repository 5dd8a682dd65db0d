"""``python -m kktmon.cli`` runs the ``kktmon`` command line."""

import sys

from kktmon.cli.main import main

sys.exit(main())
