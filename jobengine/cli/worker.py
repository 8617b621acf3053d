"""`jobengine worker` commands (filled in by later work)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
