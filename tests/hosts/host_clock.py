"""A host's wall clock, shifted and stepped with libfaketime; its monotonic clock stays true.

Every process of a faked host reads its offset from one timestamp file ("+30", "-30.5") on
every clock call (FAKETIME_NO_CACHE=1), so rewriting the file steps the clock of processes
already running, as NTP stepping the clock or `date -s` does. FAKETIME_DONT_FAKE_MONOTONIC=1
keeps CLOCK_MONOTONIC untouched (a real step does not move it either); the sitecustomize in
faketime_site/ then gives Python a time.sleep that works under it.
"""

from __future__ import annotations

import os
from pathlib import Path

SITE_FOLDER = Path(__file__).parent / "faketime_site"


class HostClock:
    """The offset of one host's wall clock from the true one, in seconds."""

    def __init__(self, folder: Path, library: Path, offset: float = 0.0) -> None:
        self.library = library
        self.file = folder / "faketime-offset"
        self.offset = 0.0
        self.set(offset)

    def set(self, offset: float) -> None:
        """Set the offset now, for every process of the host (written then renamed: atomic)."""
        partial = self.file.with_suffix(".partial")
        partial.write_text(f"{offset:+.3f}\n")
        os.replace(partial, self.file)
        self.offset = offset

    def step(self, seconds: float) -> None:
        """Step the running clock by `seconds` (forward if positive), as `date -s` would."""
        self.set(self.offset + seconds)

    def environment(self) -> dict[str, str]:
        """What a process needs to live on this clock (LD_PRELOAD is added by the launcher
        only to the final program, so that `ip`, `unshare` and `sh` keep the true clock)."""
        return {
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def preload(self) -> str:
        return f"LD_PRELOAD={self.library}"
