"""How an archived response body is stored: the codecs of the `payloads` table.

The archive keeps every body a collection received so `tracker reparse` can run the
parsers again. At crawl scale most bodies are a small change of the previous body of
the same stream (the same source, target, fetch kind and page): NodeInfo and
instance documents change a few digits each crawl, and peer lists add and drop a few
names a day out of thousands. So a body is stored against that previous version:

- `zlib`: the body, zlib-compressed. Self-contained. Every row written before
  revision 0005 has this codec, and it is still written for the first version of a
  stream and whenever a delta would not be smaller.
- `zdelta`: the body compressed with the previous version's bytes as zlib's preset
  dictionary (`zlib.compressobj(zdict=...)`), so what did not change costs a few
  bytes of back-references. zlib looks back 32 KiB at most, so a longer body is cut
  into 16 KiB segments, each with the 32 KiB of the previous version around the same
  relative position as its dictionary (a relay's 100 kB listHosts page then costs
  about 1 kB when a few counts changed). Byte-identical.
- `setfull` and `setdiff`: for the set-like kinds (`SET_LIKE_KINDS`: peer lists),
  whose order and layout carry no meaning. The body is parsed as JSON, each listed
  array becomes the sorted list of its elements' compact JSON texts (a multiset:
  duplicates and junk entries are kept, they are what the parsers count), and the
  rest of the document is kept as compact JSON (the "frame"). `setfull` stores all
  of it; `setdiff` stores the frame, which elements of the previous version went
  (their positions) and which came (their texts). A list of 80,000 peers with 0.5%
  churn then costs a few kilobytes instead of several hundred.

Reading a set-like row back gives the canonical body: the same JSON values with the
arrays sorted, in compact UTF-8 JSON. It is not byte-identical to what the server
sent (so its sha256 is not the row's key), but every parser reads the same values
from it: the same elements as many times each, the same frame. A body is stored this
way only when that holds by construction: it is strict UTF-8 without a byte-order
mark, `json.loads` reads it, and each listed path holds an array; anything else (an
HTML error page, a truncated list) is stored byte-identical with `zlib`/`zdelta`, so
a parser's failures replay exactly too. `tests/test_reparse_payloads.py` proves that
`tracker reparse` gives identical observations (`peers_total` included).

A delta's `depth` is its base's plus one; a self-contained row has depth 0. At
`MAX_DEPTH` the next version is stored whole again, so reading any body decodes at
most `MAX_DEPTH` deltas on top of one self-contained row.
"""

from __future__ import annotations

import json
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from tracker.parsers.fediverse import LEMMY_INSTANCES, MISSKEY_INSTANCES, PEERS

ZLIB = "zlib"
ZDELTA = "zdelta"
SETFULL = "setfull"
SETDIFF = "setdiff"
SELF_CONTAINED = frozenset({ZLIB, SETFULL})

Path = tuple[str, ...]

SET_LIKE_KINDS: Mapping[str, tuple[Path, ...]] = {
    PEERS: ((),),  # Mastodon /api/v1/instance/peers: an array of host names
    MISSKEY_INSTANCES: ((),),  # Misskey /api/federation/instances: a page of objects
    LEMMY_INSTANCES: (  # Lemmy /api/v3/federated_instances
        ("federated_instances", "linked"),
        ("federated_instances", "allowed"),
        ("federated_instances", "blocked"),
    ),
}
"""Fetch kinds whose bodies are sets: the arrays at these paths are read for their
elements only (counted, deduplicated, normalised), never for their order."""

MAX_DEPTH = 31
"""Deltas on top of a self-contained row, at most: a full copy every 32 versions.
Peer lists change once a day (Mastodon caches them), so a stream of a big list is
stored whole about monthly; NodeInfo changes every crawl, whole about weekly at 4
crawls a day. Reading a body decodes at most this many deltas (microseconds each for
documents, about a millisecond for an 80,000-name list)."""

LEVEL = 9
"""zlib level for deltas and small bodies: they are small, so the best level is cheap."""
LARGE = 256 * 1024
LARGE_LEVEL = 6
"""Bodies over `LARGE` bytes are compressed whole at level 6: level 9 takes about
twice the time on them for 1-2% less."""

