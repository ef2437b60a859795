"""Bulk provisioning: thousands of devices, each with its own DAC, passcode, salt, verifier and factory data.

`generate_batch(spec, out, count, jobs=..., seed=...)` is the entry point (`hil bulk generate` is a thin
wrapper); `BatchSpec` holds what all devices share, `Planner` decides each device's parameters from the
batch key and its index, `DeviceFactory` builds one device in memory and `BatchDir` lays the batch out on
disk crash-safely. See run.py for why the work is split this way.
"""

from __future__ import annotations

from hil.bulk.device import BatchSpec, Device, DeviceFactory, check_batch
from hil.bulk.plan import MAX_DEVICES, DevicePlan, Planner, key_from_seed
from hil.bulk.run import BatchResult, default_jobs, generate_batch
from hil.bulk.writer import MANIFEST_FIELDS, BatchDir

__all__ = [
    "MANIFEST_FIELDS",
    "MAX_DEVICES",
    "BatchDir",
    "BatchResult",
    "BatchSpec",
    "Device",
    "DeviceFactory",
    "DevicePlan",
    "Planner",
    "check_batch",
    "default_jobs",
    "generate_batch",
    "key_from_seed",
]
