"""The fast SR reader against pydicom's full parse, on every SR of the corpus: the same content
tree, item by item (concept, value type, relationship, values, children, paths), or none."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.filereader import read_file_meta_info

from server.dicom import fast_sr
from server.dicom.sr import Item

CORPUS = Path(__file__).parent.parent / "data" / "dicom"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88."  # the structured reports' SOP classes
# by the class in the file meta, as a PACS knows an SR: parsing every file to find its content
# took 2 s of each test process while collecting
SR_FILES = [
    p for p in sorted(CORPUS.rglob("*.dcm"))
    if str(read_file_meta_info(p).get("MediaStorageSOPClassUID", "")).startswith(SR_CLASS)
]  # fmt: skip


def _items(item: Item) -> list[Item]:
    return [item, *(i for child in item.children for i in _items(child))]


def test_the_corpus_has_many_trees() -> None:
    assert len(SR_FILES) >= 30


@pytest.mark.parametrize("path", SR_FILES, ids=lambda p: p.name)
def test_the_fast_reader_builds_the_tree_pydicom_builds(path: Path) -> None:
    _same_trees(path.read_bytes())


@pytest.mark.parametrize(
    ("charset", "text"),
    [("ISO_IR 192", "Schädel-Übersicht 頭部"), ("ISO_IR 100", "Schädel-Übersicht"),
     ("ISO_IR 144", "Череп"), (["", "ISO 2022 IR 87"], "頭部単純CT")],
)  # fmt: skip
def test_text_in_the_files_character_set_is_read_as_pydicom_reads_it(
    charset: str | list[str], text: str
) -> None:
    ds = pydicom.dcmread(CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm")
    ds.SpecificCharacterSet = charset
    procedure = ds.ContentSequence[0].ConceptCodeSequence[0]
    procedure.CodeMeaning = text
    out = io.BytesIO()
    ds.save_as(out)
    _same_trees(out.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unknown encoding" for a character set pydicom knows
        _, parsed, encodings = fast_sr.split(out.getvalue())
        assert parsed is not None and fast_sr.build(parsed, encodings, "")[0].code.meaning == text


def _same_trees(raw: bytes) -> None:
    full = Item.of(pydicom.dcmread(io.BytesIO(raw), force=True))
    try:
        header, parsed, encodings = fast_sr.split(raw)
    except fast_sr.Unsupported:
        pytest.skip("a transfer syntax the fast reader leaves to pydicom")
    if parsed is None:  # an SR without content (ESR_non-dose.dcm)
        assert (header, full.children) == (raw, ())
        return
    root = Item.of(pydicom.dcmread(io.BytesIO(header), force=True))
    fast = fast_sr.build(parsed, encodings, root.path)
    expected, got = _items(full)[1:], [i for child in fast for i in _items(child)]
    assert len(got) == len(expected)
    for want, have in zip(expected, got, strict=True):
        assert (have.path, have.concept, have.value_type, have.relationship) == (
            want.path, want.concept, want.value_type, want.relationship)  # fmt: skip
        assert (have.text, have.code, have.unit, have.uid, have.datetime) == (
            want.text, want.code, want.unit, want.uid, want.datetime), want.path  # fmt: skip
        assert have.number == want.number or (
            have.number != have.number and want.number != want.number
        ), want.path
