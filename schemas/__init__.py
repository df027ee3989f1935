"""The batch contract as data: JSON Schemas for every wire object and provider profiles.

Both the emulator and the conformance suite read the contract from here, so a provider fact
is written once, with its source.
"""

from ._facts import ProfileError, Provenance
from ._overlay import overlay_text
from ._profile import (
    ROLES,
    CompatRules,
    Deviation,
    ErrorSpec,
    Lifecycle,
    LineError,
    ModelRules,
    Profile,
    RenderedError,
    UnknownProfileError,
    WebhookRules,
    load_profile,
    profile_names,
)
from ._validation import (
    SchemaValidationError,
    SchemaValidator,
    SchemaViolation,
    UnknownSchemaError,
    get_validator,
    load_schema,
    schema_names,
    validate,
)

__all__ = [
    "ROLES",
    "CompatRules",
    "Deviation",
    "ErrorSpec",
    "Lifecycle",
    "LineError",
    "ModelRules",
    "Profile",
    "ProfileError",
    "Provenance",
    "RenderedError",
    "SchemaValidationError",
    "SchemaValidator",
    "SchemaViolation",
    "UnknownProfileError",
    "UnknownSchemaError",
    "WebhookRules",
    "get_validator",
    "load_profile",
    "load_schema",
    "overlay_text",
    "profile_names",
    "schema_names",
    "validate",
]
