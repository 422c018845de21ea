"""Contract definitions and bindings. Callers own the transaction: these functions add and flush."""

from __future__ import annotations

from driftwarden.contracts.scan import DriftItem, DriftScan, scan_drift

__all__ = ["DriftItem", "DriftScan", "scan_drift"]
