"""DIMSE status codes Kerma answers with (PS3.7 Annex C, PS3.4 B.2.3 and F.7.2).

Every failure a DICOM peer can get from Kerma is one of these; handlers return a member, never
a bare number, so the answer to each kind of failure is chosen here.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    SUCCESS = 0x0000
    # the object could not be put on disk: the sender must keep it and try again
    OUT_OF_RESOURCES = 0xA700
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    NO_SUCH_OBJECT_INSTANCE = 0x0112
    INVALID_ATTRIBUTE_VALUE = 0x0106
    MISSING_ATTRIBUTE = 0x0120


# Error ID sent with PROCESSING_FAILURE when an N-SET names a step that is COMPLETED or
# DISCONTINUED already: "Performed Procedure Step Object may no longer be updated" (PS3.4 F.7.2.2)
ERROR_ID_NO_LONGER_UPDATABLE = 0xA710
