"""NXP factory data: the binary the firmware's FactoryDataProvider reads at boot (specs/nxp-factory-data.md).

`tags` is the one tag table, `codec` turns a `FactoryData` into bytes and back (reading like firmware),
`rules` holds the checks NXP's generate.py lacks, `generate` turns generate.py-style inputs into a
validated image, `inspect` explains an image. Import the names below; the modules are implementation.
"""

from __future__ import annotations

from hil.factory_data.codec import (
    FactoryDataError,
    FactoryDataImage,
    Parsed,
    Problem,
    Record,
    decode,
    encode,
    encode_payload,
    find,
    parse,
    replace_record,
    seal,
)
from hil.factory_data.tags import BY_NAME, BY_TAG, TAGS, FactoryData, Kind, TagSpec

__all__ = [
    "BY_NAME",
    "BY_TAG",
    "TAGS",
    "FactoryData",
    "FactoryDataError",
    "FactoryDataImage",
    "Kind",
    "Parsed",
    "Problem",
    "Record",
    "TagSpec",
    "decode",
    "encode",
    "encode_payload",
    "find",
    "parse",
    "replace_record",
    "seal",
]
