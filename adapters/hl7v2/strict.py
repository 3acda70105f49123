"""Strict validation with hl7apy, for partners whose profile turns it on (`strict_validation: true`).

About 10-50 ms a message, so never on the default path. hl7apy's `validate()` wrongly refuses a
valid ORM^O01 (it reads the OBR|RQD|RQ1|RXO|ODS|ODT choice as a sequence, crs4/hl7apy#151), so
ORM^O01 gets hl7apy's strict parse only.
"""

from __future__ import annotations

from hl7apy import exceptions as hl7apy_errors  # type: ignore[import-untyped]
from hl7apy.consts import VALIDATION_LEVEL  # type: ignore[import-untyped]
from hl7apy.parser import parse_message  # type: ignore[import-untyped]

from adapters.hl7v2.header import Header
from gateway.sdk import MalformedMessage

_STRUCTURE = (hl7apy_errors.ChildNotFound, hl7apy_errors.ChildNotValid, hl7apy_errors.InvalidName)
_VALUES = (
    hl7apy_errors.InvalidDataType,
    hl7apy_errors.InvalidDateFormat,
    hl7apy_errors.InvalidDateOffset,
    hl7apy_errors.MaxLengthReached,
    hl7apy_errors.InvalidMicrosecondsPrecision,
    ValueError,
)


def validate_strictly(text: str, header: Header) -> None:
    """Raise MalformedMessage naming hl7apy's finding (no values: they may be patient data)."""
    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        if header.kind != "ORM^O01":
            message.validate()
    except _STRUCTURE as exc:
        raise MalformedMessage(
            "the message's structure is not valid for its type (strict validation)",
            detail=f"hl7apy {type(exc).__name__}",
            code="100",
        ) from None
    except hl7apy_errors.ValidationError as exc:
        raise MalformedMessage(
            "the message is not valid for its type (strict validation)",
            detail=f"hl7apy: {str(exc)[:200]}",
            code="101",
        ) from None
    except _VALUES as exc:
        raise MalformedMessage(
            "a field has a value of the wrong data type (strict validation)",
            detail=f"hl7apy {type(exc).__name__}",
            code="102",
        ) from None
    except hl7apy_errors.HL7apyException as exc:
        raise MalformedMessage(
            "the message failed strict validation", detail=f"hl7apy {type(exc).__name__}", code="207"
        ) from None
