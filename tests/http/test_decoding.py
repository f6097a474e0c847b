"""Decoding a body with the size cap applied to what decompression produces, as it goes."""

from __future__ import annotations

import gzip
import zlib

import pytest

from tracker.http.decoding import BodyTooLarge, CappedDecoder, UndecodableBody

TEXT = b'{"users": 1234, "statuses": 5678}' * 100


def feed_all(decoder: CappedDecoder, data: bytes, chunk: int = 7) -> bytes:
    out = [decoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(out) + decoder.flush()


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        (None, TEXT),
        ("identity", TEXT),
        ("gzip", gzip.compress(TEXT)),
        ("x-gzip", gzip.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)),  # RFC 9110: zlib-wrapped
        ("deflate", zlib.compress(TEXT, wbits=-15)),  # what many servers send: raw
        ("GZIP", gzip.compress(TEXT[:100]) + gzip.compress(TEXT[100:])),  # two members
    ],
)
def test_every_accepted_encoding_decodes(coding: str | None, encoded: bytes) -> None:
    assert feed_all(CappedDecoder(coding, 1_000_000), encoded) == TEXT


def test_a_bomb_is_stopped_at_the_cap_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)  # about 50 KB on the wire
    decoder = CappedDecoder("gzip", 1_000_000)
    produced = 0
    with pytest.raises(BodyTooLarge):
        for i in range(0, len(bomb), 65536):
            produced += len(decoder.feed(bomb[i : i + 65536]))
    assert produced <= 1_000_000
    assert decoder.size <= 1_000_001  # never more than one byte past the cap


def test_exact_cap_is_accepted() -> None:
    assert feed_all(CappedDecoder("gzip", len(TEXT)), gzip.compress(TEXT)) == TEXT
    with pytest.raises(BodyTooLarge):
        feed_all(CappedDecoder("gzip", len(TEXT) - 1), gzip.compress(TEXT))


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip"])
def test_encodings_not_asked_for_are_refused(coding: str) -> None:
    with pytest.raises(UndecodableBody):
        CappedDecoder(coding, 1_000_000)


def test_corrupt_stream_is_an_encoding_error() -> None:
    with pytest.raises(UndecodableBody):
        feed_all(CappedDecoder("gzip", 1_000_000), b"\x1f\x8b\x08\x00garbage-not-gzip")
