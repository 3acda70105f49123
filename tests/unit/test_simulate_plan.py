"""The simulator's plan: journeys complete in order, every fault kind is injected, swaps borrow
another journey's identifier of the same parties, identifiers never repeat across journeys or runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.canonical.ids import mod37_2_check, validate_coi, validate_din
from gateway.simulate.config import cast
from gateway.simulate.identities import gs1_check_digit, identities
from gateway.simulate.model import ALL_FAULTS, SWAPS, Boundary, Expect, Fault
from gateway.simulate.plan import QC_TESTS, plan
from gateway.simulate.senders import read_ack

START = datetime(2027, 1, 4, 8, tzinfo=UTC)


def _plan(count: int = 50, parties: int = 1, **kw: object) -> list:  # type: ignore[type-arg]
    who = cast(1, 1, 1).parties if parties == 1 else cast(2, 2, 2).parties
    return plan(count, who, seed=7, run=3, start=START, spread=timedelta(days=28), fault_rate=0.5, **kw)  # type: ignore[arg-type]


def test_a_clean_journey_runs_from_order_to_infusion_in_time_order() -> None:
    (j,) = plan(1, cast(1, 1, 1).parties, seed=1, run=0, start=START, spread=timedelta(0), fault_rate=0)
    events = [s.event for s in j.steps]
    assert events[0] == "order.placed" and events[-1] == "infusion.completed"
    assert [s.at for s in j.steps] == sorted(s.at for s in j.steps)
    assert all(s.fault is None for s in j.steps)
    assert events.count("shipment.declared") == 2 and events.count("manufacturing.qc_result") == len(QC_TESTS)
    assert len({s.key for s in j.steps}) == len(j.steps)  # one message id a step


def test_every_fault_kind_is_injected_in_a_small_run_and_swaps_expect_quarantine() -> None:
    journeys = _plan()
    injected = Counter(f for j in journeys for f in j.faults)
    assert set(injected) == set(ALL_FAULTS)
    steps = [s for j in journeys for s in j.steps if s.fault in SWAPS]
    assert steps and all(s.expect is Expect.quarantined for s in steps)


def test_a_swap_borrows_the_identifier_of_another_journey_of_the_same_parties() -> None:
    journeys = _plan(count=40, parties=2)
    by_din = {j.ids.din: j for j in journeys}
    swapped = [(j, s) for j in journeys for s in j.steps if s.fault is Fault.swap_din]
    assert swapped
    for j, s in swapped:
        owner = by_din[s.ids.din]
        assert owner.n != j.n and owner.parties == j.parties


def test_identifiers_are_valid_and_never_repeat_within_or_across_runs() -> None:
    import random

    a = [identities(n, random.Random(n), run=1) for n in range(2000)]
    b = [identities(n, random.Random(n), run=2) for n in range(2000)]
    for field in ("coi", "din", "mrn", "placer", "inbound_tracking", "outbound_sscc", "batch"):
        values = [getattr(i, field) for i in a + b]
        assert len(set(values)) == len(values), field
    one = a[1234]
    assert validate_coi(one.coi) == one.coi and validate_din(one.din_scanned) == one.din
    assert one.din_check == mod37_2_check(one.din)
    assert len(one.outbound_sscc) == 18 and gs1_check_digit(one.outbound_sscc[:-1]) == one.outbound_sscc[-1]


def test_an_hl7_ack_is_read_as_accepted_held_or_refused() -> None:
    aa = b"MSH|^~\\&|CGT|CGT|EHR|H|20270101||ACK|1|P|2.5.1\rMSA|AA|X1\r"
    held = aa + b"ERR||PID^1^3|103^Table value not found^HL70357|W\r"
    ar = b"MSH|^~\\&|CGT|CGT|EHR|H|20270101||ACK|1|P|2.5.1\rMSA|AR|X1\rERR||MSH^1^10|205^Duplicate key^HL70357|E\r"
    assert read_ack(aa)[0] == "accepted"
    assert read_ack(held)[0] == "quarantined"
    assert read_ack(ar)[0] == "refused"


def test_a_duplicate_is_the_very_same_message_whatever_the_boundary() -> None:
    from gateway.simulate.wire import Encoder

    journeys = _plan(count=200)
    who = cast(1, 1, 1)
    encoder = Encoder(who.credentials, START)
    copies = [(j, s) for j in journeys for s in j.steps if s.fault is Fault.duplicate]
    assert copies
    for j, copy in copies:
        (first,) = [s for s in j.steps if s.key == copy.key and s.fault is None]
        assert (
            encoder.encode(copy, j.start, j.parties.product).body
            == encoder.encode(first, j.start, j.parties.product).body
        )


def test_a_message_sent_again_after_a_lost_answer_may_get_the_first_answer_again() -> None:
    from gateway.simulate.senders import Answer
    from gateway.simulate.verdict import judge, read_back

    (j,) = plan(1, cast(1, 1, 1).parties, seed=1, run=0, start=START, spread=timedelta(0), fault_rate=0)
    step = next(s for s in j.steps if s.event == "manufacturing.qc_result")
    timeline = read_back({"order": {"status": "ordered"}, "timeline": [{"type": f"org.cgt.{step.event}"}]})
    resent = judge([j], [Answer(step, "replayed", 0.01, attempts=2)], {j.ids.coi: timeline}, 1.0, 1)
    assert resent.unexpected == 0 and resent.acked_lost == 0
    first_try = judge([j], [Answer(step, "replayed", 0.01, attempts=1)], {j.ids.coi: timeline}, 1.0, 0)
    assert first_try.unexpected == 1  # a first attempt answered as a repeat is not what was sent
    # on a queue, the broker delivers again what a killed replica took and never acked
    queued = replace(step, boundary=Boundary.mes_amqp)
    redelivered = judge([j], [Answer(queued, "replayed", 0.01, attempts=1)], {j.ids.coi: timeline}, 1.0, 0)
    assert redelivered.unexpected == 0 and redelivered.acked_lost == 0
    absent = read_back({"order": {"status": "ordered"}, "timeline": []})
    lost = judge([j], [Answer(queued, "replayed", 0.01, attempts=1)], {j.ids.coi: absent}, 1.0, 0)
    assert lost.acked_lost == 1  # answered as applied before: it must be on the timeline
