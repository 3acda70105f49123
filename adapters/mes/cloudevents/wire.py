"""The gateway's JSON MES event dialect, as a manufacturer sends it: a CloudEvents 1.0 event in
structured JSON mode, `type` org.cgt.mes.<event>, `subject` the order's COI, `id` the event's id
(the idempotency key), and `data` per event below. These models are the dialect's contract: the
JSON Schemas in contracts/mes/ are generated from them. Fields we do not use are passed over, so a
manufacturer may send more."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TYPE_PREFIX = "org.cgt.mes."


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class MesCloudEvent(_Wire):
    """The envelope (CloudEvents 1.0 structured mode); `data` is read by its type's model."""

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200, description="the event's id: resending it is a repeat")
    source: str = Field(min_length=1, max_length=500, description="the MES, e.g. /mes/plant-1")
    type: str = Field(max_length=100, pattern=r"^[A-Za-z0-9_.-]+$", description="org.cgt.mes.<event>")
    subject: str | None = Field(default=None, max_length=40, description="the order's COI")
    time: AwareDatetime
    datacontenttype: Literal["application/json"] | None = None
    data: dict[str, object] = Field(default_factory=dict)


class Scanned(_Wire):
    """What was scanned on the bag's label at receipt."""

    coi: str = Field(min_length=1, max_length=40)
    din: str = Field(min_length=13, max_length=16, description="ISBT 128 DIN, check character optional")


class SlotConfirmedData(_Wire):
    slot_id: str = Field(min_length=1, max_length=100)
    slot_start: AwareDatetime | None = None


class MaterialReceivedData(_Wire):
    scanned: Scanned
    received_at: AwareDatetime
    temperature_c: float | None = Field(default=None, ge=-273.15, le=100)
    condition: str | None = Field(default=None, max_length=50, description="intact, damaged, ...")


class BatchData(_Wire):
    batch_id: str = Field(min_length=1, max_length=100, description="the MES's batch / lot id")


class StepCompletedData(BatchData):
    step: str = Field(min_length=1, max_length=100)


class DeviationOpenedData(BatchData):
    deviation_id: str = Field(min_length=1, max_length=100)
    severity: str | None = Field(default=None, max_length=50)


class DeviationClosedData(BatchData):
    deviation_id: str = Field(min_length=1, max_length=100)
    outcome: str | None = Field(default=None, max_length=200)


class QcResultData(BatchData):
    test: str = Field(min_length=1, max_length=100, description="sterility, mycoplasma, endotoxin, ...")
    result: Literal["pass", "fail", "pending"]
    value: float | str | None = None
    unit: str | None = Field(default=None, max_length=50)
    specification: str | None = Field(default=None, max_length=200)


class ReleasedData(BatchData):
    certificate_of_analysis: str | None = Field(default=None, max_length=200, description="its reference")


class FailedData(BatchData):
    reason: str | None = Field(default=None, max_length=500)


class ProductShippedData(BatchData):
    shipment_id: str | None = Field(default=None, max_length=100)
    courier: str | None = Field(default=None, max_length=100)


# The data model of each event, by the name in its type (org.cgt.mes.<name>).
DATA: dict[str, type[_Wire]] = {
    "slot_confirmed": SlotConfirmedData,
    "material_received": MaterialReceivedData,
    "manufacturing_started": BatchData,
    "step_completed": StepCompletedData,
    "deviation_opened": DeviationOpenedData,
    "deviation_closed": DeviationClosedData,
    "qc_result": QcResultData,
    "released": ReleasedData,
    "failed": FailedData,
    "product_shipped": ProductShippedData,
}
