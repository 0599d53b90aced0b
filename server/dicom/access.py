"""Which calling AE titles may send to Kerma.

`KERMA_DICOM_ALLOWED_AES` is `*` (any AE: the default, for a first install) or a comma-separated
list of titles. When it is a list, devices registered over the API are allowed too: a Device
resource with an identifier in the `urn:kerma:dicom-ae-title` system whose status is not
inactive. An empty list therefore means "registered devices only".
"""

from __future__ import annotations

import time
from collections.abc import Callable

_REGISTRY_SECONDS = 10.0  # a newly registered device may wait this long before it can send


class CallingAeTitles:
    """`allows(title)`; `registered()` gives the AE titles of registered devices."""

    def __init__(self, setting: str, registered: Callable[[], set[str]]) -> None:
        self._any = setting.strip() == "*"
        self._listed = {t.strip() for t in setting.split(",") if t.strip()}
        self._registered = registered
        self._cache: tuple[float, set[str]] = (float("-inf"), set())

    def allows(self, title: str) -> bool:
        title = title.strip()
        if self._any or title in self._listed:
            return True
        return title in self._devices()

    def _devices(self) -> set[str]:
        loaded_at, titles = self._cache
        if time.monotonic() - loaded_at > _REGISTRY_SECONDS:
            titles = self._registered()
            self._cache = (time.monotonic(), titles)
        return titles
