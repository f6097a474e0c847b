"""Bad rows are refused with their line numbers, every one in one pass; good oddities pass."""

from __future__ import annotations

import pytest

from tests.history.conftest import NOW
from tracker.history.archives import ARCHIVES
from tracker.history.parse import BadFile, Rejected, decode, detect, parse, summarise

BOT = ARCHIVES["mastodonusercount"].format
HEADER = "timestamp,usercount,instancecount,tootscount\n"


def rejected_lines(text: str) -> list[int]:
    archive = detect(text)
    with pytest.raises(BadFile) as caught:
        parse(archive.format, text, NOW)
    return [item.line for item in caught.value.rejected]


def test_every_bad_row_is_named_with_its_line() -> None:
    text = (
        HEADER
        + "1600000000,100,10,1000\n"  # 2: good
        + "1600003600,-5,10,1000\n"  # 3: negative
        + "1600007200,abc,10,1000\n"  # 4: text
        + "1600010800,,10,1000\n"  # 5: empty
        + "1600014400,100.5,10,1000\n"  # 6: fraction
        + "1900000000,100,10,1000\n"  # 7: 2030, after NOW
        + "1400000000,100,10,1000\n"  # 8: 2014, before any of these networks
        + "16000144OO,100,10,1000\n"  # 9: unreadable time
        + "1600018000,100,10\n"  # 10: a field short
        + "1600000000,101,10,1000\n"  # 11: same time as line 2, other counts
        + "1600021600,100,10,1000\n"  # 12: good
    )
    assert rejected_lines(text) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    with pytest.raises(BadFile) as caught:
        parse(BOT, text, NOW)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("9 bad rows: line 3: usercount '-5': negative count; line 4: ")
    assert "and 6 more (lines 6, 7, 8, 9, 10, 11)" in message
    reasons = {item.line: item.reason for item in caught.value.rejected}
    assert "future" in reasons[7]
    assert "before 2016-01-01" in reasons[8]
    assert "3 fields, not 4" in reasons[10]
    assert "same time as line 2" in reasons[11]
    assert "empty" in reasons[5]


def test_oddities_of_real_files_are_not_errors() -> None:
    # CRLF line ends, a byte order mark, a repeated identical row, a blank last line,
    # and the bot's 0 instances (not measured: left out, not stored as a crash to zero)
    text = "\ufeff" + (
        HEADER
        + "1600000000,100,10,1000\r\n"
        + "1600000000,100,10,1000\r\n"
        + "1600003600,100,0,1000\r\n"
        + "\r\n"
    ).replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    archive = detect(decode(text.encode()))
    parsed = parse(archive.format, decode(text.encode()), NOW)
    assert (parsed.rows, parsed.repeated, parsed.left_out) == (3, 1, 1)
    assert sorted((r.metric, r.value) for r in parsed.readings) == [
        ("posts_total", 1000),
        ("posts_total", 1000),
        ("servers_total", 10),
        ("users_total", 100),
        ("users_total", 100),
    ]


def test_json_rejections_carry_the_line_of_the_object() -> None:
    text = (
        "[\n"
        '  {"date":"2023-05-08T19:49:52.000Z","users":31522},\n'  # 2
        '  {"date":"2023-05-09T19:49:52.000Z","users":"many"},\n'  # 3
        '  {"date":"2023-05-10 19:49","users":3},\n'  # 4: no zone
        '  {"date":"2023-05-11T19:49:52Z","users":3, "x": 1},\n'  # 5: other keys
        '  {"date":"2023-05-12T19:49:52Z",\n   "users":null}\n'  # 6: null
        "]\n"
    )
    assert rejected_lines(text) == [3, 4, 5, 6]


def test_broken_json_names_its_line() -> None:
    text = '[\n{"date":"2023-05-08T19:49:52.000Z","users":1},\n{"date": oops}\n]'
    assert rejected_lines(text) == [3]
    text = '[\n{"date":"2023-05-08T19:49:52.000Z","users":1}\n{"date":"x","users":2}]'
    assert rejected_lines(text) == [3]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("date,users\n2022-01-01,5\n", "is not one of the known archives'"),
        ("", "is not one of the known archives'"),
        ('[{"when": 1, "users": 2}]', "first item has keys users,when"),
    ],
)
def test_unknown_formats_are_refused_at_line_1(text: str, reason: str) -> None:
    with pytest.raises(BadFile) as caught:
        detect(text)
    [item] = caught.value.rejected
    assert item.line == 1
    assert reason in item.reason


def test_a_header_alone_is_refused() -> None:
    with pytest.raises(BadFile, match="no data rows"):
        parse(BOT, HEADER, NOW)


def test_non_utf8_names_its_line() -> None:
    with pytest.raises(BadFile) as caught:
        decode(HEADER.encode() + b"1600000000,1\xff0,10,1000\n")
    assert caught.value.rejected == [Rejected(2, "not UTF-8 text")]


def test_summary_lists_the_first_line_numbers_and_the_count() -> None:
    rejected = [Rejected(line, "bad") for line in range(2, 30)]
    text = summarise(rejected)
    assert text.startswith("28 bad rows: line 2: bad; line 3: bad; line 4: bad; and 25 more")
    assert text.endswith("(lines 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, ...)")
    assert summarise([Rejected(7, "a\nb")]) == "1 bad row: line 7: a b"
