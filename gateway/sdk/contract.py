"""The adapter contract, as adapters see it (defined in gateway.adapter_contract)."""

from gateway.adapter_contract import (
    Adapter,
    Configurable,
    Decoded,
    Example,
    HasHttpRoutes,
    InboundContext,
    Running,
)

__all__ = ["Adapter", "Configurable", "Decoded", "Example", "HasHttpRoutes", "InboundContext", "Running"]
