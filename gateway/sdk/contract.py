"""The adapter contract, as adapters see it (defined in gateway.adapter_contract)."""

from gateway.adapter_contract import (
    Adapter,
    Decoded,
    Example,
    HasHttpRoutes,
    InboundContext,
    Running,
)

__all__ = ["Adapter", "Decoded", "Example", "HasHttpRoutes", "InboundContext", "Running"]
