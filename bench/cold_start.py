"""Cold-start import cost of each Lambda handler, beside a bare `import boto3`.

Each figure is the median of 10 fresh interpreters importing the handler as Lambda does
(function folder and layer on sys.path, then `import handler`). Nothing may be built or
fetched at import, so the target is at most 1.5 times boto3's own figure.

Run: make bench   (or .venv/bin/python bench/cold_start.py)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "mailproxy" / "python"
RUNS = 10
HANDLERS = ["api", "sender"]

PROBE = """
import sys, time
start = time.perf_counter()
{statement}
print(time.perf_counter() - start)
"""


def import_seconds(statement: str, path: list[Path]) -> float:
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(str(p) for p in path),
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    result = subprocess.run(
        [sys.executable, "-X", "frozen_modules=on", "-c", PROBE.format(statement=statement)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(result.stdout.strip().splitlines()[-1])


def median_ms(statement: str, path: list[Path]) -> float:
    import_seconds(statement, path)  # warm the bytecode cache, as a deployed zip has it
    return statistics.median(import_seconds(statement, path) for _ in range(RUNS)) * 1000


def main() -> int:
    baseline = median_ms("import boto3", [])
    print(f"{'import':<24}{'median ms':>10}{'x boto3':>10}")
    print(f"{'boto3':<24}{baseline:>10.1f}{1.0:>10.2f}")
    worst = 0.0
    for name in HANDLERS:
        ms = median_ms("import handler", [ROOT / "functions" / name, LAYER])
        ratio = ms / baseline
        worst = max(worst, ratio)
        print(f"{'functions/' + name + '/handler':<24}{ms:>10.1f}{ratio:>10.2f}")
    print(f"\nworst ratio {worst:.2f} (target <= 1.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
