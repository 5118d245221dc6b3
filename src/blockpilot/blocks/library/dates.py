"""Date and time blocks: now, parse, add and format, in any IANA time zone.

A block's time zone defaults to the user's (``ExecutionContext.user_timezone``).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.executions.context import ExecutionContext

_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%d %B %Y",
    "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%d.%m.%Y", "%d.%m.%Y %H:%M",
    "%H:%M", "%H:%M:%S",
)  # fmt: skip
_MAX_FORMAT = 200
_TIMESTAMP_RANGE = (-62_135_596_800, 253_402_300_799)  # years 1 to 9999


def _zone(name: str, context: ExecutionContext | None) -> tzinfo:
    wanted = name.strip() or (context.user_timezone if context is not None else "") or "UTC"
    if wanted.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(wanted)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"Unknown time zone {wanted!r}; use an IANA name such as Europe/Paris or UTC"
        ) from None


def _format(moment: datetime, fmt: str) -> str:
    if len(fmt) > _MAX_FORMAT:
        raise ValueError(f"format is longer than {_MAX_FORMAT} characters")
    if fmt.strip().lower() in ("", "iso", "iso8601"):
        return moment.isoformat()
    try:
        return moment.strftime(fmt)
    except ValueError as exc:
        raise ValueError(f"Invalid format {fmt!r}: {exc}") from None


def parse_datetime(text: str, zone: tzinfo) -> datetime:
    """Read ISO 8601, RFC 2822, a Unix timestamp or a common written date; naive times are
    taken to be in *zone*."""
    value = text.strip()
    if not value:
        raise ValueError("The date text is empty")
    if value.lower() == "now":
        return datetime.now(zone)
    if value.replace(".", "", 1).lstrip("-").isdigit():
        seconds = float(value)
        if seconds > 1e11:  # milliseconds, as JavaScript gives them
            seconds /= 1000
        if not _TIMESTAMP_RANGE[0] <= seconds <= _TIMESTAMP_RANGE[1]:
            raise ValueError(f"Timestamp {value} is out of range")
        return datetime.fromtimestamp(seconds, UTC).astimezone(zone)
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            for fmt in _FORMATS:
                try:
                    parsed = datetime.strptime(value, fmt)
                except ValueError:
                    continue
                if fmt.startswith("%H"):
                    today = datetime.now(zone)
                    parsed = parsed.replace(year=today.year, month=today.month, day=today.day)
                break
    if parsed is None:
        raise ValueError(
            f"Could not read {value[:60]!r} as a date; use ISO 8601 such as 2026-01-31T14:00"
        )
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed


def _moment_outputs(moment: datetime) -> dict[str, Any]:
    return {
        "iso": moment.isoformat(),
        "unix_timestamp": int(moment.timestamp()),
        "date": moment.date().isoformat(),
        "time": moment.time().replace(microsecond=0).isoformat(),
        "weekday": calendar.day_name[moment.weekday()],
        "timezone": str(moment.tzinfo),
    }


class GetCurrentTimeBlock(Block):
    id = "27aab552-c47d-403b-9450-44816fb617a6"
    effect = BlockEffect.READ
    description = "Gets the current time (hours, minutes, seconds) in a time zone."
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        trigger: str = SchemaField(default="", description="Anything; starts the block")
        format: str = SchemaField(default="%H:%M:%S", description="strftime format, or 'iso'")
        timezone: str = SchemaField(
            default="", description="IANA time zone (e.g. America/New_York); the user's if empty"
        )

    class Output(BlockSchemaOutput):
        time: str = SchemaField(description="The current time")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        now = datetime.now(_zone(input_data.timezone, execution_context))
        yield "time", _format(now, input_data.format)


class GetCurrentDateBlock(Block):
    id = "c7ae959e-027e-46a0-b2ed-9cba07c8e976"
    effect = BlockEffect.READ
    description = (
        "Gets today's date in a time zone, or a date some days from today (offset -1 is yesterday)."
    )
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchemaInput):
        trigger: str = SchemaField(default="", description="Anything; starts the block")
        offset: Integer = SchemaField(
            default=0, ge=-36_500, le=36_500, description="Days to add to today (negative: past)"
        )
        format: str = SchemaField(default="%Y-%m-%d", description="strftime format, or 'iso'")
        timezone: str = SchemaField(
            default="", description="IANA time zone (e.g. Asia/Tokyo); the user's if empty"
        )

    class Output(BlockSchemaOutput):
        date: str = SchemaField(description="The date")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        now = datetime.now(_zone(input_data.timezone, execution_context))
        yield "date", _format(now + timedelta(days=input_data.offset), input_data.format)


class ParseDateTimeBlock(Block):
    id = "8ed6af74-6286-4aaf-9537-70480d8ee378"
    effect = BlockEffect.READ
    description = (
        "Reads a date/time text (ISO 8601, e-mail style, Unix timestamp or '31 January 2026') "
        "into its parts: ISO form, timestamp, date, time, weekday."
    )
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        text: str = SchemaField(description="The date/time text", min_length=1, max_length=200)
        timezone: str = SchemaField(
            default="",
            description="Zone of a text without one, and of the outputs; the user's if empty",
        )

    class Output(BlockSchemaOutput):
        iso: str = SchemaField(description="ISO 8601 form with offset")
        unix_timestamp: Integer = SchemaField(description="Seconds since 1970-01-01 UTC")
        date: str = SchemaField(description="YYYY-MM-DD")
        time: str = SchemaField(description="HH:MM:SS")
        weekday: str = SchemaField(description="Day of the week, e.g. Monday")
        timezone: str = SchemaField(description="Time zone of the outputs")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        zone = _zone(input_data.timezone, execution_context)
        moment = parse_datetime(input_data.text, zone).astimezone(zone)
        for name, value in _moment_outputs(moment).items():
            yield name, value


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    if not 1 <= year <= 9999:
        raise ValueError("The result is outside the years 1 to 9999")
    day = min(moment.day, calendar.monthrange(year, month)[1])  # 31 Jan + 1 month = 28/29 Feb
    return moment.replace(year=year, month=month, day=day)


class AddToDateTimeBlock(Block):
    id = "a8fea879-74e7-4f4e-b0ab-3639d3118a69"
    effect = BlockEffect.READ
    description = (
        "Adds (or subtracts, with negative numbers) months, weeks, days, hours, minutes or "
        "seconds to a date/time."
    )
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        datetime: str = SchemaField(
            description="The starting date/time (ISO 8601, timestamp…) or 'now'", max_length=200
        )
        months: Integer = SchemaField(default=0, ge=-12_000, le=12_000, description="Months")
        weeks: Integer = SchemaField(default=0, ge=-520_000, le=520_000, description="Weeks")
        days: Integer = SchemaField(default=0, ge=-3_650_000, le=3_650_000, description="Days")
        hours: Integer = SchemaField(default=0, ge=-87_600_000, le=87_600_000, description="Hours")
        minutes: Integer = SchemaField(default=0, ge=-(10**9), le=10**9, description="Minutes")
        seconds: Integer = SchemaField(default=0, ge=-(10**11), le=10**11, description="Seconds")
        timezone: str = SchemaField(default="", description="Zone of a naive time; user's if empty")

    class Output(BlockSchemaOutput):
        result: str = SchemaField(description="The new date/time, ISO 8601")
        unix_timestamp: Integer = SchemaField(description="The new date/time as a Unix timestamp")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        moment = parse_datetime(input_data.datetime, _zone(input_data.timezone, execution_context))
        try:
            moment = _add_months(moment, input_data.months) + timedelta(
                weeks=input_data.weeks,
                days=input_data.days,
                hours=input_data.hours,
                minutes=input_data.minutes,
                seconds=input_data.seconds,
            )
        except OverflowError:
            yield "error", "The result is outside the years 1 to 9999"
            return
        yield "result", moment.isoformat()
        yield "unix_timestamp", int(moment.timestamp())


class FormatDateTimeBlock(Block):
    id = "d4b7f899-f250-454b-89d2-8cb00bda3fa0"
    effect = BlockEffect.READ
    description = (
        "Formats a date/time with a pattern (e.g. '%A %d %B %Y, %H:%M') and converts it to "
        "another time zone."
    )
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchemaInput):
        datetime: str = SchemaField(
            description="The date/time (ISO 8601, timestamp…) or 'now'", max_length=200
        )
        format: str = SchemaField(
            default="%Y-%m-%d %H:%M", description="strftime format, or 'iso'", max_length=200
        )
        timezone: str = SchemaField(
            default="", description="Time zone to show it in; the user's if empty"
        )

    class Output(BlockSchemaOutput):
        formatted: str = SchemaField(description="The formatted date/time")

    async def run(
        self, input_data: Input, *, execution_context: ExecutionContext, **kwargs: Any
    ) -> BlockOutput:
        zone = _zone(input_data.timezone, execution_context)
        moment = parse_datetime(input_data.datetime, zone).astimezone(zone)
        yield "formatted", _format(moment, input_data.format)
