"""The ``kktmon`` tree imports the other layers only for a command that is not the agent's.

A store PC runs only the agent's commands (``status``, ``agent``, ``check-config``,
``outbox``); building their parser must not import the ticketing, simulators and demo
(``tests/agent/test_footprint.py`` checks a running agent). Every other command, ``--help``
and a mistyped command still see the whole tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kktmon.cli.main import command_of

#: Run in a fresh interpreter: ``kktmon ARGS...``, then the kktmon layers it imported.
_RUN_THEN_LAYERS = """
import contextlib, io, json, sys
from kktmon.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
layers = sorted({m.split(".")[1] for m in sys.modules if m.startswith("kktmon.")})
print(json.dumps({"code": code, "layers": layers}))
"""


def _kktmon(*args: str) -> tuple[int, set[str]]:
    """Exit status of ``kktmon ARGS`` and the kktmon layers it imported."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN_THEN_LAYERS, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    return report["code"], set(report["layers"])


CONFIG = """
site = "store-001"
[agent]
state_dir = "{state}"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[devices]]
vendor = "pirit"
url = "serial:///dev/ttyACM0"
"""


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["agent", "--config", "a.toml"], "agent"),
        (["-v", "status", "--vendor", "shtrih"], "status"),
        (["--verbose", "tickets", "--json"], "tickets"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_command_is_the_first_word_that_is_not_an_option(
    argv: list[str], command: str | None
) -> None:
    assert command_of(argv) == command


def test_an_agent_command_imports_no_other_layer(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG.format(state=tmp_path / "state"), encoding="utf-8")
    code, layers = _kktmon("-v", "check-config", "--config", str(config))
    assert code == 0
    assert layers <= {"cli", "agent", "drivers", "protocol"}


@pytest.mark.parametrize("args", [["--help"], ["simulate", "--help"], ["tickets", "--help"]])
def test_other_commands_and_help_see_the_whole_tree(args: list[str]) -> None:
    code, layers = _kktmon(*args)
    assert code == 0
    assert {"simulators", "demo", "ticketing"} <= layers


def test_help_lists_every_layers_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kktmon.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("status", "agent", "check-config", "outbox", "simulate", "demo", "tickets"):
        assert f"    {command} " in result.stdout
