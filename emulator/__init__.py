"""The batchconf emulator: an OpenAI-compatible (and other dialects') batch service.

In-process: `Emulator()` gives the official `openai` SDK a client with no socket. As a
server: `batchconf serve`. Provider facts come from the profiles in `schemas`.
"""

from ._backend import HttpBackend, LineRequest, MockBackend, ModelBackend, Reply
from ._clock import Clock, RealClock, VirtualClock
from ._emulator import Emulator, version
from ._faults import FAULT_BODY_KEY, Fault, FaultSet
from ._mutations import CATALOGUE as MUTATIONS
from ._timing import TimingModel
from ._transport import AsyncASGITransport, SyncASGITransport

__all__ = [
    "FAULT_BODY_KEY",
    "MUTATIONS",
    "AsyncASGITransport",
    "Clock",
    "Emulator",
    "Fault",
    "FaultSet",
    "HttpBackend",
    "LineRequest",
    "MockBackend",
    "ModelBackend",
    "RealClock",
    "Reply",
    "SyncASGITransport",
    "TimingModel",
    "VirtualClock",
    "version",
]
