"""The redistributable archive, packaged xz-compressed inside `tracker/history/data/`.

Read through `importlib.resources`, so an editable install, a wheel and a zip all
find it. Decompressed it is byte-identical to the file as published (CC0), so its
sha256 in the import's `runs` row matches the original anyone can download.
"""

from __future__ import annotations

import lzma
from importlib import resources

from tracker.errors import ImportFileError
from tracker.history.archives import Archive


def packaged_name(archive: Archive) -> str:
    if archive.shipped is None:
        raise ValueError(f"{archive.name} is not shipped")
    return f"{archive.shipped}.xz"


def shipped_bytes(archive: Archive) -> bytes:
    """The archive's file as published (decompressed)."""
    name = packaged_name(archive)
    try:
        packed = resources.files("tracker.history").joinpath("data", name).read_bytes()
        return lzma.decompress(packed)
    except (OSError, lzma.LZMAError) as exc:
        raise ImportFileError(
            f"{archive.name}: the packaged file {name} is missing or damaged ({exc}); "
            "reinstall tracker"
        ) from None
