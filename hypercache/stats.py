"""Counters the node keeps for INFO, CLUSTER INFO and the status page: cheap to bump, read rarely."""
from __future__ import annotations

from typing import Final
from dataclasses import dataclass, field

LATENCY_BUCKETS: Final = 24     # power-of-two microsecond buckets: <=1us ... <=8s, then overflow


@dataclass(slots=True)
class CommandStats:
    calls: int = 0
    nanos: int = 0
    failed_calls: int = 0
    rejected_calls: int = 0
    # latency_us_buckets[i] counts calls taking <= 2**i microseconds (non-cumulative)
    latency: list[int] = field(default_factory=lambda: [0] * (LATENCY_BUCKETS + 1))

    def record(self, elapsed_ns: int) -> None:
        self.calls += 1
        self.nanos += elapsed_ns
        bucket = (elapsed_ns // 1000).bit_length()
        self.latency[bucket if bucket < LATENCY_BUCKETS else LATENCY_BUCKETS] += 1

    def record_many(self, calls: int, elapsed_ns: int) -> None:
        """`calls` calls in a row that took `elapsed_ns` together, each counted at their mean.

        Dispatcher.run inlines these lines at its end: keep them in step.
        """
        self.calls += calls
        self.nanos += elapsed_ns
        bucket = (elapsed_ns // (1000 * calls)).bit_length()
        self.latency[bucket if bucket < LATENCY_BUCKETS else LATENCY_BUCKETS] += calls

    @property
    def usec(self) -> int:
        return self.nanos // 1000

    def reset(self) -> None:
        self.calls = self.nanos = self.failed_calls = self.rejected_calls = 0
        self.latency = [0] * (LATENCY_BUCKETS + 1)


@dataclass(slots=True)
class ServerStats:
    commands: dict[str, CommandStats] = field(default_factory=dict)
    total_connections: int = 0
    rejected_connections: int = 0
    net_input_bytes: int = 0
    net_output_bytes: int = 0
    moved_sent: int = 0
    ask_sent: int = 0
    unexpected_errors: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    # instantaneous ops/sec, sampled by the node every 100 ms
    ops_samples: list[float] = field(default_factory=list)
    last_sample_commands: int = 0
    last_sample_at: float = 0.0

    def for_command(self, name: str) -> CommandStats:
        stats = self.commands.get(name)
        if stats is None:
            stats = self.commands[name] = CommandStats()
        return stats

    @property
    def total_commands(self) -> int:
        """Commands run (total_commands_processed): every call is counted once, per command."""
        return sum(entry.calls for entry in self.commands.values())

    def count_error(self, text: str) -> None:
        code = text.split(" ", 1)[0]
        self.errors_by_code[code] = self.errors_by_code.get(code, 0) + 1

    def sample_ops(self, now_s: float) -> None:
        if self.last_sample_at:
            elapsed = now_s - self.last_sample_at
            if elapsed > 0:
                rate = (self.total_commands - self.last_sample_commands) / elapsed
                self.ops_samples.append(rate)
                del self.ops_samples[:-16]
        self.last_sample_at = now_s
        self.last_sample_commands = self.total_commands

    @property
    def ops_per_sec(self) -> float:
        return sum(self.ops_samples) / len(self.ops_samples) if self.ops_samples else 0.0
