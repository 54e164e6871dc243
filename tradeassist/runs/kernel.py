"""Executing a task notebook with papermill and a real kernel, and saying why it failed.

The kernel is ``tradeassist`` when registered, else ``python3`` of this interpreter. A
parameter the notebook's ``parameters`` cell does not declare is refused before anything runs
(papermill would only warn). The kernel gets the database password (``PGPASSWORD``) and every
other secret through its environment only; its history is off
(``--HistoryManager.enabled=False`` and a throwaway ``IPYTHONDIR``). nbclient's own log keeps
INFO and above, with the run's secret values masked.

papermill, nbclient and jupyter_client are imported when a notebook runs, not when this
module is: the CLI that merely lists runs does not pay for them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from ..core.errors import ValidationError
from ..core.redaction import redact

KERNEL_NAME = "tradeassist"
FALLBACK_KERNEL = "python3"
ENGINE_NAME = "tradeassist"
KERNEL_LOG = logging.getLogger("tradeassist.runs.kernel")


@lru_cache(maxsize=1)
def kernel_name() -> str:
    """The ``tradeassist`` kernel (``make demo``/``make test`` register it), else ``python3``,
    which jupyter_client starts with this very interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # heavy: on first use

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        return KERNEL_NAME
    except NoSuchKernel:
        return FALLBACK_KERNEL


def declared_parameters(path: Path) -> dict[str, Any]:
    import papermill  # heavy: on first use

    return dict(papermill.inspect_notebook(str(path)))


def check_parameters(path: Path, parameters: Mapping[str, Any]) -> None:
    """Refuse parameters the notebook's ``parameters`` cell does not declare."""
    declared = declared_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValidationError(
            f"{path.name}: unknown parameter(s) {', '.join(unknown)} "
            f"(its parameters cell declares: {', '.join(sorted(declared)) or 'nothing'})"
        )


def _register_engine() -> None:
    """A papermill engine that starts the kernel with our environment and log file."""
    from papermill.clientwrap import PapermillNotebookClient  # heavy: on first use
    from papermill.engines import NBClientEngine, papermill_engines

    class KernelEnvEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            kernel_env: Mapping[str, str] | None = None,
            kernel_log: Any = None,
            client_log: logging.Logger | None = None,
            **kwargs: Any,
        ) -> Any:
            kwargs.pop("input_path", None)
            client = PapermillNotebookClient(
                nb_man,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=client_log or KERNEL_LOG,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                **kwargs,
            )
            launch: dict[str, Any] = {}
            if kernel_env is not None:
                launch["env"] = dict(kernel_env)
            if kernel_log is not None:
                launch["stdout"] = launch["stderr"] = kernel_log
            return client.execute(**launch)

    papermill_engines.register(ENGINE_NAME, KernelEnvEngine)


class _KernelLogFilter(logging.Filter):
    """nbclient logs every kernel message (outputs, tracebacks) at DEBUG: those are dropped,
    and what is left has the run's secret values masked."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def kernel_environment(db_url: str, ipython_dir: str) -> dict[str, str]:
    """The runner's environment, plus the database password and a history-less IPython."""
    env = dict(os.environ)
    password = make_url(db_url).password
    if password:
        env["PGPASSWORD"] = str(password)
    env["IPYTHONDIR"] = ipython_dir
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    # The kernel imports this very package, wherever it is.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def execute_notebook(
    input_path: Path,
    output_path: Path,
    parameters: Mapping[str, Any],
    *,
    timeout: int | None,
    env: Mapping[str, str],
    kernel_log: Any = None,
    secrets: Iterable[str] = (),
) -> Any:
    """Run one notebook with papermill; raises papermill's and nbclient's errors as they come."""
    import papermill  # heavy: on first use

    check_parameters(input_path, parameters)
    _register_engine()
    log_filter = _KernelLogFilter(secrets)
    KERNEL_LOG.addFilter(log_filter)
    try:
        return papermill.execute_notebook(
            str(input_path),
            str(output_path),
            parameters=dict(parameters),
            engine_name=ENGINE_NAME,
            kernel_name=kernel_name(),
            progress_bar=False,
            log_output=False,
            start_timeout=60,
            execution_timeout=timeout,
            cwd=str(output_path.parent),
            extra_arguments=["--HistoryManager.enabled=False"],
            kernel_env=env,
            kernel_log=kernel_log,
            client_log=KERNEL_LOG,
        )
    finally:
        KERNEL_LOG.removeFilter(log_filter)


def describe_failure(exc: Exception, limit: int, kernel_log: Any) -> str:
    """Why the notebook did not run to the end: the cell's error, the timeout with the cell's
    preview, or the kernel's death with the last lines of its log."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError  # heavy: on first use
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"In [{exc.exec_count}] raised {exc.ename}: {exc.evalue}"
    if isinstance(exc, CellTimeoutError):
        lines = str(exc).splitlines()
        start = next((i + 1 for i, line in enumerate(lines) if "preview of the cell" in line), len(lines))
        cell = "; ".join(ln.strip() for ln in lines[start:] if ln.strip() and not ln.startswith("---"))
        return f"timeout: a cell ran longer than {limit} s and was stopped: {cell[:300]}"
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, DeadKernelError):
        kernel_log.seek(0)
        tail = kernel_log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        return f"the kernel died: {detail}" + (f" ({' | '.join(tail)})" if tail else "")
    return f"{type(exc).__name__}: {detail}"
