"""Text, data, date and collection blocks through run_block (no credentials, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from blockpilot.blocks.library import collections as col
from blockpilot.blocks.library import data, dates, text

# (block, input, expected outputs): each runs through run_block and must give exactly these.
CASES: list[tuple[Any, dict[str, Any], dict[str, list[Any]]]] = [
    (
        text.MatchTextPatternBlock,
        {"text": "Order #123", "match": r"#\d+"},
        {"positive": ["Order #123"]},
    ),
    (text.MatchTextPatternBlock, {"text": "hello", "match": "HELLO", "data": 1}, {"negative": [1]}),
    (
        text.MatchTextPatternBlock,
        {"text": "hello", "match": "HELLO", "case_sensitive": False, "data": {"a": 1}},
        {"positive": [{"a": 1}]},
    ),
    (
        text.ExtractTextInformationBlock,
        {"text": "a1 b22 c333", "pattern": r"([a-z])(\d+)", "group": 2, "find_all": True},
        {"positive": ["1"], "matched_results": [["1", "22", "333"]], "matched_count": [3]},
    ),
    (text.ExtractTextInformationBlock, {"text": "none", "pattern": r"\d"}, {"negative": ["none"]}),
    (text.TextReplaceBlock, {"text": "a.b.c", "old": ".", "new": "/"}, {"output": ["a/b/c"]}),
    (
        text.RegexReplaceBlock,
        {"text": "2026-12-06", "pattern": r"(\d+)-(\d+)-(\d+)", "replacement": r"\3/\2/\1"},
        {"output": ["06/12/2026"], "count": [1]},
    ),
    (text.SplitTextBlock, {"text": "a, b ,c"}, {"texts": [["a", "b", "c"]]}),
    (text.SplitTextBlock, {"text": "x\ny", "delimiter": "\\n"}, {"texts": [["x", "y"]]}),
    (text.CombineTextsBlock, {"input": ["a", 1, None], "delimiter": "-"}, {"output": ["a-1-"]}),
    (
        text.WordCharacterCountBlock,
        {"text": "Hello world. How are you?\nFine!"},
        {"word_count": [6], "character_count": [31], "line_count": [2], "sentence_count": [3]},
    ),
    (data.ParseJsonBlock, {"json_string": '{"a": [1, 2]}'}, {"parsed": [{"a": [1, 2]}]}),
    (
        data.ExtractJsonPathBlock,
        {"data": {"user": {"tags": ["x", {"name": "y"}]}}, "path": "$.user.tags[1].name"},
        {"value": ["y"], "found": [True]},
    ),
    (
        data.ExtractJsonPathBlock,
        {"data": '{"a": {"b c": 5}}', "path": "a['b c']"},
        {"value": [5], "found": [True]},
    ),
    (
        data.ExtractJsonPathBlock,
        {"data": {"a": 1}, "path": "a.b"},
        {"value": [None], "found": [False]},
    ),
    (
        data.ReadCsvBlock,
        {"contents": 'name,age\n"Lee, Ann", 31\nBo,4,extra\n'},
        {
            "all_data": [
                [{"name": "Lee, Ann", "age": "31"}, {"name": "Bo", "age": "4", "column_3": "extra"}]
            ],
            "row_count": [2],
            "truncated": [False],
        },
    ),
    (
        data.ReadCsvBlock,
        {"contents": "1;2\n3;4\n5;6", "delimiter": ";", "has_header": False, "max_rows": 2},
        {"all_data": [[["1", "2"], ["3", "4"]]], "row_count": [2], "truncated": [True]},
    ),
    (
        data.XMLParserBlock,
        {"input_xml": '<feed v="1"><item>a</item><item>b</item><t>x</t></feed>'},
        {"parsed_xml": [{"feed": {"@v": "1", "item": ["a", "b"], "t": "x"}}]},
    ),
    (
        data.ParseHtmlBlock,
        {
            "html": "<title>T</title><script>x()</script><h2>Hi</h2>"
            "<p>See <a href='/d'>docs</a></p>",
            "base_url": "https://e.org/a",
        },
        {
            "text": ["## Hi\n\nSee [docs](https://e.org/d)"],
            "title": ["T"],
            "links": [[{"text": "docs", "url": "https://e.org/d"}]],
        },
    ),
    (
        data.Base64EncodeBlock,
        {"text": "hé?>"},
        {"encoded": [base64.b64encode("hé?>".encode()).decode()]},
    ),
    (data.Base64EncodeBlock, {"text": "hé?>", "url_safe": True}, {"encoded": ["aMOpPz4="]}),
    (data.Base64DecodeBlock, {"encoded": "aMOpPz4"}, {"text": ["hé?>"]}),
    (data.HashTextBlock, {"text": "abc"}, {"hash": [hashlib.sha256(b"abc").hexdigest()]}),
    (
        data.HashTextBlock,
        {"text": "abc", "algorithm": "md5", "hmac_key": "k"},
        {"hash": [hmac.new(b"k", b"abc", "md5").hexdigest()]},
    ),
    (
        data.ConvertUnitsBlock,
        {"value": 26.2, "from_unit": "miles", "to_unit": "km"},
        {"result": [pytest.approx(42.1648128)]},
    ),
    (
        data.ConvertUnitsBlock,
        {"value": 212, "from_unit": "°F", "to_unit": "C"},
        {"result": [pytest.approx(100.0)]},
    ),
    (
        data.ConvertUnitsBlock,
        {"value": 1, "from_unit": "GiB", "to_unit": "MB"},
        {"result": [pytest.approx(1073.741824)]},
    ),
    (
        dates.ParseDateTimeBlock,
        {"text": "2026-01-31T14:00:00Z", "timezone": "Europe/Paris"},
        {
            "iso": ["2026-01-31T15:00:00+01:00"],
            "unix_timestamp": [1769868000],
            "date": ["2026-01-31"],
            "time": ["15:00:00"],
            "weekday": ["Saturday"],
            "timezone": ["Europe/Paris"],
        },
    ),
    (
        dates.ParseDateTimeBlock,
        {"text": "Sat, 31 Jan 2026 14:00:00 +0000", "timezone": "UTC"},
        {
            "iso": ["2026-01-31T14:00:00+00:00"],
            "unix_timestamp": [1769868000],
            "date": ["2026-01-31"],
            "time": ["14:00:00"],
            "weekday": ["Saturday"],
            "timezone": ["UTC"],
        },
    ),
    (
        dates.AddToDateTimeBlock,
        {"datetime": "2026-01-31 09:30", "months": 1, "hours": 2, "timezone": "UTC"},
        {"result": ["2026-02-28T11:30:00+00:00"], "unix_timestamp": [1772278200]},
    ),
    (
        dates.FormatDateTimeBlock,
        {"datetime": "1769868000", "format": "%A %d %B %Y, %H:%M", "timezone": "Asia/Tokyo"},
        {"formatted": ["Saturday 31 January 2026, 23:00"]},
    ),
    (col.CreateListBlock, {"values": [1, "a"]}, {"list": [[1, "a"]]}),
    (col.CreateDictionaryBlock, {"values": {"a": 1}}, {"dictionary": [{"a": 1}]}),
    (
        col.AddToListBlock,
        {"list": [1, 4], "entries": [2, 3], "position": 1},
        {"updated_list": [[1, 2, 3, 4]]},
    ),
    (col.AddToListBlock, {"list": [1], "entry": 2}, {"updated_list": [[1, 2]]}),
    (
        col.AddToDictionaryBlock,
        {"dictionary": {"a": 1}, "key": "b", "value": 2, "entries": {"c": 3}},
        {"updated_dictionary": [{"a": 1, "b": 2, "c": 3}]},
    ),
    (col.FindInDictionaryBlock, {"input": {"a": 1}, "key": "a"}, {"output": [1]}),
    (
        col.FindInDictionaryBlock,
        {"input": [{"a": 1}, {"a": 2}, {}], "key": "a"},
        {"output": [[1, 2]]},
    ),
    (col.FindInDictionaryBlock, {"input": {"a": 1}, "key": "z"}, {"missing": [{"a": 1}]}),
    (col.FindInListBlock, {"list": ["x", "y"], "value": "y"}, {"index": [1], "found": [True]}),
    (
        col.FindInListBlock,
        {"list": ["x"], "value": "q"},
        {"found": [False], "not_found_value": ["q"]},
    ),
    (col.GetListItemBlock, {"list": ["x", "y"], "index": -1}, {"item": ["y"]}),
]
IDS = [f"{c[0].__name__}-{n}" for n, c in enumerate(CASES)]

FAILURES: list[tuple[Any, dict[str, Any], str]] = [
    (text.MatchTextPatternBlock, {"text": "x", "match": "("}, "Invalid regular expression"),
    (text.ExtractTextInformationBlock, {"text": "x", "pattern": "(x)", "group": 3}, "1 group"),
    (text.RegexReplaceBlock, {"text": "ab", "pattern": "(a)", "replacement": r"\5"}, "group"),
    (data.ParseJsonBlock, {"json_string": "{nope"}, "Not valid JSON"),
    (data.ParseJsonBlock, {"json_string": "[" * 150 + "]" * 150}, "nested"),
    (data.ExtractJsonPathBlock, {"data": {}, "path": "a..b"}, "Invalid path"),
    (data.ReadCsvBlock, {"contents": "a", "delimiter": "ab"}, "one character"),
    (data.Base64DecodeBlock, {"encoded": "***"}, "Not valid base64"),
    (
        data.ConvertUnitsBlock,
        {"value": 1, "from_unit": "kg", "to_unit": "km"},
        "Cannot convert mass",
    ),
    (data.ConvertUnitsBlock, {"value": 1, "from_unit": "parsec", "to_unit": "km"}, "Unknown unit"),
    (dates.ParseDateTimeBlock, {"text": "when pigs fly"}, "Could not read"),
    (
        dates.ParseDateTimeBlock,
        {"text": "2026-01-01", "timezone": "Mars/Base"},
        "Unknown time zone",
    ),
    (dates.GetCurrentTimeBlock, {"format": "%Y" * 150}, "longer than"),
    (col.GetListItemBlock, {"list": [1], "index": 5}, "outside the list"),
]


@pytest.mark.parametrize(("block", "data", "expected"), CASES, ids=IDS)
async def test_block_gives_the_expected_outputs(pilot, alice, run, block, data, expected) -> None:
    r = await run(pilot, alice, block.id, data)
    assert r["type"] == "block_output", r
    assert r["outputs"] == expected


@pytest.mark.parametrize(
    ("block", "data", "words"), FAILURES, ids=[f[0].__name__ for f in FAILURES]
)
async def test_bad_input_is_a_clear_block_error(pilot, alice, run, block, data, words) -> None:
    r = await run(pilot, alice, block.id, data)
    assert r["type"] == "error" and r["code"] == "block_failed", r
    assert words in r["message"]


async def test_catastrophic_regex_times_out_instead_of_hanging(pilot, alice, run) -> None:
    data = {"text": "a" * 5000 + "!", "match": r"(a|aa)+$"}
    r = await run(pilot, alice, text.MatchTextPatternBlock.id, data)
    assert r["type"] == "error" and "backtracking" in r["message"], r


async def test_xml_entities_and_doctype_are_refused(pilot, alice, run) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
    )
    external = '<!DOCTYPE x [<!ENTITY f SYSTEM "file:///etc/passwd">]><x>&f;</x>'
    for xml in (bomb, external):
        r = await run(pilot, alice, data.XMLParserBlock.id, {"input_xml": xml})
        assert r["type"] == "error" and "refused" in r["message"], r
        assert "root:" not in str(r)


async def test_now_blocks_use_the_zone(pilot, alice, run) -> None:
    r = await run(pilot, alice, dates.GetCurrentDateBlock.id, {"timezone": "Pacific/Kiritimati"})
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    assert r["outputs"]["date"] in (
        [today],
        [(datetime.now(ZoneInfo("Pacific/Kiritimati"))).date().isoformat()],
    )
    r = await run(pilot, alice, dates.GetCurrentDateBlock.id, {"offset": -1, "format": "%d"})
    assert len(r["outputs"]["date"][0]) == 2
    r = await run(pilot, alice, dates.GetCurrentTimeBlock.id, {"format": "iso", "timezone": "UTC"})
    assert r["outputs"]["time"][0].endswith("+00:00")