WINDOW = 32 * 1024
"""How far back zlib's matches reach: the useful part of a preset dictionary."""
SEGMENT = 16 * 1024
LEAD = 8 * 1024
"""A long body is compressed in `SEGMENT`-byte pieces. The piece at relative position
r gets as dictionary the `WINDOW` bytes of the previous version starting `LEAD` bytes
before the same relative position, so every byte of the piece can refer to the
previous version within `LEAD` bytes either side of where it was."""

_SINGLE = b"\x01"
_SEGMENTED = b"\x02"


def varint(number: int) -> bytes:
    """LEB128: 7 bits a byte, the high bit set while more bytes follow."""
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    number = shift = 0
    while True:
        byte = data[position]
        position += 1
        number |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return number, position
        shift += 7


def compress(data: bytes) -> bytes:
    return zlib.compress(data, LARGE_LEVEL if len(data) > LARGE else LEVEL)


# -- set-like bodies -----------------------------------------------------------------


def _sentinel(index: int) -> str:
    """What stands in the frame where array `index` was; a NUL never survives into
    compact JSON unescaped, and the frame is checked to hold each exactly once."""
    return f"\x00tracker-set-{index}\x00"


class SetBody:
    """A set-like body as stored: the frame (compact JSON with a sentinel string where
    each array was) and each array's elements as sorted compact JSON texts."""

    __slots__ = ("_body", "arrays", "frame")

    def __init__(self, frame: str, arrays: tuple[list[str], ...]) -> None:
        self.frame = frame
        self.arrays = arrays
        self._body: bytes | None = None

    def body(self) -> bytes:
        """The canonical body: the frame with each array written back, sorted (built
        once: a reparse reads a body once, a writer never)."""
        if self._body is None:
            # Each sentinel is in the frame exactly once (canonical_set checks it);
            # the pieces are cut from the frame alone, so an element that happens to
            # spell a sentinel cannot be mistaken for one.
            places = sorted(
                (self.frame.index(json.dumps(_sentinel(i))), i) for i in range(len(self.arrays))
            )
            pieces = []
            start = 0
            for place, index in places:
                pieces += [self.frame[start:place], "[", ",".join(self.arrays[index]), "]"]
                start = place + len(json.dumps(_sentinel(index)))
            pieces.append(self.frame[start:])
            self._body = "".join(pieces).encode("utf-8")
        return self._body

    @property
    def weight(self) -> int:
        """About the bytes it holds in memory (for the caches' bounds)."""
        held = len(self.frame) + len(self._body or b"")
        return held + sum(sum(map(len, lines)) + 60 * len(lines) for lines in self.arrays)


def canonical_set(body: bytes, paths: Sequence[Path]) -> SetBody | None:
    """The set form of a body of a set-like kind, or None when it has none.

    None unless the body is strict UTF-8 JSON without a byte-order mark and at least
    one of `paths` holds an array: only then does every parser read the same values
    from the canonical body as from the original (see the module docstring).
    """
    if body.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    found: list[list[Any]] = []
    for path in paths:
        if path == ():
            if isinstance(document, list):
                found.append(document)
                document = _sentinel(len(found) - 1)
            continue
        parent = document
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(path[-1]), list):
            found.append(parent[path[-1]])
            parent[path[-1]] = _sentinel(len(found) - 1)
    if not found:
        return None
    for ascii_only in (False, True):
        try:
            frame = json.dumps(document, ensure_ascii=ascii_only, separators=(",", ":"))
            arrays = tuple(sorted(_texts(items, ascii_only)) for items in found)
            (frame + "".join("".join(lines) for lines in arrays)).encode("utf-8")
        except UnicodeEncodeError:
            continue  # a lone surrogate (from a \\udXXX escape): write escapes instead
        except (ValueError, RecursionError):
            return None
        if all(frame.count(json.dumps(_sentinel(i))) == 1 for i in range(len(found))):
            return SetBody(frame, arrays)
        return None
    return None


