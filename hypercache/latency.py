"""The latency monitor: per event, the worst latency of each second that passed the threshold (Redis 7.0's latency.c).

Pure: callers pass the wall-clock second. An event ("command", "fast-command") keeps the
last 160 samples (one per second at most: a second sample in the same second keeps the
larger) and its all-time maximum. LATENCY GRAPH's ASCII art and LATENCY DOCTOR's report
are Redis's, built from the same numbers (sparkline.c, createLatencyReport()).
"""
from __future__ import annotations

from typing import Final
from dataclasses import dataclass, field

SAMPLES: Final = 160                  # LATENCY_TS_LEN
GRAPH_COLUMNS = 80             # LATENCY_GRAPH_COLS
# threshold_ns while the monitor is off (threshold 0): under 2**62, a machine int when compiled
NEVER: Final = 1 << 61

DISABLED = ("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. "
            "You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. "
            "If we weren't in a deep space mission I'd suggest to take a look at "
            "https://redis.io/topics/latency-monitor.\n")
NOTHING_SEEN = ("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the "
                "slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think "
                "things over.\n")


@dataclass(slots=True)
class Series:
    samples: list[tuple[int, int]] = field(default_factory=list)    # (second, ms), oldest first
    max: int = 0


@dataclass(slots=True)
class LatencyMonitor:
    threshold_ms: int = 0                # latency-monitor-threshold (0: off)
    threshold_ns: int = NEVER            # the dispatcher compares a run time with it, nothing more
    events: dict[str, Series] = field(default_factory=dict)

    def configure(self, threshold_ms: int) -> None:
        self.threshold_ms = threshold_ms
        self.threshold_ns = min(threshold_ms * 1_000_000, NEVER) if threshold_ms > 0 else NEVER

    def add(self, event: str, latency_ms: int, now_s: int) -> None:
        """latencyAddSample(): one sample per second at most, the largest."""
        series = self.events.get(event)
        if series is None:
            series = self.events[event] = Series()
        series.max = max(series.max, latency_ms)
        if series.samples and series.samples[-1][0] == now_s:
            if latency_ms > series.samples[-1][1]:
                series.samples[-1] = (now_s, latency_ms)
            return
        series.samples.append((now_s, latency_ms))
        del series.samples[:-SAMPLES]

    def latest(self) -> list[list]:
        return [[event.encode(), s.samples[-1][0], s.samples[-1][1], s.max] for event, s in self.events.items()]

    def history(self, event: str) -> list[list[int]]:
        series = self.events.get(event)
        return [] if series is None else [[second, ms] for second, ms in series.samples]

    def reset(self, events: list[str]) -> int:
        """Forget the named events (every event when none is named); how many were forgotten."""
        if not events:
            count = len(self.events)
            self.events.clear()
            return count
        return sum(self.events.pop(event, None) is not None for event in events)

    def graph(self, event: str, now_s: int) -> str | None:
        """LATENCY GRAPH's text, None when the event has no samples."""
        series = self.events.get(event)
        if series is None or not series.samples:
            return None
        values = [ms for _, ms in series.samples]
        labels = [_ago(now_s - second) for second, _ in series.samples]
        text = (f"{event} - high {max(values)} ms, low {min(values)} ms (all time high {series.max} ms)\n"
                + "-" * GRAPH_COLUMNS + "\n")
        return text + sparkline(values, labels, GRAPH_COLUMNS, 4)

    def doctor(self, now_s: int, slowlog_threshold_us: int, slowlog_max_len: int) -> str:
        """LATENCY DOCTOR's report for the events recorded here (createLatencyReport())."""
        if not self.events and self.threshold_ms == 0:
            return DISABLED
        report = ""
        advices = 0
        slowlog_enabled = slowlog_tuning = inspect = scheduler = False
        for number, (event, series) in enumerate(self.events.items(), 1):
            if number == 1:
                report += ("Dave, I have observed latency spikes in this Redis instance. "
                           "You don't mind talking about it, do you Dave?\n\n")
            samples, avg, mad, period = _analyse(series, now_s)
            report += (f"{number}. {event}: {samples} latency spikes (average {avg}ms, mean deviation {mad}ms, "
                       f"period {period / samples if samples else 0:.2f} sec). Worst all time event {series.max}ms.")
            if event == "command":
                if slowlog_threshold_us < 0 or slowlog_max_len == 0:
                    slowlog_enabled = True
                    advices += 1
                elif slowlog_threshold_us // 1000 > self.threshold_ms:
                    slowlog_tuning = True
                    advices += 1
                inspect = True
                advices += 2
            if event == "fast-command":
                scheduler = True
                advices += 1
            report += "\n"
        if not self.events and not advices:
            return report + NOTHING_SEEN
        if not advices:
            return report + ("\nWhile there are latency events logged, I'm not able to suggest any easy fix. "
                             "Please use the Redis community to get some help, providing this report in your "
                             "help request.\n")
        report += "\nI have a few advices for you:\n\n"
        suggested = self.threshold_ms * 1000
        if slowlog_enabled:
            report += ("- There are latency issues with potentially slow commands you are using. Try to enable "
                       f"the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than "
                       f"{suggested}'. If the Slow log is disabled Redis is not able to log slow commands "
                       "execution for you.\n")
        if slowlog_tuning:
            report += ("- Your current Slow Log configuration only logs events that are slower than your "
                       f"configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than "
                       f"{suggested}'.\n")
        if inspect:
            report += ("- Check your Slow Log to understand what are the commands you are running which are too "
                       "slow to execute. Please check https://redis.io/commands/slowlog for more information.\n")
        if scheduler:
            report += ("- The system is slow to execute Redis code paths not containing system calls. This "
                       "usually means the system does not provide Redis CPU time to run for long periods. You "
                       "should try to:\n"
                       "  1) Lower the system load.\n"
                       "  2) Use a computer / VM just for Redis if you are running in a virtualized environment.\n"
                       "  3) Check if you have a \"noisy neighbour\" problem.\n"
                       "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in "
                       "your system.\n"
                       "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if "
                       "you are using Jemalloc. However this may create fragmentation problems.\n")
        if inspect:     # (Redis's advise_large_objects comes with the command event)
            report += ("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a "
                       "blocking operation. If you have very large objects that are often deleted, expired, or "
                       "evicted, try to fragment those objects into multiple smaller objects.\n")
        return report


