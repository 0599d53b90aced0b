"""The spooled file's File Meta Information, written directly, is the group pydicom writes."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom.dsutils import create_file_meta, encode_file_meta

from server.dicom.part10 import part10

X_RAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize(
    ("sop_class", "instance", "syntax", "calling"),
    [
        (X_RAY_RDSR, "1.2.3.4", ExplicitVRLittleEndian, "CT_SCANNER"),  # even lengths
        (CT_IMAGE, "1.2.826.0.1.3680043.8.498.123", JPEGBaseline8Bit, "MAMMO1"),  # odd UIDs
        (X_RAY_RDSR, "2.25.1", DeflatedExplicitVRLittleEndian, "AE3"),  # odd AE title
    ],
)
def test_the_file_meta_is_pydicoms_byte_for_byte(
    sop_class: str, instance: str, syntax: str, calling: str
) -> None:
    meta = create_file_meta(sop_class_uid=sop_class, sop_instance_uid=instance,
                            transfer_syntax=syntax)  # fmt: skip
    meta.SourceApplicationEntityTitle = calling
    expected = b"\x00" * 128 + b"DICM" + encode_file_meta(meta) + b"dataset"
    assert part10(sop_class, instance, syntax, calling, b"dataset") == expected


def test_the_file_reads_back_with_its_dataset() -> None:
    dataset = b"\x08\x00\x60\x00\x02\x00\x00\x00SR"  # (0008,0060) Modality "SR", implicit VR
    data = part10(X_RAY_RDSR, "1.2.3.4", "1.2.840.10008.1.2", "CT_SCANNER", dataset)
    read = dcmread(BytesIO(data))
    assert read.file_meta.MediaStorageSOPClassUID == X_RAY_RDSR
    assert read.file_meta.SourceApplicationEntityTitle == "CT_SCANNER"
    assert read.file_meta.FileMetaInformationGroupLength == len(data) - 132 - 12 - len(dataset)
    assert read.Modality == "SR"
