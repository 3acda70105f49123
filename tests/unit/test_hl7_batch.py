"""Batches split into their messages as received, acknowledgement modes read as the standard
says (an unknown MSH-15/16 as AL), and the unknown sender's quota window, on a fake clock."""

from __future__ import annotations

import pytest

from adapters.hl7v2 import ack as acks
from adapters.hl7v2 import batch
from adapters.hl7v2.header import read_header
from adapters.hl7v2.limits import UnknownSenderQuota

MSH = "MSH|^~\\&|EHR|HOSP|CGT|CGT|20261102091500||ADT^A04^ADT_A01|{}|P|2.5{}"


def msg(control: str, modes: str = "", end: str = "\r") -> bytes:
    return (
        MSH.format(control, modes) + end + "EVN|A04|20261102091500" + end + "PID|1||X1^^^H^MR" + end
    ).encode()


def test_a_bhs_batch_splits_into_its_messages_byte_for_byte() -> None:
    first, second = msg("C1", "|||NE|NE"), msg("C2", "|||NE|NE")
    framed = b"BHS|^~\\&||HOSP||CGT|20261102091500||||B-1\r" + first + second + b"BTS|2\r"
    received = batch.split(framed)
    assert batch.is_batch(framed) and received.messages == [first, second]
    assert received.batch_header is not None and received.batch_header.endswith(b"B-1")


def test_two_messages_in_one_frame_with_lf_are_a_batch_and_one_message_is_not() -> None:
    two = msg("C1", end="\n") + msg("C2", end="\n")
    assert batch.is_batch(two) and batch.split(two).messages == [msg("C1", end="\n"), msg("C2", end="\n")]
    assert not batch.is_batch(msg("C1"))


def test_a_segment_before_any_msh_is_a_message_of_its_own_not_dropped() -> None:
    framed = b"BHS|^~\\&\rZXX|stray\r" + msg("C1") + b"BTS|1\r"
    assert batch.split(framed).messages == [b"ZXX|stray\r", msg("C1")]


def test_the_answer_without_an_envelope_is_the_acks_in_order() -> None:
    received = batch.split(msg("C1") + msg("C2"))
    assert batch.answer(received, [b"MSH|a\rMSA|AA|C1\r", b"", b"MSH|b\rMSA|AA|C2\r"]) == (
        b"MSH|a\rMSA|AA|C1\rMSH|b\rMSA|AA|C2\r"
    )


@pytest.mark.parametrize(
    ("modes", "kind", "commit", "application"),
    [
        ("|||XX|NE", "accept", "CA", False),  # unknown MSH-15: as AL
        ("|||NE|AL", "accept", "", True),  # IHE LAB-28 style: only the application ACK
        ("|||NE|ER", "accept", "", False),
        ("|||NE|ER", "reject", "", True),
        ("|||NE|QQ", "error", "", True),  # unknown MSH-16: as AL
        ("|||ER|SU", "accept", "", True),
        ("|||AL|", "reject", "CR", False),
    ],
)
def test_msh_15_and_16_decide_which_acknowledgements_are_sent(
    modes: str, kind: acks.Kind, commit: str, application: bool
) -> None:
    head = read_header(msg("C9", modes))
    verdict = acks.Verdict(kind, "0" if kind == "accept" else "207")
    rendered = acks.render(head, verdict)
    assert (rendered.split(b"\r")[1].split(b"|")[1].decode() if rendered else "") == commit
    assert acks.application_wanted(head, verdict) is application
    if application:
        app = acks.render(head, verdict, application=True, ask_accept=True).decode()
        code = {"accept": "AA", "error": "AE", "reject": "AR"}[kind]
        assert app.split("\r")[1].startswith(f"MSA|{code}|C9")
        assert app.split("\r")[0].split("|")[14:16] == ["AL", "NE"]


def test_the_unknown_senders_quota_renews_with_its_window() -> None:
    now = [0.0]
    quota = UnknownSenderQuota(max_bytes=100, messages=2, volume=150, window=60, clock=lambda: now[0])
    assert [quota.keep("10.0.0.1", 50) for _ in range(3)] == [True, True, False]  # rate
    assert quota.keep("10.0.0.2", 101) is False  # size
    assert [quota.keep("10.0.0.2", 80) for _ in range(2)] == [True, False]  # volume
    now[0] = 61.0
    assert quota.keep("10.0.0.1", 50) and quota.keep("10.0.0.2", 80)
