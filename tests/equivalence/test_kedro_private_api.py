"""Each Kedro internal this package relies on (all in ``kedro_vertex_ci/kedro_private.py``), pinned.

A Kedro release that renames or changes one fails here, by name, instead of breaking steps at run time.
The public replacements (compile's hook manager, credentials, MemoryDataset checks) are pinned to the
internals they replaced, so a drift between them shows too.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.framework.hooks import hook_impl

from kedro_vertex_ci import kedro_private
from kedro_vertex_ci.testing.projectgen import make_project

INTERNAL = "Kedro changed an internal kedro_vertex_ci.kedro_private relies on: "


class _Recorder:
    def __init__(self) -> None:
        self.nodes: list[str] = []

    @hook_impl
    def after_node_run(self, node):
        self.nodes.append(node.name)


def test_register_session_hooks_reaches_the_sessions_run(tmp_path: Path, monkeypatch) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = make_project(tmp_path, "private_hooks", "chain", 2)
    monkeypatch.chdir(project)
    bootstrap_project(project)
    recorder = _Recorder()
    with KedroSession.create(project_path=project) as session:
        assert hasattr(session, "_hook_manager"), INTERNAL + "KedroSession._hook_manager is gone"
        kedro_private.register_session_hooks(session, [recorder])
        session.run()
    assert recorder.nodes == ["node_0", "node_1"], (
        INTERNAL + "hooks on KedroSession._hook_manager were not called"
    )


def test_block_plugin_hooks_wraps_the_sessions_hook_manager_factory(monkeypatch) -> None:
    from kedro.framework.session import session as session_module

    original = getattr(session_module, "_create_hook_manager", None)
    assert callable(original), INTERNAL + "kedro.framework.session.session._create_hook_manager is gone"
    monkeypatch.setattr(session_module, "_create_hook_manager", original)  # restored after the test
    kedro_private.block_plugin_hooks(["some-plugin"])
    manager = session_module._create_hook_manager()
    assert manager.is_blocked("some-plugin"), (
        INTERNAL + "the hook manager factory no longer builds pluggy managers"
    )
    assert not original().is_blocked("some-plugin")


@pytest.mark.parametrize(
    "data",
    [{"a": [1, 2]}, [1, [2]], pd.DataFrame({"x": [1, 2]}), np.arange(3), "text", 5],
    ids=["dict", "list", "pandas", "numpy", "str", "int"],
)
def test_copy_like_memory_dataset_copies_as_a_memory_dataset_does(data) -> None:
    from kedro.io import MemoryDataset

    public = MemoryDataset(data=copy.deepcopy(data)).load()  # Kedro's public copy behaviour
    ours = kedro_private.copy_like_memory_dataset(data)
    assert type(ours) is type(public)
    if isinstance(data, (pd.DataFrame, np.ndarray)):
        assert (ours == data).all().all() if isinstance(data, pd.DataFrame) else (ours == data).all()
    else:
        assert ours == data
    if isinstance(data, (dict, list, pd.DataFrame, np.ndarray)):
        assert ours is not data  # a consumer mutating its input cannot change what the next one sees


def test_compiles_public_hook_manager_has_kedros_hook_specs() -> None:
    from kedro.framework.hooks.manager import _create_hook_manager

    from kedro_vertex_ci.kedro_io import _compile_hook_manager

    ours = {name for name in dir(_compile_hook_manager().hook) if not name.startswith("_")}
    kedros = {name for name in dir(_create_hook_manager().hook) if not name.startswith("_")}
    assert ours == kedros


def test_compile_reads_credentials_as_kedros_context_does(tmp_path: Path) -> None:
    from kedro_vertex_ci.kedro_io import KedroProject, _credentials, bootstrap

    project = make_project(tmp_path, "private_creds", "chain", 1)
    (project / "conf" / "local" / "credentials.yml").write_text("db:\n  user: me\n")
    kedro_project = KedroProject(bootstrap(project), None)
    loader = kedro_project._context.config_loader
    assert _credentials(loader) == kedro_project._context._get_config_credentials() == {"db": {"user": "me"}}
    (project / "conf" / "local" / "credentials.yml").unlink()
    assert _credentials(loader) == kedro_project._context._get_config_credentials() == {}
