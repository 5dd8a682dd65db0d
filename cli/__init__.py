"""The ``kktmon`` command-line tree: composes the subcommands every layer offers."""
