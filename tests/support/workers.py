"""What the test session needs to run in parallel (pytest-xdist) and to start its child
processes quickly.

* ``worker_id()``: ``gw0``, ``gw1``… under xdist, ``main`` without it. Names that live outside
  a worker's own temporary directory (PostgreSQL template databases on a shared server,
  TRADEASSIST_HOME) carry it, so two workers never share one.
* ``share_bytecode_with_children()``: the suite starts hundreds of Python processes (the
  ``tradeassist`` command, Jupyter kernels, nbval, Voilà). Where the environment says
  ``PYTHONDONTWRITEBYTECODE``, each of them would compile every ``tradeassist`` module from
  source again; instead the children (and the xdist workers) write and reuse their bytecode
  under one cache directory outside the work tree (``PYTHONPYCACHEPREFIX``). Python checks
  each cached file against its source's mtime and size, so an edited module is recompiled.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# set it to choose the cache directory; "off" to leave the environment alone
PYCACHE_ENV = "TRADEASSIST_TEST_PYCACHE"


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def share_bytecode_with_children() -> None:
    choice = os.environ.get(PYCACHE_ENV, "")
    if choice == "off" or not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    uid = os.getuid() if hasattr(os, "getuid") else 0
    prefix = Path(choice) if choice else Path(tempfile.gettempdir()) / f"tradeassist-test-pycache-{uid}"
    prefix.mkdir(parents=True, exist_ok=True)
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(prefix))