def _texts(items: Iterable[Any], ascii_only: bool) -> list[str]:
    """Each element's compact JSON text. Strings (nearly every element of a peer list)
    go through the json module's C string encoder: 80,000 names in about 10 ms."""
    string = encode_basestring_ascii if ascii_only else encode_basestring
    return [
        string(item)
        if type(item) is str
        else json.dumps(item, ensure_ascii=ascii_only, separators=(",", ":"))
        for item in items
    ]


def _set_text(frame: str, headers: Sequence[str], blocks: Sequence[Sequence[str]]) -> bytes:
    """Lines: the frame, then per array its header line and its lines. No line holds a
    newline (compact JSON escapes it), and no element line starts with '#'."""
    lines = [frame]
    for header, block in zip(headers, blocks, strict=True):
        lines.append("#" + header)
        lines.extend(block)
    return "\n".join(lines).encode("utf-8")


def encode_setfull(state: SetBody) -> bytes:
    headers = [str(len(lines)) for lines in state.arrays]
    return compress(_set_text(state.frame, headers, state.arrays))


def decode_setfull(stored: bytes) -> SetBody:
    lines = zlib.decompress(stored).decode("utf-8").split("\n")
    frame, position = lines[0], 1
    arrays = []
    while position < len(lines):
        header = lines[position]
        if not header.startswith("#"):
            raise ValueError("setfull: an array header was expected")
        count = int(header[1:])
        arrays.append(lines[position + 1 : position + 1 + count])
        position += 1 + count
    return SetBody(frame, tuple(arrays))


def _pack_positions(positions: Sequence[int]) -> str:
    """Ascending positions as base-36 gaps: short, and zlib packs them further."""
    previous = 0
    gaps = []
    for position in positions:
        gaps.append(_base36(position - previous))
        previous = position
    return ",".join(gaps)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if number == 0:
        return "0"
    out = []
    while number:
        number, rest = divmod(number, 36)
        out.append(digits[rest])
    return "".join(reversed(out))


def _unpack_positions(text: str) -> list[int]:
    positions = []
    total = 0
    for gap in text.split(",") if text else ():
        total += int(gap, 36)
        positions.append(total)
    return positions


def set_changes(old: list[str], new: list[str]) -> tuple[list[int], list[str]]:
    """Positions in `old` (sorted) that go, and the sorted texts that come, so that
    `apply_changes(old, ...) == new`. Multisets: of n equal texts, the first go.

    Only the texts in one list and not the other, or repeated in either, are
    counted (by bisection in the sorted lists): the set operations run in C, so an
    80,000-name list is diffed in a few milliseconds."""
    old_set, new_set = set(old), set(new)
    texts = old_set ^ new_set
    if len(old_set) != len(old):
        texts |= _repeated(old)
    if len(new_set) != len(new):
        texts |= _repeated(new)
    positions: list[int] = []
    added: list[str] = []
    for text in texts:
        start = bisect_left(old, text)
        have = bisect_right(old, text, start) - start
        want = bisect_right(new, text) - bisect_left(new, text)
        if have > want:
            positions.extend(range(start, start + have - want))
        else:
            added.extend([text] * (want - have))
    positions.sort()
    added.sort()
    return positions, added


def _repeated(lines: list[str]) -> set[str]:
    """The texts a sorted list holds more than once."""
    return {a for a, b in zip(lines, islice(lines, 1, None), strict=False) if a == b}


def apply_changes(old: list[str], positions: Sequence[int], added: Sequence[str]) -> list[str]:
    """The sorted list after a diff: slices of `old` around the removed positions,
    then each added text inserted at its sorted place (copies in C, not per element)."""
    if positions:
        kept: list[str] = []
        start = 0
        for position in positions:
            kept.extend(old[start:position])
            start = position + 1
        kept.extend(old[start:])
    else:
        kept = old
    if not added:
        return kept if positions else list(old)
    result: list[str] = []
    start = 0
    for text in added:
        place = bisect_left(kept, text, start)
        result.extend(kept[start:place])
        result.append(text)
        start = place
    result.extend(kept[start:])
    return result


