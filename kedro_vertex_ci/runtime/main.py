"""``kedro-vertex-ci step …``: the process each compiled step runs inside the project's image.

Exit codes: 0 done; 1 a node failed (its traceback is shown), an intermediate input is missing or fails
its checksum, or a dynamic config provider failed;
2 the step's arguments do not fit the project (one-line message); 124 the ``--timeout`` passed.

Nothing here may wait for a human: telemetry is switched off and stdin is replaced by /dev/null before
Kedro is imported. Imports stay lean (no kfp, no google.cloud; gcsfs only for a ``gs://`` root) so a step
starts as fast as a bare ``kedro run``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..argv import StepInvocation
    from .experiment import ExperimentJoin

TIMEOUT_EXIT = 124
HARD_EXIT_GRACE = 10.0  # seconds after --timeout before the watchdog stops a node stuck in native code
_PREFIX = "kedro-vertex-ci step: error:"
DEBUG_ENV = "KEDRO_VERTEX_CI_DEBUG"  # also print the traceback of errors raised before the nodes run


class StepTimeout(Exception):
    """Raised in the main thread when ``--timeout`` seconds have passed."""

    def __init__(self, seconds: int):
        super().__init__(f"step timed out after {seconds} s (--timeout {seconds})")


def _quiet_environment() -> None:
    # Kedro 1.x itself calls omegaconf's deprecated register_new_resolver: 15 lines of noise per step log.
    warnings.filterwarnings(
        "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
    )
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        if devnull != 0:  # fd 0 was closed and /dev/null took it: keep it, or a later file takes fd 0
            os.dup2(devnull, 0)
            os.close(devnull)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 — lives as long as the process
    except OSError:
        pass


def _say(message: str) -> None:
    print(f"{_PREFIX} {message}", file=sys.stderr, flush=True)


def _arm_timeout(seconds: int) -> None:
    """Raise :class:`StepTimeout` in the main thread after ``seconds``; hard-exit a little later if stuck."""

    def on_alarm(signum: int, frame: object) -> None:
        raise StepTimeout(seconds)

    def hard_exit() -> None:
        _say(f"step timed out after {seconds} s (--timeout {seconds}); stopped")
        os._exit(TIMEOUT_EXIT)

    if hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(seconds)
        grace = HARD_EXIT_GRACE
    else:
        grace = 0.0
    watchdog = threading.Timer(seconds + grace, hard_exit)
    watchdog.daemon = True
    watchdog.start()


def _find_in_chain(err: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def main(argv: list[str]) -> int:
    """Run one step; returns the process exit code."""
    _quiet_environment()
    from ..argv import parse_step_args, version_mismatch

    mismatch = version_mismatch(argv)
    if mismatch:
        _say(mismatch)
        return 2
    try:
        inv = parse_step_args(argv)
    except SystemExit as exit_:  # argparse: --help, or a missing required option (already printed)
        return int(exit_.code or 0)
    except Exception as err:  # noqa: BLE001 — argparse.ArgumentError or our ValueError: one line
        _say(str(err))
        return 2

    from .resolvers import register, step_environment

    os.environ.update(step_environment(inv.run_id, inv.job_name, inv.status, inv.root, inv.scheduled_time,
                                       inv.create_time))
    register()
    if inv.timeout:
        _arm_timeout(inv.timeout)
    if inv.host_aliases:
        from .hosts import HostsError, apply_host_aliases

        try:
            apply_host_aliases(inv.host_aliases, os.environ)
        except HostsError as err:
            _say(str(err))
            return 2

    joining = _join_experiment(inv)
    try:
        return _run(inv)
    finally:
        if joining is not None:
            joining.finish()


def _join_experiment(inv: StepInvocation) -> ExperimentJoin | None:
    """With run_config.experiment_name: a run a schedule started joins it, beside the nodes (never fatal)."""
    if not (inv.pipeline_job and inv.experiment):
        return None
    from .experiment import start_join

    return start_join(inv.pipeline_job, inv.experiment, inv.experiment_description, os.environ)


def _run(inv: StepInvocation) -> int:
    project = Path(inv.project or os.getcwd()).resolve()
    if inv.mlflow_start or (inv.mlflow_end and not inv.nodes):
        from ..mlflow_run import run_task

        return run_task(inv, project)
    extra_hooks = _mlflow_hooks(inv)
    if inv.executor_input and inv.artifacts:
        from .artifacts import RecordArtifacts

        extra_hooks = (*extra_hooks, RecordArtifacts(inv.executor_input, inv.artifacts, project))

    from ..dynamic_config import ProviderError
    from .session import InjectIntermediates, StepSetupError, run_step
    from .timing import NodeTimer

    injector = InjectIntermediates(inv)
    timer = NodeTimer()
    try:
        run_step(inv, project, injector, (*extra_hooks, timer))
    except StepSetupError as err:
        _say(str(err))
        return 2
    except ProviderError as err:  # a provider's own failure: one line naming its class
        _say(str(err))
        return 1
    except Exception as err:  # noqa: BLE001 — every failure becomes an exit code here, nowhere else
        return _report_failure(err, injector.started)
    finally:
        if inv.timeout and hasattr(signal, "SIGALRM"):
            signal.alarm(0)
    _record_durations(inv, timer.seconds())
    return 0


def _record_durations(inv: StepInvocation, seconds: dict[str, float]) -> None:
    """Best effort: the numbers only tune grouping ``auto``; failing to write them never fails the step."""
    from .timing import write_durations

    try:
        write_durations(inv.root, inv.run_id, inv.nodes, seconds)
    except OSError as err:
        print(f"kedro-vertex-ci step: warning: node durations not recorded ({err})", file=sys.stderr)


def _mlflow_hooks(inv: StepInvocation) -> tuple[object, ...]:
    """Point kedro-mlflow at the job's MLflow run: by the id a step receives, or found by tag on exit."""
    if inv.mlflow_run_id:
        from ..mlflow_run import RUN_ID_ENV

        os.environ[RUN_ID_ENV] = inv.mlflow_run_id
    if inv.mlflow_end:
        from ..mlflow_run import ResumeTaggedRun

        return (ResumeTaggedRun(inv.run_id, inv.status),)
    return ()


def _report_failure(err: Exception, started: bool) -> int:
    from .intermediate import DamagedIntermediateError, MissingIntermediateError

    timeout = _find_in_chain(err, StepTimeout)
    if timeout is not None:
        _say(str(timeout))
        return TIMEOUT_EXIT
    for kind in (MissingIntermediateError, DamagedIntermediateError):
        found = _find_in_chain(err, kind)
        if found is not None:  # a clear one-liner; the traceback would only show Kedro's internals
            _say(str(found))
            return 1
    if not started:  # bootstrap, settings, config, pipeline or node lookup: the project does not fit
        if os.environ.get(DEBUG_ENV):
            traceback.print_exception(err, file=sys.stderr)
        hint = "" if os.environ.get(DEBUG_ENV) else f" (set {DEBUG_ENV}=1 for the traceback)"
        _say(f"cannot start the step: {_one_line(err)}{hint}")
        return 2
    traceback.print_exception(err, file=sys.stderr)
    _say(f"node failed: {type(err).__name__}: {_one_line(err)}")
    return 1


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 500 else text[:497] + "..."
