"""De-identified copies of dose reports for registries.

DICOM PS3.15 Annex E, the Basic Application Confidentiality Profile, as the tables of the
standard (2026c) that dicom-anonymizer implements, with the options a dose registry needs:
Clean Structured Content (the dose values stay; person names, identifying text items of
mappings/dicom/deidentify.csv and UIDs in the content tree are cleaned), Retain Longitudinal
Temporal Information with Full Dates (the examination's dates and times), Retain Patient
Characteristics (age, sex, size, weight). The library applies the profile to the top level of
the object; Kerma applies its rules in every sequence item too, and then sweeps the whole
object: every UID that is not a registered one becomes a keyed one (HMAC with the site's
pseudonym key, under 2.25: the same study has the same UID in every copy, as the profile's
"internally consistent" asks) and every person name is removed. The Patient ID becomes a
keyed pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import Any

from dicomanonymizer.simpledicomanonymizer import (
    anonymize_dataset,
    delete_or_empty_or_replace_UID,
    initialize_actions,
    keep,
    replace_UID,
)
from pydicom import Dataset, dcmread
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from server.mappings import read_csv_rows

Rule = Callable[[Dataset, Any], None]
_STANDARD = "dicomfields_2026c"
_CONTENT = (0x0040, 0xA730)
_KEPT = (  # longitudinal temporal information, patient characteristics
    (0x0008, 0x0020), (0x0008, 0x0030), (0x0008, 0x0021), (0x0008, 0x0031),
    (0x0008, 0x0023), (0x0008, 0x0033), (0x0008, 0x0022), (0x0008, 0x0032),
    (0x0008, 0x002A), (0x0010, 0x1010), (0x0010, 0x0040), (0x0010, 0x1020),
    (0x0010, 0x1030),
)  # fmt: skip
_METHOD = (  # CID 7050: what was done, for the receiver
    ("113100", "Basic Application Confidentiality Profile"),
    ("113104", "Clean Structured Content Option"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)
REMOVED = "REMOVED"


def deidentified(data: bytes, key: bytes) -> bytes:
    """A de-identified copy of a DICOM object (its bytes), keyed by the site's pseudonym key."""
    dataset = dcmread(BytesIO(data))
    uid = _KeyedUids(key)
    actions = initialize_actions(_STANDARD)
    # every instance UID is replaced wherever it is, by one rule: the sweep below
    rules: dict[Any, Rule] = {
        tag: keep if action in (replace_UID, delete_or_empty_or_replace_UID) else action
        for tag, action in actions.items()
        if len(tag) == 2
    }
    rules.update({tag: keep for tag in _KEPT})
    rules[_CONTENT] = lambda ds, tag: _clean_content(ds[tag].value if tag in ds else [],
                                                     _identifying_text())  # fmt: skip
    groups = [tag for tag in actions if len(tag) == 4]  # repeating groups: all removed
    original_patient = str(dataset.get("PatientID", ""))
    # the library's rules for single attributes, at the top level; it would also walk the
    # whole object once per repeating group and once for the private tags, making pydicom
    # convert every value (seconds for an RF report of hundreds of events): the sweep does
    # both, converting only sequences, UIDs and names
    anonymize_dataset(dataset, base_rules_gen=lambda: rules, delete_private_tags=False)
    _every_level(dataset, rules)  # the library applies them to the top level only
    _sweep(dataset, uid, groups)
    dataset.PatientID = (
        "P" + uid.digest(f"patient:{original_patient}")[:16] if original_patient else ""
    )
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "Basic Profile, Clean SC, Full Dates, Patient Characteristics"
    dataset.DeidentificationMethodCodeSequence = Sequence([_code(c, m) for c, m in _METHOD])
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _vr(dataset: Dataset, tag: BaseTag) -> str | None:
    """An element's VR without converting its value (values left as read are written back as
    read, in microseconds): as read, or the dictionary's where the file gives none or UN."""
    vr = dataset.get_item(tag).VR
    if vr in (None, "UN") and dictionary_has_tag(tag):
        return str(dictionary_VR(tag))
    return vr


def _items(dataset: Dataset, tag: BaseTag) -> list[Dataset]:
    return list(dataset[tag].value or [])


def _every_level(dataset: Dataset, rules: dict[Any, Rule]) -> None:
    """The profile's rules for single attributes, in every item of every sequence."""
    for tag in list(dataset.keys()):
        if tag == _CONTENT or _vr(dataset, tag) != "SQ":
            continue
        for item in _items(dataset, tag):
            for rule_tag, action in rules.items():
                if rule_tag in item:
                    action(item, rule_tag)
            _every_level(item, rules)


def _sweep(dataset: Dataset, uid: _KeyedUids, groups: list[tuple[int, int, int, int]]) -> None:
    """Wherever they are: a UID that is not a registered one (a SOP class, a coding scheme)
    becomes its keyed UID; a person's name is removed; so are private attributes and those of
    the repeating groups (curves, overlays)."""
    for tag in list(dataset.keys()):
        if tag.is_private or any(
            tag.group & mask_group == group & mask_group
            and tag.element & mask_element == element & mask_element
            for group, element, mask_group, mask_element in groups
        ):
            del dataset[tag]
            continue
        vr = _vr(dataset, tag)
        if vr == "SQ":
            for item in _items(dataset, tag):
                _sweep(item, uid, groups)
        elif vr in ("UI", "PN"):
            _sweep_value(dataset[tag], uid)


def _sweep_value(element: DataElement, uid: _KeyedUids) -> None:
    if element.VR == "UI" and element.value:
        values = element.value if element.VM > 1 else [element.value]
        replaced = [uid.of(str(v)) if UID(str(v)).name == str(v) else v for v in values]
        element.value = replaced if element.VM > 1 else replaced[0]
    elif element.VR == "PN" and element.value:
        element.value = REMOVED


class _KeyedUids:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def of(self, uid: str) -> str:
        return f"2.25.{int(self.digest(f'uid:{uid}')[:32], 16)}"


def _clean_content(items: Iterable[Dataset], identifying: frozenset[str]) -> None:
    """Clean Structured Content: walk the SR tree, keep the values, remove the text items
    that identify (UIDs and names are swept with the rest of the object)."""
    for item in items:
        names = item.get("ConceptNameCodeSequence") or [Dataset()]
        if item.get("ValueType") == "TEXT" and str(names[0].get("CodeValue", "")) in identifying:
            item.TextValue = REMOVED
        _clean_content(item.get("ContentSequence") or [], identifying)


def _identifying_text() -> frozenset[str]:
    return frozenset(row["code"] for row in read_csv_rows("dicom/deidentify.csv"))


def _code(value: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
    return code
