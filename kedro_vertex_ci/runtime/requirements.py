"""Print the path of the step runtime's requirements file (the slim install of a project image).

``pip install --no-deps kedro-vertex-ci==X && pip install -r "$(python -m kedro_vertex_ci.runtime.requirements)"``
installs what ``kedro-vertex-ci step`` imports and not the ~230 MB of cloud clients the desk commands use.
Runs with nothing but the standard library installed.
"""

from __future__ import annotations

from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")


def requirements() -> list[str]:
    """The requirement lines (comments and blanks dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


if __name__ == "__main__":
    print(REQUIREMENTS)
