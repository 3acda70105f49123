"""The Things Stack v3 webhook messages, as far as we read them: an uplink's device ids, its
correlation ids (the first `as:up:` one names the uplink) and its application payload. Other
message types of the same webhook (join accepts, downlink events, locations) have no
`uplink_message`; everything we do not use is passed over."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class EndDeviceIds(_Wire):
    device_id: str = Field(min_length=1, max_length=36)
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{16}$")


class UplinkMessage(_Wire):
    f_port: int | None = Field(default=None, ge=0, le=255)
    f_cnt: int | None = Field(default=None, ge=0)
    frm_payload: str | None = Field(default=None, max_length=400)  # base64 of at most 242 bytes
    received_at: AwareDatetime | None = None


class Webhook(_Wire):
    end_device_ids: EndDeviceIds
    correlation_ids: tuple[str, ...] = ()
    received_at: AwareDatetime
    uplink_message: UplinkMessage | None = None

    @property
    def logger(self) -> str:
        """The logger's id: its DevEUI (upper case, as on its label), else the device id."""
        eui = self.end_device_ids.dev_eui
        return eui.upper() if eui else self.end_device_ids.device_id

    @property
    def uplink_id(self) -> str:
        given = next((c for c in self.correlation_ids if c.startswith("as:up:")), None)
        if given is not None:
            return given
        up = self.uplink_message
        return f"{self.logger}:{up.f_cnt if up else ''}:{self.received_at.isoformat()}"
