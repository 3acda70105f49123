"""Idempotency: `(partner, message id)` is answered once. A repeat of the same message gets the
first answer again (nothing new is applied or published); another message under a used id is
kept and refused."""

from __future__ import annotations

from gateway.errors import DuplicateKey
from gateway.outcome import Outcome
from gateway.service.ports import UnitOfWork
from gateway.store.records import InboundRecord, StoredAnswer


class Answers:
    """The answers given under message ids: those stored, and those claimed earlier in the batch."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._claimed: dict[tuple[str, str], StoredAnswer] = {}

    def first(self, record: InboundRecord) -> StoredAnswer | None:
        """The first answer under the message's id (None: the id is new, or the message has none)."""
        if not record.message_id:
            return None
        key = (record.partner, record.message_id)
        return self._claimed.get(key) or self.uow.previous_answer(*key)

    def claim(self, record: InboundRecord, inbound_id: str, outcome: Outcome, rendered: bytes | None) -> None:
        """Keep the message's answer under its id; a refused message leaves its id free."""
        if record.message_id and outcome.status != "rejected":
            answer = StoredAnswer(outcome.model_dump(mode="json"), rendered, record.content_hash)
            self.uow.answer(record, inbound_id, answer)
            self._claimed[(record.partner, record.message_id)] = answer


def repeat(record: InboundRecord, first: StoredAnswer) -> tuple[Outcome, bytes | None] | None:
    """The first answer again when the message says what the first said; None when it does not."""
    if first.content_hash not in (None, record.content_hash):
        return None
    return Outcome.model_validate(first.outcome).model_copy(update={"duplicate": True}), first.rendered


def reused(first: StoredAnswer) -> DuplicateKey:
    """The error of a message whose id names another message."""
    return DuplicateKey(detail=f"the id was first used by inbound {first.outcome['inbound_id']}")
