"""Local mode under volume, started as `make run` starts it, measured from outside.

An SMTP server that waits 20 ms before its greeting stands in for a WAN hop; local mode runs with
its sink off and one account pointing at that server. N messages are posted 50 per
add-messages call over HTTP, then the run waits until the server has received every one.

Printed per N: enqueue ms per message (p50, p95 over the calls), end-to-end messages/s (first
post to last message received), peak RSS of local mode, CPU ms per message (user + system time
over the run), both summed over local mode's processes (its own and the AWS emulation's), and how
many messages arrived more than once (must be 0).

Targets (2 cores): at least 100 messages/s end to end at N = 1,000; CPU ms per message at
N = 10,000 within 1.25 times the figure at N = 1,000; peak RSS at most 400 MiB.

Run: make bench-local            (N = 1,000 and 10,000)
     .venv/bin/python bench/local_e2e.py 2000
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "mailproxy" / "python")]

from tests.support.local_mode import start_local_mode, stop_local_mode  # noqa: E402
from tests.support.smtp_servers import SmtpServer  # noqa: E402

PER_CALL = 50
GREETING_DELAY_SECONDS = 0.02
TARGET_MESSAGES_PER_SECOND = 100.0
TARGET_COST_RATIO = 1.25
TARGET_PEAK_RSS_MIB = 400.0
MAIL_ID = re.compile(rb"X-Genro-Mail-ID: (\S+)")


@dataclass
class Figures:
    count: int
    enqueue_ms_p50: float
    enqueue_ms_p95: float
    messages_per_second: float
    peak_rss_mib: float
    cpu_ms_per_message: float
    duplicates: int
    missing: int


def _proc_status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024  # kB → MiB
    return 0.0


def _family(pid: int) -> list[int]:
    """Local mode and the processes it started (the AWS emulation's, multiprocessing's)."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [pid, *(member for child in children for member in _family(child))]


def _cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in _family(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def _peak_rss_mib(pid: int) -> float:
    """The sum of each process's peak: at least the peak of the sum."""
    return sum(_proc_status(member, "VmHWM") for member in _family(pid))


def run(count: int) -> Figures:
    with SmtpServer(greeting_delay=GREETING_DELAY_SECONDS) as smtp:
        # As the e2e tests start it: `python -m infra.local`, a fresh state folder, sink off.
        local = start_local_mode({"MAILPROXY_SINK_PORT": "0"})
        process = local.process
        try:
            local.call(
                "POST",
                "/account",
                {"id": "wan", "tenant_id": "bench", "host": "127.0.0.1", "port": smtp.port},
            )
            cpu_before = _cpu_seconds(process.pid)
            started = time.monotonic()
            per_message_ms: list[float] = []
            for first in range(0, count, PER_CALL):
                batch = [
                    {
                        "id": f"bench-{n}",
                        "tenant_id": "bench",
                        "account_id": "wan",
                        "from": "app@bench.test",
                        "to": [f"user{n}@example.test"],
                        "subject": f"Message {n}",
                        "body": f"Body of message {n}",
                    }
                    for n in range(first, min(first + PER_CALL, count))
                ]
                sent_at = time.monotonic()
                status, body = local.call("POST", "/commands/add-messages", {"messages": batch})
                per_message_ms.append((time.monotonic() - sent_at) * 1000 / len(batch))
                if status != 200 or body.get("queued") != len(batch):
                    raise SystemExit(f"add-messages answered {status}: {body}")
            deadline = time.monotonic() + max(600.0, count * 0.1)
            while len(smtp.received) < count and time.monotonic() < deadline:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            cpu = _cpu_seconds(process.pid) - cpu_before
            time.sleep(1)  # a redelivered duplicate would show up now
            peak = _peak_rss_mib(process.pid)
        finally:
            stop_local_mode(local)
        ids = Counter(
            match.group(1) for mail in smtp.received if (match := MAIL_ID.search(mail.data))
        )
    quantiles = statistics.quantiles(per_message_ms, n=20)
    return Figures(
        count=count,
        enqueue_ms_p50=statistics.median(per_message_ms),
        enqueue_ms_p95=quantiles[-1],
        messages_per_second=sum(ids.values()) / elapsed,
        peak_rss_mib=peak,
        cpu_ms_per_message=cpu * 1000 / count,
        duplicates=sum(n - 1 for n in ids.values() if n > 1),
        missing=count - len(ids),
    )


def main() -> int:
    counts = [int(arg) for arg in sys.argv[1:]] or [1_000, 10_000]
    results = []
    for count in counts:
        figures = run(count)
        results.append(figures)
        print(
            f"N={figures.count:>6}: enqueue {figures.enqueue_ms_p50:.2f} ms/message p50, "
            f"{figures.enqueue_ms_p95:.2f} p95 · {figures.messages_per_second:.0f} messages/s "
            f"end to end · peak RSS {figures.peak_rss_mib:.0f} MiB · "
            f"CPU {figures.cpu_ms_per_message:.1f} ms/message · "
            f"{figures.duplicates} duplicates, {figures.missing} missing",
            flush=True,
        )
    first = results[0]
    print(
        f"targets: >= {TARGET_MESSAGES_PER_SECOND:.0f} messages/s at N={first.count} "
        f"(reached {first.messages_per_second:.0f}); peak RSS <= {TARGET_PEAK_RSS_MIB:.0f} MiB "
        f"(reached {max(r.peak_rss_mib for r in results):.0f})"
    )
    if len(results) > 1:
        ratio = results[-1].cpu_ms_per_message / first.cpu_ms_per_message
        print(
            f"cost per message at N={results[-1].count} / N={first.count}: {ratio:.2f} "
            f"(target <= {TARGET_COST_RATIO})"
        )
    return 0 if all(r.duplicates == 0 and r.missing == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
