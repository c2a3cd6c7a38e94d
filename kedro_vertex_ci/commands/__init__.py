"""CLI commands, one module per concern. Each module imports only click at top level (fast ``--help``)."""

from __future__ import annotations

import click

from .cloud import CLOUD_COMMANDS
from .core import compile_command, init_command, pin_actions_command
from .local import run_local
from .plan import plan_command
from .rehearsal import action_rehearsal

COMMANDS: list[click.Command] = [init_command, pin_actions_command, compile_command, plan_command]
COMMANDS.append(run_local)
COMMANDS.extend(CLOUD_COMMANDS)
COMMANDS.append(action_rehearsal)
