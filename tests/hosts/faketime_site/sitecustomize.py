"""time.sleep on select() for processes under libfaketime with FAKETIME_DONT_FAKE_MONOTONIC=1.

Python 3.11 sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME); libfaketime rewrites
that deadline as if the monotonic clock were faked too and the call fails with EINVAL
(libfaketime issue 426). select() takes a relative timeout, which libfaketime leaves alone.
Only loaded where the multi-host tests put this folder on PYTHONPATH.
"""

from __future__ import annotations

import os
import select
import time
from typing import SupportsIndex

_monotonic = time.monotonic


def _sleep(seconds: float | SupportsIndex) -> None:
    """time.sleep's contract: at least `seconds` of monotonic time, ValueError when negative."""
    length = float(seconds)
    if length < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = _monotonic() + length
    while (remaining := deadline - _monotonic()) > 0:
        select.select([], [], [], remaining)


if os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1" and "faketime" in os.environ.get(
    "LD_PRELOAD", ""
):
    time.sleep = _sleep
