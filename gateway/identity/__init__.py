"""Chain of identity: the crosswalk's view of a message's identifiers, and reconciliation."""

from gateway.identity.reconcile import Binding, Resolution, reconcile

__all__ = ["Binding", "Resolution", "reconcile"]
