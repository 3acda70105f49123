"""A message committed on its own: run again after a concurrent change, answered as transient
after a database failure, and kept (with an error answer) after a defect of ours."""

from __future__ import annotations

import logging
from functools import partial

from gateway.errors import ConcurrentChange, GatewayError, TransientError
from gateway.service.ports import Transactions
from gateway.service.transaction import Answered, Job, Rules, run_batch, store_failure

log = logging.getLogger("gateway.service.intake")

ATTEMPTS = 3


async def alone(transactions: Transactions, job: Job, rules: Rules) -> Answered:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return (await transactions.run(partial(run_batch, batch=[job], rules=rules)))[0]
        except ConcurrentChange as exc:
            # A concurrent transaction bound the same identifier or moved the same order first:
            # run again, and reconciliation sees what it did.
            log.info("intake retry %d after a concurrent change", attempt)
            if attempt == ATTEMPTS:
                raise TransientError(detail=exc.detail) from exc
        except (GatewayError, AssertionError):
            raise
        except Exception as exc:  # a defect of ours: keep the message, answer with an error
            _log_defect(rules, "intake failed on a message from %s", job.record.partner)
            return await _kept(transactions, job, type(exc).__name__, rules)
    raise AssertionError("unreachable")


async def _kept(transactions: Transactions, job: Job, defect: str, rules: Rules) -> Answered:
    outcome = await transactions.run(partial(store_failure, record=job.record, defect=defect, rules=rules))
    try:
        return outcome, job.render(outcome) if job.render else None
    except Exception:  # the dialect's renderer is what failed: answer without it
        _log_defect(rules, "could not render the error answer for %s", job.record.partner)
        return outcome, None


def _log_defect(rules: Rules, message: str, *args: object) -> None:
    """A defect's traceback, which may quote the payload, only when patient data may be logged."""
    log.error(message, *args, exc_info=rules.log_phi)
