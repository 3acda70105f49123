"""CGT interoperability gateway: one chain of identity across hospitals, couriers and manufacturers."""

__version__ = "0.1.0"