def _analyse(series: Series, now_s: int) -> tuple[int, int, int, int]:
    """(samples, average ms, mean absolute deviation ms, seconds since the oldest) (analyzeLatencyForEvent)."""
    values = [ms for _, ms in series.samples]
    if not values:
        return 0, 0, 0, 0
    avg = sum(values) // len(values)
    mad = sum(abs(avg - ms) for ms in values) // len(values)
    period = now_s - min(second for second, _ in series.samples) or 1
    return len(values), avg, mad, period


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


FILL = "_o#"        # sparkline.c's charset_fill (LATENCY GRAPH fills under the line)


def sparkline(values: list[int], labels: list[str], columns: int, rows: int) -> str:
    """sparklineRender(..., SPARKLINE_FILL): `columns` samples per block, labels written downwards."""
    low, high = min(values), max(values)
    out = ""
    for start in range(0, len(values), columns):
        if start:
            out += "\n"
        out += _render(values[start:start + columns], labels[start:start + columns], low, high, rows)
    return out


def _render(values: list[int], labels: list[str], low: int, high: int, rows: int) -> str:
    relmax = (high - low) or 1
    steps = len(FILL) * rows
    out = ""
    row = 0
    while True:
        chars = [" "] * len(values)
        more = False
        for j, value in enumerate(values):
            step = min(max(int((value - low) * steps / relmax), 0), steps - 1)
            if row < rows:
                more = True
                index = step - (rows - row - 1) * len(FILL)
                if 0 <= index < len(FILL):
                    chars[j] = FILL[index]
                elif index >= len(FILL):
                    chars[j] = "|"
            elif row - rows < 1:        # one blank line between the graph and the labels
                more = True
                break
            elif len(labels[j]) > row - rows - 1:
                more = True
                chars[j] = labels[j][row - rows - 1]
        if not more:
            return out
        out += "".join(chars) + "\n"
        row += 1
