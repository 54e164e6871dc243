"""Progress bars for commands that may take more than a couple of seconds.

A command opens ``progress(total, what, json=as_json)`` and calls the step function it gets
as the work advances (a service takes it as ``on_step``); the bar is drawn on stderr with
tqdm, so stdout stays what scripts read. It is drawn only when stderr is a terminal and the
command does not print JSON; ``TRADEASSIST_PROGRESS`` (1/0, true/false, yes/no) forces it on
or off for other output (a log file, a pipe). With ``--json`` there is never a bar. Otherwise
the step function does nothing and nothing is printed.

    with progress(len(targets), "downloading prices", json=as_json) as step:
        fetched = price_refresh.fetch_targets(targets, on_step=step)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Step = Callable[[int], None]


def _nothing(_count: int = 1) -> None:
    return None


def wanted(*, json: bool) -> bool:
    """Whether to draw a bar: never with JSON; ``TRADEASSIST_PROGRESS`` when set; else on a terminal."""
    if json:
        return False
    raw = os.environ.get("TRADEASSIST_PROGRESS")
    if raw is not None and raw.strip():
        from ..core.config import parse_bool

        return parse_bool("TRADEASSIST_PROGRESS", raw)
    return sys.stderr.isatty()


@contextmanager
def progress(total: int | None, what: str, *, json: bool = False, unit: str = "it") -> Iterator[Step]:
    """A step function advancing a bar of ``total`` steps labelled ``what`` (see the module)."""
    if not wanted(json=json):
        yield _nothing
        return
    from tqdm import tqdm  # lazy: only a command that draws a bar pays for it

    with tqdm(total=total, desc=what, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        yield bar.update


@contextmanager
def stages(names: list[str], *, json: bool = False) -> Iterator[Callable[..., None]]:
    """A bar over named stages (read, check, write...): call the function once per finished
    stage, optionally with the label of the one that starts (it defaults to the next name)."""
    with progress(len(names), names[0], json=json, unit="step") as step:
        done = [0]

        def next_stage(label: str | None = None) -> None:
            done[0] += 1
            step(1)
            bar = getattr(step, "__self__", None)
            if bar is not None and done[0] < len(names):
                bar.set_description(label or names[done[0]])

        yield next_stage
