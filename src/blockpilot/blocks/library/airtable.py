"""Airtable blocks over the Web API (https://airtable.com/developers/web/api).

A personal access token or an OAuth connection goes as ``Authorization: Bearer``. Lists
page with ``offset``; ids are checked (``app…``, ``rec…``) and table names percent-encoded
before they reach a URL path. Writes take at most 10 records, Airtable's own batch size,
so a write is one request: it happens whole or not at all.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import Provider, trim
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.executions.context import ExecutionContext

AIRTABLE = Provider.known("airtable")
_BASE_ID = re.compile(r"^app[A-Za-z0-9]{14}$")
_RECORD_ID = re.compile(r"^rec[A-Za-z0-9]{14}$")
RECORDS_READ, RECORDS_WRITE, SCHEMA_READ = (
    "data.records:read",
    "data.records:write",
    "schema.bases:read",
)
MAX_BATCH = 10
_PAGE = 100
_VALUE_CHARS = 2000

AirtableCredentials = APIKeyCredentials | OAuth2Credentials


def _credentials(scope: str) -> Any:
    return CredentialsField(
        providers=["airtable"],
        supported_types=["api_key", "oauth2"],
        required_scopes=[scope],
        description="Airtable personal access token (pat…) or connected Airtable account",
    )


def _base_field() -> Any:
    return SchemaField(description="ID of the base (app…)", min_length=1, max_length=40)


def _table_field() -> Any:
    return SchemaField(description="ID (tbl…) or name of the table", min_length=1, max_length=200)


def _base(value: str) -> str:
    text = value.strip()
    if not _BASE_ID.match(text):
        raise ValueError("base_id must be an Airtable base ID such as appXXXXXXXXXXXXXX")
    return text


def _record_id(value: str) -> str:
    text = value.strip()
    if not _RECORD_ID.match(text):
        raise ValueError(f"{text[:40]!r} is not an Airtable record ID (rec…)")
    return text


def _table_path(base_id: str, table: str) -> str:
    return f"/{_base(base_id)}/{quote(table.strip(), safe='')}"


async def _airtable(
    context: ExecutionContext,
    credentials: AirtableCredentials,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> dict[str, Any]:
    payload = await AIRTABLE.call(
        context,
        method,
        path,
        auth={"Authorization": credentials.auth_header()},
        params=params,
        json=json,
    )
    return payload if isinstance(payload, dict) else {}


def _trimmed(value: Any) -> Any:
    if isinstance(value, str):
        return trim(value, _VALUE_CHARS)
    if isinstance(value, list):
        return [_trimmed(v) for v in value[:100]]
    if isinstance(value, dict):
        return {k: _trimmed(v) for k, v in value.items()}
    return value


def _record(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record.get("id"),
        "created_time": record.get("createdTime"),
        "fields": _trimmed(record.get("fields") or {}),
    }


class AirtableListBasesBlock(Block):
    id = "6d4a8e2c-1f95-4b37-a7c0-9e3b5d1f8a26"
    effect = BlockEffect.READ
    description = "Lists the Airtable bases the user can reach (ID, name, permission)."
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        limit: Integer = SchemaField(default=100, ge=1, le=1000, description="Most bases")
        offset: str = SchemaField(default="", description="offset of an earlier call, for more")
        credentials: CredentialsMetaInput = _credentials(SCHEMA_READ)

    class Output(BlockSchemaOutput):
        bases: list[dict[str, Any]] = SchemaField(description="Bases: id, name, permission_level")
        offset: str = SchemaField(description="Pass as offset for more bases; empty at the end")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: AirtableCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        bases: list[dict[str, Any]] = []
        offset = input_data.offset
        while len(bases) < input_data.limit:
            page = await _airtable(
                execution_context,
                credentials,
                "GET",
                "/meta/bases",
                params={"offset": offset or None},
            )
            bases += [
                {
                    "id": b.get("id"),
                    "name": b.get("name"),
                    "permission_level": b.get("permissionLevel"),
                }
                for b in page.get("bases") or []
            ]
            offset = str(page.get("offset") or "")
            if not offset:
                break
        yield "bases", bases[: input_data.limit]
        yield "offset", offset


class AirtableListSchemaBlock(Block):
    id = "b2e7c4f9-5a13-4d86-9f2b-6c8a1e3d7b50"
    effect = BlockEffect.READ
    description = (
        "Reads the schema of an Airtable base: its tables with their fields (name and type) "
        "and views."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        base_id: str = _base_field()
        credentials: CredentialsMetaInput = _credentials(SCHEMA_READ)

    class Output(BlockSchemaOutput):
        tables: list[dict[str, Any]] = SchemaField(description="Tables: id, name, fields, views")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: AirtableCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        path = f"/meta/bases/{_base(input_data.base_id)}/tables"
        payload = await _airtable(execution_context, credentials, "GET", path)
        yield (
            "tables",
            [
                {
                    "id": t.get("id"),
                    "name": t.get("name"),
                    "primary_field_id": t.get("primaryFieldId"),
                    "fields": [
                        {"id": f.get("id"), "name": f.get("name"), "type": f.get("type")}
                        for f in t.get("fields") or []
                    ],
                    "views": [
                        {"id": v.get("id"), "name": v.get("name"), "type": v.get("type")}
                        for v in t.get("views") or []
                    ],
                }
                for t in payload.get("tables") or []
            ],
        )


class AirtableListRecordsBlock(Block):
    id = "f1c9a3e7-2d64-4b08-8e5a-3b7d9f2c6e14"
    effect = BlockEffect.READ
    description = (
        "Lists records of an Airtable table, optionally filtered by a formula or a view, "
        "following Airtable's offset pages."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        base_id: str = _base_field()
        table_id_or_name: str = _table_field()
        filter_formula: str = SchemaField(
            default="", description="Airtable formula, e.g. {Status} = 'Done'", max_length=4000
        )
        view: str = SchemaField(default="", description="Name or ID of a view to read through")
        return_fields: list[str] = SchemaField(
            default_factory=list, description="Only these fields (all if empty)", max_length=100
        )
        max_records: Integer = SchemaField(default=100, ge=1, le=1000, description="Most records")
        offset: str = SchemaField(default="", description="offset of an earlier call, for more")
        credentials: CredentialsMetaInput = _credentials(RECORDS_READ)

    class Output(BlockSchemaOutput):
        records: list[dict[str, Any]] = SchemaField(description="Records: id, created_time, fields")
        offset: str = SchemaField(description="Pass as offset for more records; empty at the end")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: AirtableCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        path = _table_path(input_data.base_id, input_data.table_id_or_name)
        records: list[dict[str, Any]] = []
        offset = input_data.offset
        while len(records) < input_data.max_records:
            params: dict[str, Any] = {
                "pageSize": min(_PAGE, input_data.max_records - len(records)),
                "filterByFormula": input_data.filter_formula or None,
                "view": input_data.view or None,
                "offset": offset or None,
            }
            if input_data.return_fields:
                params["fields[]"] = input_data.return_fields
            page = await _airtable(execution_context, credentials, "GET", path, params=params)
            records += [_record(r) for r in page.get("records") or []]
            offset = str(page.get("offset") or "")
            if not offset:
                break
        yield "records", records[: input_data.max_records]
        yield "offset", offset


class AirtableGetRecordBlock(Block):
    id = "a8d2f6b4-7e31-4c95-b1a7-5f0e8c3d2b69"
    effect = BlockEffect.READ
    description = "Gets one record of an Airtable table by its record ID (rec…)."
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        base_id: str = _base_field()
        table_id_or_name: str = _table_field()
        record_id: str = SchemaField(
            description="ID of the record (rec…)", min_length=1, max_length=40
        )
        credentials: CredentialsMetaInput = _credentials(RECORDS_READ)

    class Output(BlockSchemaOutput):
        id: str = SchemaField(description="ID of the record")
        fields: dict[str, Any] = SchemaField(description="The record's field values by name")
        created_time: str = SchemaField(description="When the record was created (ISO 8601)")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: AirtableCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        path = (
            _table_path(input_data.base_id, input_data.table_id_or_name)
            + f"/{_record_id(input_data.record_id)}"
        )
        record = _record(await _airtable(execution_context, credentials, "GET", path))
        yield "id", str(record["id"] or "")
        yield "fields", record["fields"]
        yield "created_time", str(record["created_time"] or "")


class AirtableCreateRecordsBlock(Block):
    id = "4e9b2d7a-c5f3-4a18-9d6e-8b1f3a5c7e02"
    effect = BlockEffect.WRITE
    description = "Creates up to 10 records in an Airtable table from field values by name."
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        base_id: str = _base_field()
        table_id_or_name: str = _table_field()
        records: list[dict[str, Any]] = SchemaField(
            description="Records to create, each an object of field name → value",
            min_length=1,
            max_length=MAX_BATCH,
        )
        typecast: bool = SchemaField(
            default=False, description="Let Airtable convert values (e.g. new select options)"
        )
        credentials: CredentialsMetaInput = _credentials(RECORDS_WRITE)

    class Output(BlockSchemaOutput):
        records: list[dict[str, Any]] = SchemaField(description="The created records, with IDs")
        count: Integer = SchemaField(description="How many records were created")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: AirtableCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        body = {
            "records": [{"fields": fields} for fields in input_data.records],
            "typecast": input_data.typecast,
        }
        path = _table_path(input_data.base_id, input_data.table_id_or_name)
        payload = await _airtable(execution_context, credentials, "POST", path, json=body)
        created = [_record(r) for r in payload.get("records") or []]
        yield "records", created
        yield "count", len(created)


class AirtableUpdateRecordsBlock(Block):
    id = "c3f8a1e6-9b27-4d54-a0c8-2e6d4b9f1a73"
    effect = BlockEffect.WRITE
    description = (
        "Updates up to 10 Airtable records by ID: only the given fields change, others stay."
    )
    categories = frozenset({BlockCategory.DATA, BlockCategory.PRODUCTIVITY})

    class Input(BlockSchemaInput):
        base_id: str = _base_field()
        table_id_or_name: str = _table_field()
        records: list[dict[str, Any]] = SchemaField(
            description="Records to update: objects with id (rec…) and fields (name → value)",
            min_length=1,
            max_length=MAX_BATCH,
        )
        typecast: bool = SchemaField(
            default=False, description="Let Airtable convert values (e.g. new select options)"
        )
        credentials: CredentialsMetaInput = _credentials(RECORDS_WRITE)

    class Output(BlockSchemaOutput):
        records: list[dict[str, Any]] = SchemaField(description="The updated records")
        count: Integer = SchemaField(description="How many records were updated")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: AirtableCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        updates = []
        for record in input_data.records:
            fields = record.get("fields")
            if not isinstance(record.get("id"), str) or not isinstance(fields, dict):
                yield "error", "Each record needs an id (rec…) and a fields object"
                return
            updates.append({"id": _record_id(record["id"]), "fields": fields})
        body = {"records": updates, "typecast": input_data.typecast}
        path = _table_path(input_data.base_id, input_data.table_id_or_name)
        payload = await _airtable(execution_context, credentials, "PATCH", path, json=body)
        updated = [_record(r) for r in payload.get("records") or []]
        yield "records", updated
        yield "count", len(updated)
