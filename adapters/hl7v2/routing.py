"""Which messages the gateway takes, by MSH-9 / MSH-11 / MSH-12, and which mapping each goes to."""

from __future__ import annotations

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.header import Header
from adapters.hl7v2.orders import order_commands
from adapters.hl7v2.patients import adt_commands
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.scheduling import SIU_TRIGGERS, appointment_commands
from gateway.sdk import Command, MalformedMessage, Partner, UnsupportedMessage

ORDER_TRIGGERS = {"ORM": ("O01",), "OML": ("O21",), "OMB": ("O27",)}
TAKEN = {**ORDER_TRIGGERS, "SIU": SIU_TRIGGERS}  # and every ADT event


def check_taken(header: Header, profile: SiteProfile) -> None:
    """Refuse, with the HL7 table 0357 code a sender expects, what the gateway does not take."""
    if not header.control_id:
        raise MalformedMessage("MSH-10 (message control id) is missing", location="MSH-10", code="101")
    if header.version not in profile.versions:
        raise UnsupportedMessage(
            f"HL7 version {header.version[:10]!r} is not taken (MSH-12); send one of {', '.join(profile.versions)}",
            location="MSH-12",
            code="203",
        )
    if header.processing_id not in profile.processing_ids:
        raise UnsupportedMessage(
            f"processing id {header.processing_id[:3]!r} is not taken here (MSH-11)",
            location="MSH-11",
            code="202",
        )
    if header.message_type == "ADT":
        return
    triggers = TAKEN.get(header.message_type)
    if triggers is None:
        raise UnsupportedMessage(
            f"message type {header.message_type[:3]!r} is not taken (MSH-9)", location="MSH-9", code="200"
        )
    if header.trigger not in triggers:
        raise UnsupportedMessage(
            f"event {header.kind[:10]!r} is not taken (MSH-9)", location="MSH-9", code="201"
        )


def commands_for(message: Message, header: Header, profile: SiteProfile, partner: Partner) -> list[Command]:
    if header.message_type == "ADT":
        return adt_commands(message, header, profile)
    if header.message_type == "SIU":
        return appointment_commands(message, header, profile)
    return order_commands(message, header, profile, partner)
