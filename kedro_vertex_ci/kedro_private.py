"""The only place that touches Kedro internals, one function per internal, each pinned by a test.

Kedro 1.7 offers no public way to do these; everything else in this package uses Kedro's public API.
``tests/equivalence/test_kedro_private_api.py`` checks each of them against the installed Kedro, so a
Kedro release that changes one fails there, loudly and by name, rather than somewhere in a step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def register_session_hooks(session: Any, hooks: Iterable[Any]) -> None:
    """Register ``hooks`` on one ``KedroSession`` only (``settings.HOOKS`` would apply to every session).

    Internal: ``KedroSession._hook_manager``, the pluggy manager the session's run calls.
    """
    manager = session._hook_manager
    for hook in hooks:
        manager.register(hook)


def block_plugin_hooks(entry_point_names: Iterable[str]) -> None:
    """Make every later ``KedroSession.create`` skip these ``kedro.hooks`` entry points before importing them.

    Internal: ``kedro.framework.session.session._create_hook_manager``, the factory ``KedroSession``
    calls for its hook manager; pluggy's public ``set_blocked`` does the rest.
    """
    from kedro.framework.session import session as session_module

    blocked = sorted(set(entry_point_names))
    if not blocked:
        return
    create: Callable[[], Any] = session_module._create_hook_manager

    def create_with_blocked() -> Any:
        manager = create()
        for name in blocked:
            manager.set_blocked(name)
        return manager

    session_module._create_hook_manager = create_with_blocked  # type: ignore[attr-defined]


def copy_like_memory_dataset(data: Any) -> Any:
    """Copy ``data`` the way a ``MemoryDataset`` with no ``copy_mode`` does (pandas: copy, numpy/Spark:
    assign, anything else: deepcopy), without storing it twice.

    Internal: ``kedro.io.memory_dataset._infer_copy_mode`` and ``_copy_with_mode``.
    """
    from kedro.io.memory_dataset import _copy_with_mode, _infer_copy_mode

    return _copy_with_mode(data, copy_mode=_infer_copy_mode(data))