def encode_setdiff(base: SetBody, state: SetBody) -> bytes | None:
    """The diff of `state` against `base`, or None when their frames hold a different
    number of arrays (a Lemmy answer that lost its `blocked` list, say)."""
    if len(base.arrays) != len(state.arrays):
        return None
    headers: list[str] = []
    removed_texts: list[str] = []
    added_blocks: list[list[str]] = []
    for old, new in zip(base.arrays, state.arrays, strict=True):
        positions, added = set_changes(old, new)
        headers.append(f"{len(added)} {_pack_positions(positions)}")
        removed_texts.extend(old[p] for p in positions)
        added_blocks.append(added)
    head = compress(_set_text(state.frame, headers, [[] for _ in headers]))
    # The texts that came, compressed with those that went as dictionary: a Misskey
    # server object whose counts moved is then a few bytes, not a new object.
    dictionary = "\n".join(removed_texts).encode("utf-8")[-WINDOW:]
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=dictionary or b"\n")
    tail = packer.compress("\n".join(t for block in added_blocks for t in block).encode("utf-8"))
    tail += packer.flush()
    return varint(len(head)) + head + tail


def decode_setdiff(base: SetBody, stored: bytes) -> SetBody:
    size, position = read_varint(stored, 0)
    lines = zlib.decompress(stored[position : position + size]).decode("utf-8").split("\n")
    frame, headers = lines[0], [line[1:] for line in lines[1:]]
    if len(headers) != len(base.arrays):
        raise ValueError("setdiff: its base holds another number of arrays")
    changes = []
    removed_texts: list[str] = []
    for header, old in zip(headers, base.arrays, strict=True):
        number, _, packed = header.partition(" ")
        positions = _unpack_positions(packed)
        removed_texts.extend(old[p] for p in positions)
        changes.append((int(number), positions))
    dictionary = "\n".join(removed_texts).encode("utf-8")[-WINDOW:]
    unpacker = zlib.decompressobj(-15, zdict=dictionary or b"\n")
    tail = unpacker.decompress(stored[position + size :]) + unpacker.flush()
    added_all = tail.decode("utf-8").split("\n") if tail else []
    arrays = []
    start = 0
    for (count, positions), old in zip(changes, base.arrays, strict=True):
        added = added_all[start : start + count]
        start += count
        arrays.append(apply_changes(old, positions, added))
    return SetBody(frame, tuple(arrays))


# -- byte deltas ---------------------------------------------------------------------


def _windows(size: int, base_size: int) -> list[tuple[int, int, int]]:
    """(start, end) of each segment of the new body and where its dictionary starts."""
    out = []
    for start in range(0, max(size, 1), SEGMENT):
        middle = start * base_size // max(size, 1)
        begin = max(0, min(middle - LEAD, base_size - WINDOW))
        out.append((start, min(size, start + SEGMENT), begin))
    return out


def encode_zdelta(base: bytes, body: bytes) -> bytes:
    if len(base) <= WINDOW and len(body) <= WINDOW:
        packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=base or b"\n")
        return _SINGLE + packer.compress(body) + packer.flush()
    parts = [_SEGMENTED, varint(len(body))]
    for start, end, begin in _windows(len(body), len(base)):
        dictionary = base[begin : begin + WINDOW] or b"\n"
        packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=dictionary)
        piece = packer.compress(body[start:end]) + packer.flush()
        parts += [varint(len(piece)), piece]
    return b"".join(parts)


def decode_zdelta(base: bytes, stored: bytes) -> bytes:
    if stored[:1] == _SINGLE:
        unpacker = zlib.decompressobj(-15, zdict=base or b"\n")
        return unpacker.decompress(stored[1:]) + unpacker.flush()
    if stored[:1] != _SEGMENTED:
        raise ValueError("zdelta: unknown layout")
    size, position = read_varint(stored, 1)
    out = []
    for _start, _end, begin in _windows(size, len(base)):
        length, position = read_varint(stored, position)
        dictionary = base[begin : begin + WINDOW] or b"\n"
        unpacker = zlib.decompressobj(-15, zdict=dictionary)
        out.append(unpacker.decompress(stored[position : position + length]) + unpacker.flush())
        position += length
    return b"".join(out)


