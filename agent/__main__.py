"""``python -m kktmon.agent`` runs the agent's own commands (status, agent, check-config,
outbox); ``kktmon`` / ``python -m kktmon.cli`` is the whole tree."""

import sys

from kktmon.agent.cli import main

sys.exit(main())
