"""Console-script entry: dispatch ``step`` before importing click, so each Vertex step starts fast."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["step"]:
        from .runtime.main import main as step_main

        sys.exit(step_main(sys.argv[2:]))
    from .cli import main as cli_main

    cli_main()
