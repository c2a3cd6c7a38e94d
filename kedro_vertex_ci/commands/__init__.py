"""CLI commands, one module per concern. Each module imports only click at top level (fast ``--help``)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
