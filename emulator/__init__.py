"""The batchconf emulator: an OpenAI-compatible (and other dialects') batch service.

In-process: `Emulator()` gives the official `openai` SDK a client with no socket. As a
server: `batchconf serve`. Provider facts come from the profiles in `schemas`.
"""

from ._api_faults import ApiFault, ApiFaultSet
from ._backend import HttpBackend, LineRequest, MockBackend, ModelBackend, Reply
from ._clock import Clock, RealClock, VirtualClock
from ._emulator import Emulator, version
from ._faults import FAULT_BODY_KEY, Fault, FaultSet
from ._mutations import Mutation, Mutations
from ._provider import Provider
from ._timing import TimingModel
from ._transport import AsyncASGITransport, SyncASGITransport
from ._webhooks import WebhookDispatcher
from .dialects import DIALECTS, catalogue_for


def mutations_for(profile: str | object = "openai") -> dict[str, str]:
    """The named mutations an emulator of `profile` offers: name -> the violation it makes."""
    from schemas import Profile, load_profile

    loaded = profile if isinstance(profile, Profile) else load_profile(str(profile))
    return {m.name: m.description for m in catalogue_for(loaded)}


#: The mutations of the default (openai) profile.
MUTATIONS = mutations_for("openai")

__all__ = [
    "DIALECTS",
    "FAULT_BODY_KEY",
    "MUTATIONS",
    "ApiFault",
    "ApiFaultSet",
    "AsyncASGITransport",
    "Clock",
    "Emulator",
    "Fault",
    "FaultSet",
    "HttpBackend",
    "LineRequest",
    "MockBackend",
    "ModelBackend",
    "Mutation",
    "Mutations",
    "Provider",
    "RealClock",
    "Reply",
    "SyncASGITransport",
    "TimingModel",
    "VirtualClock",
    "WebhookDispatcher",
    "mutations_for",
    "version",
]
