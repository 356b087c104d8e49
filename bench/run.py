"""Run every benchmark and write bench/RESULTS.md (tests never assert on timings; this does not either)."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_append
import bench_local
import bench_parsing

RESULTS = Path(__file__).parent / "RESULTS.md"


def main() -> None:
    header = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d}; Python {platform.python_version()},",
        f"{platform.machine()}, 2 cores. Numbers are from one machine: compare rows, not machines.",
    ]
    sections = [bench_parsing.run(), bench_append.run()]
    sections.append(bench_local.run())  # the embedded model; it takes minutes
    RESULTS.write_text("\n\n".join(["\n".join(header), *sections]) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
