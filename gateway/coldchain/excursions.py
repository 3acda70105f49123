"""What a shipment's readings mean, evaluated in time order against its temperature class: pure.

A shipment's state is small (`ColdState`, kept as JSON beside its readings): when it last read,
the excursion in progress (since when, its peak, the limit crossed), the minutes out of range
so far, the summary window being counted, and the keys of what was already published, so that
nothing is published twice, even when late readings make the whole leg be evaluated again.

Findings, each published once:
- `shipment.temperature_excursion` when an excursion outlasts the class's tolerated minutes, when
  the shipment's cumulative minutes out of range pass the class's budget, or at once when a limit
  is passed by the class's critical margin; and again, with `ended_at`, when a reported one ends;
- `shipment.logger_fault`: the battery below the file's threshold, the logger's own alarm or error;
- `shipment.temperature_summary` for each window of `summary_hours` (aligned on the epoch, in
  the readings' time), published once a reading of a later window arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.canonical.payloads import LoggerFault, Payload, TemperatureExcursion, TemperatureSummary
from gateway.coldchain.classes import ClassLimits


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading as the evaluator sees it: when, the span of temperatures it says, the logger's
    battery and alarm. A reading without a temperature (`low` None) is a logger's report only."""

    at: datetime
    until: datetime | None
    low: float | None
    high: float | None
    battery_pct: float | None = None
    alarm: str | None = None


@dataclass
class ColdState:
    last_at: float | None = None  # Unix seconds of the latest reading evaluated
    out_since: float | None = None
    out_limit: float | None = None
    out_peak: float | None = None
    out_reported: bool = False
    closed_out_s: float = 0.0  # minutes out of range of excursions that ended, in seconds
    window: float | None = None  # start of the summary window being counted
    count: int = 0
    lowest: float | None = None
    highest: float | None = None
    total: float = 0.0
    window_out_s: float = 0.0  # closed_out_s when the window began
    battery_low: bool = False
    published: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ColdState:
        return cls(**data) if data else cls()


