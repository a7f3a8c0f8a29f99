"""What every benchmark in bench/ shares: appending its section to bench/RESULTS.md (``--record``)."""

from __future__ import annotations

from pathlib import Path

HEADER = "# Benchmark results\n\nEach section is one run; the command that produced it is in the section.\n"


def append_section(path: str | Path, text: str) -> None:
    """Append one run's section to the results file, creating it with its header when missing."""
    target = Path(path)
    existing = target.read_text() if target.exists() else HEADER
    target.write_text(existing.rstrip("\n") + "\n\n" + text)
