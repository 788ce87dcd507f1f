"""Cold-start import cost of each Lambda handler, beside a bare `import boto3`.

Each figure is the median of 15 fresh interpreters importing the handler as Lambda does
(function folder and layer on sys.path, then `import handler`). Nothing may be built or
fetched at import, so the target is at most 1.5 times boto3's own figure.

The runs are interleaved (boto3, then each handler, 15 times over), so that a burst of load
on a shared machine falls on all of them alike, and each is timed twice: wall clock, and the
CPU time of the importing process, which waiting for a busy CPU does not inflate. On a loaded
machine the CPU ratio is the one to read.

Run: make bench   (or .venv/bin/python bench/cold_start.py)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
LAYER = ROOT / "layers" / "mailproxy" / "python"
RUNS = 15
HANDLERS = ["api", "sender", "scheduler", "reporter", "bouncer"]

PROBE = """
import sys, time
start, cpu = time.perf_counter(), time.process_time()
{statement}
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def import_seconds(statement: str, path: list[Path]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one fresh interpreter running `statement`, in the
    environment every Lambda of the stack has."""
    from infra.resources import LAMBDA_ENVIRONMENT

    env = (
        os.environ
        | LAMBDA_ENVIRONMENT
        | {
            "PYTHONPATH": os.pathsep.join(str(p) for p in path),
            "PYTHONDONTWRITEBYTECODE": "0",
        }
    )
    result = subprocess.run(
        [sys.executable, "-X", "frozen_modules=on", "-c", PROBE.format(statement=statement)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def main() -> int:
    subjects = {"boto3": ("import boto3", [])} | {
        f"functions/{name}/handler": ("import handler", [ROOT / "functions" / name, LAYER])
        for name in HANDLERS
    }
    for statement, path in subjects.values():
        import_seconds(statement, path)  # warm the bytecode cache, as a deployed zip has it
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in subjects}
    for _ in range(RUNS):
        for name, (statement, path) in subjects.items():
            samples[name].append(import_seconds(statement, path))
    wall = {name: statistics.median(s[0] for s in runs) * 1000 for name, runs in samples.items()}
    cpu = {name: statistics.median(s[1] for s in runs) * 1000 for name, runs in samples.items()}
    print(f"{'import':<28}{'wall ms':>9}{'x boto3':>9}{'CPU ms':>9}{'x boto3':>9}")
    for name in subjects:
        wall_ratio, cpu_ratio = wall[name] / wall["boto3"], cpu[name] / cpu["boto3"]
        print(f"{name:<28}{wall[name]:>9.1f}{wall_ratio:>9.2f}{cpu[name]:>9.1f}{cpu_ratio:>9.2f}")
    handlers = [name for name in subjects if name != "boto3"]
    worst_wall = max(wall[name] / wall["boto3"] for name in handlers)
    worst_cpu = max(cpu[name] / cpu["boto3"] for name in handlers)
    print(f"\nworst ratio: wall {worst_wall:.2f}, CPU {worst_cpu:.2f} (target <= 1.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
