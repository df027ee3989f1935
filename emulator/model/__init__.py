"""The emulator's model layer: files, batches, the lifecycle and the engine, with no HTTP.

It speaks neutral records (`records`) and canonical roles; the dialects above it
(`emulator.dialects`) parse their wire into its commands and serialize its records. Its
seams (`seams`) are where the named mutations act. Imports go one way: a dialect imports
the model layer, the model layer imports no dialect and nothing of HTTP.
"""

from .batches import BatchService, CreateBatch
from .errors import ApiError
from .files import FileService
from .records import BatchRecord, FileRecord, InputObject, InputRef, Owner

__all__ = [
    "ApiError",
    "BatchRecord",
    "BatchService",
    "CreateBatch",
    "FileRecord",
    "FileService",
    "InputObject",
    "InputRef",
    "Owner",
]
