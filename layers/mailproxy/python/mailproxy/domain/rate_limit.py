"""Per-account sending limits over rolling windows, and what to do over a limit.

A limit holds over every span of its window's length (1 s, 60 s, 3,600 s, 86,400 s), not
over aligned minutes: five sends at 12:00:59 against 3 a minute are not 3 before 12:01:00
and 2 after.

Each window is counted in sub-buckets aligned to the epoch (`SUB_BUCKETS` per window). A
send is charged to the sub-bucket it starts in, and counts for as long as any part of that
sub-bucket lies within the last window length. So it counts for more than the window's
length (every send of a window-long span is still counted when the span's last send is
decided: the limit holds over every span) and for at most one sub-bucket more (a slot frees
up at most one sub-bucket late). The count is conservative: it may defer a little long,
never let one too many go.

The store keeps one small item per (tenant, account, window): the counts of its recent
sub-buckets and a version. A sender reads it once per invocation, decides here, and takes
its slot in the claim transaction with a write that holds only while the item is still as
the decision assumed (`SlotWrite`); when it is not, the sender reads the item again and
decides again. These functions only decide: no I/O, and `now` is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from mailproxy.domain.account import Account

RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
# A counter item outlives its last counted send a little, then DynamoDB's TTL removes it.
# Longer than any lease: a send that fails and gives its slot back still finds its item.
COUNTER_TTL_MARGIN_SECONDS = 3600

WindowName = Literal["second", "minute", "hour", "day"]

# Sub-buckets per window: how long a send may keep its slot beyond the window, at most.
# Twelve give 5 s of a minute, 5 min of an hour, 2 h of a day; the second gets ten of 100 ms
# (a deferral is queued in whole seconds anyway, so a finer second would buy nothing).
SUB_BUCKETS: dict[WindowName, int] = {"second": 10, "minute": 12, "hour": 12, "day": 12}


@dataclass(frozen=True)
class Window:
    name: WindowName
    seconds: int
    limit: int

    @property
    def buckets(self) -> int:
        return SUB_BUCKETS[self.name]

    def bucket(self, now: float) -> int:
        """The sub-bucket `now` falls in; sub-buckets are aligned to the epoch."""
        return math.floor(now * self.buckets / self.seconds)

    def oldest_counted(self, now: float) -> int:
        """The oldest sub-bucket that still overlaps the window-long span ending at `now`:
        a window holds exactly `buckets` sub-buckets, so it is that many before now's."""
        return self.bucket(now) - self.buckets

    def frees_at(self, bucket: int) -> int:
        """The first whole second at which a send charged to `bucket` no longer counts: a
        window after the sub-bucket's end (rounded up, as deferrals are whole seconds)."""
        return -(-(bucket + 1 + self.buckets) * self.seconds // self.buckets)

    def counter_key(self, tenant_id: str, account_id: str) -> str:
        # Tenant ids hold no "#" and the window name is last: one key per triple.
        return f"{tenant_id}#{account_id}#{self.name}"

    def expires_at(self, newest_bucket: int) -> int:
        """When the item may go: nothing it holds counts any more by then."""
        return self.frees_at(newest_bucket) + COUNTER_TTL_MARGIN_SECONDS


# A batch's messages are claimed (their slots charged) together, then sent one after another:
# a send may go some seconds after its claim. Each is charged to the sub-bucket of this many
# seconds after the claim, so a send that starts within them still counts for a whole window
# from its start. That holds a slot up to one sub-bucket longer, which a window whose
# sub-buckets are at least that long (a minute's 5 s, an hour's 5 min) barely notices; a
# second's (100 ms) would lose most of its rate, so those accounts are claimed one message at
# a time, just before each send.
CHARGE_AHEAD_SECONDS = 5


def may_charge_ahead(windows: Sequence[Window]) -> bool:
    return all(window.seconds / window.buckets >= CHARGE_AHEAD_SECONDS for window in windows)


def windows_for(account: Account) -> list[Window]:
    """The windows this account limits (a null or 0 limit is no limit)."""
    candidates: list[tuple[WindowName, int, int | None]] = [
        ("second", 1, account.limit_per_second),
        ("minute", 60, account.limit_per_minute),
        ("hour", 3600, account.limit_per_hour),
        ("day", 86400, account.limit_per_day),
    ]
    return [Window(name, seconds, limit) for name, seconds, limit in candidates if limit]


# -- the state of one window, and the write that takes a slot ----------------------------------


@dataclass(frozen=True)
class WindowCounts:
    """One window's item as a sender read it (or has since changed it itself): sends per
    sub-bucket, and the item's version (0: there is no item yet)."""

    key: str
    version: int = 0
    counts: Mapping[int, int] = field(default_factory=dict)

    @property
    def newest(self) -> int | None:
        return max(self.counts) if self.counts else None


def counted(window: Window, state: WindowCounts, now: float) -> int:
    """Sends that count at `now`: those of every sub-bucket overlapping the last window."""
    oldest = window.oldest_counted(now)
    # A given-back slot never takes a sub-bucket below zero in the count (a sub-bucket
    # removed as expired and given back to afterwards would hold -1).
    return sum(max(0, sends) for bucket, sends in state.counts.items() if bucket >= oldest)


@dataclass(frozen=True)
class SlotWrite:
    """The write that takes one slot of one window, and the condition that makes it right.

    Every write goes to the item's newest sub-bucket or starts a newer one, so sub-buckets
    older than the newest never grow again (a slot given back only lowers them). Hence:

    - `below` set: add one to the newest sub-bucket, if the item still has `version` (no
      newer sub-bucket was started) and that sub-bucket holds fewer than `below` sends (the
      room the older ones, as read, leave). Senders filling one sub-bucket do not undo each
      other's reads: the store checks the room itself.
    - `version` 0: the item must not exist yet; it is created with this send.
    - otherwise, start sub-bucket `bucket` with this send, if the item still has `version`
      and its newest sub-bucket at most the count read (`newest_at_most`): the older ones
      are then at most what was read. The version moves on, and `drop` (sub-buckets that no
      longer count) is removed, so the item stays a few numbers long whatever the limit.
    """

    key: str
    bucket: int
    version: int
    new_version: int
    below: int | None = None
    newest_at_most: tuple[int, int] | None = None
    drop: tuple[int, ...] = ()
    expires_at: int | None = None
    # Slots this write takes at once: the sends of one batch to one account, combined.
    sends: int = 1


def combine_writes(writes: Sequence[SlotWrite]) -> SlotWrite:
    """The one write that takes every slot of `writes`: the writes one invocation decided
    for one item in a row, at one `now` (a transaction may touch an item only once).

    After the first write, the item has that write's new version and its newest sub-bucket
    is the one written, so each later write adds one there with the same room (`below`
    less the sends before it). Taking them at once is the first write with every send:
    adding `sends` leaves the sub-bucket within the room exactly when each addition would."""
    first, rest = writes[0], writes[1:]
    for later in rest:
        if (
            later.key != first.key
            or later.bucket != first.bucket
            or later.version != first.new_version
            or later.below is None
        ):
            raise ValueError("only a chain of writes to one item's newest sub-bucket combines")
    sends = first.sends + sum(later.sends for later in rest)
    if first.below is None:
        return replace(first, sends=sends)
    return replace(first, sends=sends, below=first.below - (sends - first.sends))


@dataclass(frozen=True)
class SlotFree:
    """A slot is free: the write that takes it, and the item as this sender then knows it."""

    window: Window
    write: SlotWrite
    after: WindowCounts


@dataclass(frozen=True)
class WindowFull:
    """The window is full as read; `until`: the first second its count drops below the limit
    (if no one sends meanwhile), the soonest a deferred message may try again."""

    window: Window
    until: int


def take_slot(
    window: Window, state: WindowCounts, now: float, charge_at: float | None = None
) -> SlotFree | WindowFull:
    """One send at `now` against one window whose item is `state`: what counts is judged at
    `now`, and the send is charged to the sub-bucket of `charge_at` (now, unless the send
    may go a little later: see CHARGE_AHEAD_SECONDS)."""
    charged = window.bucket(now if charge_at is None else max(now, charge_at))
    oldest = window.oldest_counted(now)
    live = {bucket: sends for bucket, sends in state.counts.items() if bucket >= oldest}
    used = sum(max(0, sends) for sends in live.values())
    if used >= window.limit:
        return WindowFull(window, _frees_up(window, live, used))
    newest = state.newest
    if state.version and newest is not None and newest >= charged:
        # The newest sub-bucket is now's (or, read by a sender whose clock is behind the
        # one that started it, a later one: charging it is only more cautious).
        in_newest = max(0, live.get(newest, 0))
        write = SlotWrite(
            state.key, newest, state.version, state.version, below=window.limit - used + in_newest
        )
        counts = {**state.counts, newest: state.counts[newest] + 1}
        return SlotFree(window, write, WindowCounts(state.key, state.version, counts))
    current = charged
    write = SlotWrite(
        state.key,
        current,
        state.version,
        state.version + 1,
        newest_at_most=(newest, state.counts[newest]) if newest is not None else None,
        drop=tuple(sorted(bucket for bucket in state.counts if bucket < oldest)),
        expires_at=window.expires_at(current),
    )
    after = WindowCounts(state.key, state.version + 1, {**live, current: 1})
    return SlotFree(window, write, after)


def _frees_up(window: Window, live: Mapping[int, int], used: int) -> int:
    """When enough of the oldest counted sub-buckets have left the window for the count to
    be under the limit again."""
    remaining = used
    for bucket in sorted(live):
        remaining -= max(0, live[bucket])
        if remaining < window.limit:
            return window.frees_at(bucket)
    raise AssertionError("a full window holds at least one send")  # used >= limit >= 1


# -- one send, every window ------------------------------------------------------------------


@dataclass(frozen=True)
class SlotsFree:
    """Every window has room: the writes that take a slot in each (in one transaction)."""

    slots: tuple[SlotFree, ...]


@dataclass(frozen=True)
class LimitReached:
    full: tuple[WindowFull, ...]


def plan_send(
    windows: Sequence[Window],
    states: Sequence[WindowCounts],
    now: float,
    charge_at: float | None = None,
) -> SlotsFree | LimitReached:
    """Whether one send may go at `now` given each window's item (`states`, in the order of
    `windows`): a slot in every window, or the windows that are full."""
    decisions = [
        take_slot(window, state, now, charge_at)
        for window, state in zip(windows, states, strict=True)
    ]
    full = tuple(decision for decision in decisions if isinstance(decision, WindowFull))
    if full:
        return LimitReached(full)
    return SlotsFree(tuple(decision for decision in decisions if isinstance(decision, SlotFree)))


@dataclass(frozen=True)
class DeferUntil:
    due_ts: int
    reason: str


@dataclass(frozen=True)
class RejectOverLimit:
    reason: str = RATE_LIMIT_EXCEEDED


def over_limit(account: Account, full: Sequence[WindowFull]) -> DeferUntil | RejectOverLimit:
    """A send found these windows full: wait until every one of them has a slot again
    (deferral is not a retry), or fail, as the account says."""
    if account.limit_behavior == "reject":
        return RejectOverLimit()
    latest = max(full, key=lambda found: found.until)
    return DeferUntil(
        latest.until, f"{RATE_LIMIT_EXCEEDED}: limit_per_{latest.window.name} {latest.window.limit}"
    )


# -- a slot given back -----------------------------------------------------------------------


@dataclass(frozen=True)
class SlotRelease:
    key: str
    bucket: int


def give_back(window: Window, write: SlotWrite, now: float) -> SlotRelease | None:
    """The slot a send that did not happen hands back, while it still counts: one that no
    longer counts is free already (and its sub-bucket may have been removed)."""
    if write.bucket < window.oldest_counted(now):
        return None
    return SlotRelease(write.key, write.bucket)


def after_release(state: WindowCounts, release: SlotRelease) -> WindowCounts:
    """The item as the sender that gave a slot back then knows it."""
    if release.bucket not in state.counts:
        return state
    counts = {**state.counts, release.bucket: state.counts[release.bucket] - 1}
    return WindowCounts(state.key, state.version, counts)