@dataclass(frozen=True)
class Finding:
    event: str
    payload: Payload


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Evaluation:
    """One pass of samples over a state; `findings` are what to publish."""

    def __init__(
        self,
        state: ColdState,
        limits: ClassLimits,
        *,
        class_name: str,
        shipment_id: str,
        device_id: str,
        battery_low_pct: float,
        summary_hours: float,
    ) -> None:
        self.state, self.limits, self.class_name = state, limits, class_name
        self.shipment_id, self.device_id = shipment_id, device_id
        self.battery_low_pct, self.window_s = battery_low_pct, summary_hours * 3600
        self.findings: list[Finding] = []
        self._published = set(state.published)

    def run(self, samples: Iterable[Sample]) -> ColdState:
        for sample in samples:
            self._one(sample)
        self.state.published = sorted(self._published)
        return self.state

    def _publish(self, key: str, event: str, payload: Payload) -> None:
        if key not in self._published:
            self._published.add(key)
            self.findings.append(Finding(event, payload))

    def _one(self, s: Sample) -> None:
        st = self.state
        at = s.at.timestamp()
        end = s.until.timestamp() if s.until else at
        st.last_at = max(st.last_at or end, end)
        self._logger(s)
        if s.low is None or s.high is None:
            return
        self._window(at, s)
        limit = self.limits.limit_crossed(s.low, s.high)
        if limit is not None:
            peak = s.high if limit == self.limits.max_c else s.low
            if st.out_since is None:
                st.out_since, st.out_limit, st.out_peak, st.out_reported = at, limit, peak, False
            elif st.out_peak is None or abs(peak - limit) > abs(st.out_peak - (st.out_limit or limit)):
                st.out_peak, st.out_limit = peak, limit
            self._check_open(end)
        elif st.out_since is not None:
            self._close(at)

    def _severity(self, out_s: float, peak: float, limit: float) -> str:
        over_budget = self.state.closed_out_s + out_s > self.limits.budget_minutes * 60
        return "critical" if over_budget or abs(peak - limit) >= self.limits.critical_margin_c else "major"

    def _excursion(self, ended: float | None, duration_s: float) -> TemperatureExcursion:
        st = self.state
        assert st.out_since is not None and st.out_peak is not None and st.out_limit is not None
        return TemperatureExcursion(
            occurred_at=_time(ended if ended is not None else st.out_since),
            shipment_id=self.shipment_id,
            temperature_c=st.out_peak,
            limit_c=st.out_limit,
            duration_s=int(duration_s),
            temperature_class=self.class_name,
            severity=self._severity(0 if ended is not None else duration_s, st.out_peak, st.out_limit),
            started_at=_time(st.out_since),
            ended_at=_time(ended) if ended is not None else None,
            device_id=self.device_id,
        )

    def _check_open(self, now: float) -> None:
        st, lim = self.state, self.limits
        assert st.out_since is not None and st.out_peak is not None and st.out_limit is not None
        out_s = max(0.0, now - st.out_since)
        too_long = out_s > lim.tolerated_minutes * 60
        over_budget = st.closed_out_s + out_s > lim.budget_minutes * 60
        too_far = abs(st.out_peak - st.out_limit) >= lim.critical_margin_c
        if not st.out_reported and (too_long or over_budget or too_far):
            st.out_reported = True
            self._publish(
                f"x:{st.out_since:.0f}", "shipment.temperature_excursion", self._excursion(None, out_s)
            )

    def _close(self, at: float) -> None:
        st = self.state
        assert st.out_since is not None
        duration = max(0.0, at - st.out_since)
        self._check_open(at)  # an excursion that was past tolerance by the time it ended
        if st.out_reported:
            payload = self._excursion(at, duration)
            st.closed_out_s += duration
            self._publish(f"e:{st.out_since:.0f}", "shipment.temperature_excursion", payload)
        else:
            st.closed_out_s += duration
        st.out_since = st.out_limit = st.out_peak = None
        st.out_reported = False

    def _window(self, at: float, s: Sample) -> None:
        st = self.state
        start = at - at % self.window_s
        if st.window is not None and start > st.window and st.count:
            self._summary()
        if st.window is None or start > st.window:
            st.window, st.count, st.lowest, st.highest, st.total = start, 0, None, None, 0.0
            st.window_out_s = st.closed_out_s
        if start < st.window:
            return  # a late reading of a window already summarised: stored, not summarised again
        assert s.low is not None and s.high is not None
        st.count += 1
        st.lowest = s.low if st.lowest is None else min(st.lowest, s.low)
        st.highest = s.high if st.highest is None else max(st.highest, s.high)
        st.total += (s.low + s.high) / 2

    def _summary(self) -> None:
        st = self.state
        assert st.window is not None
        payload = TemperatureSummary(
            occurred_at=_time(st.window + self.window_s),
            shipment_id=self.shipment_id,
            since=_time(st.window),
            until=_time(st.window + self.window_s),
            readings=st.count,
            min_c=st.lowest,
            max_c=st.highest,
            mean_c=round(st.total / st.count, 3) if st.count else None,
            minutes_out_of_range=round(max(0.0, st.closed_out_s - st.window_out_s) / 60, 2),
        )
        self._publish(f"s:{st.window:.0f}", "shipment.temperature_summary", payload)

    def _logger(self, s: Sample) -> None:
        st = self.state
        if s.battery_pct is not None:
            if s.battery_pct < self.battery_low_pct and not st.battery_low:
                st.battery_low = True
                detail = f"battery at {s.battery_pct:g} %, below {self.battery_low_pct:g} %"
                self._fault(f"b:{s.at.timestamp():.0f}", "battery_low", detail, s.at)
            elif s.battery_pct >= self.battery_low_pct:
                st.battery_low = False
        if s.alarm:
            fault = "sensor_error" if "ERROR" in s.alarm.upper() else "logger_alarm"
            self._fault(f"a:{s.alarm}", fault, f"the logger reports {s.alarm}", s.at)

    def _fault(self, key: str, fault: str, detail: str, at: datetime) -> None:
        payload = LoggerFault(
            occurred_at=at, shipment_id=self.shipment_id, device_id=self.device_id, fault=fault, detail=detail
        )
        self._publish(key, "shipment.logger_fault", payload)
