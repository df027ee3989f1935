"""The dialects the emulator speaks, by the name a profile's `dialect` gives.

A new wire protocol (Anthropic Message Batches, Bedrock's invocation jobs, Vertex batch
prediction) is one more package here implementing `Dialect`; a new provider of a known
dialect is only a profile.
"""

from __future__ import annotations

from schemas import Profile

from .._mutations import Mutation
from ..model.mutations import model_mutations
from ._base import Dialect, Surface
from .openai import DIALECT as OPENAI
from .scaigrid import DIALECT as SCAIGRID

__all__ = ["DIALECTS", "Dialect", "Surface", "catalogue_for", "dialect_for"]

DIALECTS: dict[str, Dialect] = {OPENAI.name: OPENAI, SCAIGRID.name: SCAIGRID}


def dialect_for(profile: Profile) -> Dialect:
    """The dialect `profile` speaks; NotImplementedError for one without code yet."""
    dialect = DIALECTS.get(profile.dialect)
    if dialect is None:
        raise NotImplementedError(f"the emulator does not serve the {profile.dialect!r} dialect yet")
    return dialect


def catalogue_for(profile: Profile) -> list[Mutation]:
    """Every mutation an emulator of `profile` offers: the model layer's, then the wire's."""
    return [*model_mutations(profile), *dialect_for(profile).mutations(profile)]