# -- choosing and reading ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Decoded:
    """A body as read back, and its set form when it is stored as a set."""

    sets: SetBody | None = None
    raw: bytes | None = None

    @property
    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        assert self.sets is not None
        return self.sets.body()

    @property
    def weight(self) -> int:
        return self.sets.weight if self.sets is not None else len(self.raw or b"")


@dataclass(frozen=True)
class Base:
    """The previous version of a stream, as a new version can be stored against it."""

    sha256: str
    depth: int
    decoded: Decoded


@dataclass(frozen=True)
class Encoded:
    codec: str
    stored: bytes
    base_sha256: str | None
    depth: int
    decoded: Decoded
    """What reading the row back gives: the next version's base."""


CLEARLY = 0.9
SAVING = 64
"""A delta is kept only when it is under 90% of the whole and at least 64 bytes
smaller: a delta that saves a few bytes would still tie the row to its base (every
read decodes the base, and `db prune` keeps it), and a row costs about 250 bytes of
keys and index entries anyway."""


def _worth(delta: bytes, whole: bytes) -> bool:
    return len(delta) < len(whole) * CLEARLY and len(whole) - len(delta) >= SAVING


SNAPSHOT_CHECK = 8
"""A set diff is compared with the compressed whole set only when the diff is over
1/8 of the whole's raw text: below that it is always the smaller (sorted host names
compress about 4:1), and compressing a big list is the costly part of a write."""


def encode(body: bytes, kind: str, base: Base | None, *, deltas: bool = True) -> Encoded:
    """The smallest stored form of `body` this module can read back, given the previous
    version of its stream (None for the first). `deltas=False` writes `zlib` only,
    as before revision 0005 (for comparisons)."""
    if not deltas:
        return Encoded(ZLIB, zlib.compress(body, 6), None, 0, Decoded(raw=body))
    usable = base if base is not None and base.depth < MAX_DEPTH else None
    paths = SET_LIKE_KINDS.get(kind)
    state = canonical_set(body, paths) if paths else None
    if state is not None:
        decoded = Decoded(sets=state)
        if usable is not None and usable.decoded.sets is not None:
            diff = encode_setdiff(usable.decoded.sets, state)
            if diff is not None:
                whole_size = len(state.frame) + sum(sum(map(len, a)) for a in state.arrays)
                if len(diff) * SNAPSHOT_CHECK < whole_size and whole_size > SAVING * 16:
                    return Encoded(SETDIFF, diff, usable.sha256, usable.depth + 1, decoded)
                whole = encode_setfull(state)
                if _worth(diff, whole):
                    return Encoded(SETDIFF, diff, usable.sha256, usable.depth + 1, decoded)
                return Encoded(SETFULL, whole, None, 0, decoded)
        return Encoded(SETFULL, encode_setfull(state), None, 0, decoded)
    decoded = Decoded(raw=body)
    whole = compress(body)
    if usable is not None:
        delta = encode_zdelta(usable.decoded.body, body)
        if _worth(delta, whole):
            return Encoded(ZDELTA, delta, usable.sha256, usable.depth + 1, decoded)
    return Encoded(ZLIB, whole, None, 0, decoded)


def self_contained(decoded: Decoded) -> Encoded:
    """The row again without a base (when the base it was stored against is gone)."""
    if decoded.sets is not None:
        return Encoded(SETFULL, encode_setfull(decoded.sets), None, 0, decoded)
    return Encoded(ZLIB, compress(decoded.body), None, 0, decoded)


def decode(codec: str, stored: bytes, base: Decoded | None) -> Decoded:
    """A row's body; `base` is its base's (None for a self-contained codec)."""
    if codec == ZLIB:
        return Decoded(raw=zlib.decompress(stored))
    if codec == SETFULL:
        return Decoded(sets=decode_setfull(stored))
    if base is None:
        raise ValueError(f"a {codec} payload needs its base")
    if codec == ZDELTA:
        return Decoded(raw=decode_zdelta(base.body, stored))
    if codec == SETDIFF:
        if base.sets is None:
            raise ValueError("a setdiff payload's base is not stored as a set")
        return Decoded(sets=decode_setdiff(base.sets, stored))
    raise ValueError(f"unknown payload codec {codec!r}")
