"""The block framework: typed schemas, JSON Schema, credentials fields, execute()."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from blockpilot.blocks.base import Block, BlockCategory, BlockType
from blockpilot.blocks.schema import (
    BlockSchemaInput,
    BlockSchemaOutput,
    SchemaField,
    get_inputs_from_schema,
)
from blockpilot.credentials.fields import CredentialsField, CredentialsFieldInfo
from blockpilot.credentials.models import CredentialsMetaInput
from blockpilot.errors import BlockExecutionError, BlockInputError, BlockOutputError


class Address(BaseModel):
    street: str
    city: str = "Paris"


class WeatherBlock(Block):
    id = "9a9a9a9a-0000-4000-8000-000000000001"
    description = "Reports the weather for a city."
    categories = frozenset({BlockCategory.DATA, BlockCategory.SEARCH})

    class Input(BlockSchemaInput):
        city: str = SchemaField(description="City name", min_length=1, max_length=50)
        days: int = SchemaField(default=1, ge=1, le=7, description="Forecast days")
        unit: Literal["C", "F"] = SchemaField(default="C", description="Temperature unit")
        address: Address | None = SchemaField(default=None, description="Optional address")
        tags: list[str] = SchemaField(default_factory=list, description="Tags")
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["weather"], supported_types=["api_key"], description="Weather API key"
        )

    class Output(BlockSchemaOutput):
        temperature: float = SchemaField(description="Temperature")
        summary: str = SchemaField(description="Text summary")

    async def run(self, input_data: Any, **kwargs: Any) -> Any:
        self.seen = (input_data, kwargs)
        for day in range(input_data.days):
            yield "temperature", 20 + day  # an int, coerced to float by the output schema
        yield "summary", f"sunny in {input_data.city}"


class ScriptBlock(Block):
    """Yields whatever its script says; for testing execute()'s output checks."""

    id = "9a9a9a9a-0000-4000-8000-000000000002"
    description = "Yields a script of outputs."

    class Input(BlockSchemaInput):
        script: list[Any] = SchemaField(description="(name, value) pairs or 'raise:<kind>'")

    class Output(BlockSchemaOutput):
        count: int = SchemaField(description="A number")

    async def run(self, input_data: Any, **kwargs: Any) -> Any:
        for item in input_data.script:
            if item == "raise:value":
                raise ValueError("bad value given")
            if item == "raise:runtime":
                raise RuntimeError("a bug")
            yield item[0], item[1]


CRED = {"id": "c1", "provider": "weather", "type": "api_key"}


def test_block_metadata_and_defaults() -> None:
    block = WeatherBlock()
    assert block.name == "WeatherBlock"
    assert block.block_type is BlockType.STANDARD
    assert block.disabled is False
    assert block.timeout_seconds is None
    assert block.input_schema is WeatherBlock.Input and block.output_schema is WeatherBlock.Output
    assert block.info() == {
        "id": WeatherBlock.id,
        "name": "WeatherBlock",
        "description": "Reports the weather for a city.",
        "categories": ["DATA", "SEARCH"],
        "block_type": "STANDARD",
        "effect": "write",  # a block that does not declare its effect counts as a write
        "disabled": False,
    }
    assert ScriptBlock().categories == {BlockCategory.BASIC}


def test_jsonschema_is_inlined_serialisable_and_documented() -> None:
    schema = WeatherBlock.Input.jsonschema()
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    props = schema["properties"]
    assert props["city"]["description"] == "City name"
    assert props["city"]["minLength"] == 1 and props["city"]["maxLength"] == 50
    assert props["days"]["minimum"] == 1 and props["days"]["maximum"] == 7
    assert props["unit"]["enum"] == ["C", "F"]
    assert props["address"]["anyOf"][0]["properties"].keys() == {"street", "city"}
    assert props["credentials"]["credentials_provider"] == ["weather"]
    assert props["credentials"]["credentials_types"] == ["api_key"]
    assert set(schema["required"]) == {"city", "credentials"}
    assert props["days"]["advanced"] is True and props["city"]["advanced"] is False
    # Cached and stable.
    assert WeatherBlock.Input.jsonschema() is schema


def test_output_schema_has_the_error_pin() -> None:
    props = WeatherBlock.Output.jsonschema()["properties"]
    assert props.keys() == {"error", "temperature", "summary"}


def test_field_sets() -> None:
    assert WeatherBlock.Input.field_names() == {
        "city",
        "days",
        "unit",
        "address",
        "tags",
        "credentials",
    }
    assert WeatherBlock.Input.required_fields() == {"city", "credentials"}
    assert WeatherBlock.Input.required_input_fields() == {"city"}
    fields = WeatherBlock.Input.credentials_fields()
    assert fields == {
        "credentials": CredentialsFieldInfo(
            provider=frozenset({"weather"}), supported_types=frozenset({"api_key"})
        )
    }


def test_get_inputs_from_schema_lists_non_credential_inputs() -> None:
    inputs = get_inputs_from_schema(WeatherBlock.Input.jsonschema(), {"credentials"})
    by_name = {i["name"]: i for i in inputs}
    assert list(by_name) == ["city", "days", "unit", "address", "tags"]
    assert by_name["city"] == {
        "name": "city",
        "title": "City",
        "type": "string",
        "description": "City name",
        "required": True,
        "default": None,
    }
    assert by_name["days"]["type"] == "integer" and by_name["days"]["default"] == 1
    assert by_name["unit"]["type"] == "string"
    assert by_name["address"]["type"] == "object"
    assert by_name["tags"]["type"] == "array"
    assert get_inputs_from_schema({}) == []
    assert get_inputs_from_schema("nope") == []  # type: ignore[arg-type]


def test_validate_input_gives_per_field_errors_without_values() -> None:
    block = WeatherBlock()
    with pytest.raises(BlockInputError) as info:
        block.validate_input(
            {"city": "", "days": 9, "unit": "K", "credentials": CRED, "extra": "secret-value-123"}
        )
    errors = info.value.details["errors"]
    assert set(errors) == {"city", "days", "unit", "extra"}
    assert errors["extra"] == ["unknown field"]
    assert "secret-value-123" not in str(info.value.message) + json.dumps(errors)
    assert info.value.code == "invalid_input"
    assert info.value.block_name == "WeatherBlock"


def test_validate_input_nested_errors_are_dotted() -> None:
    with pytest.raises(BlockInputError) as info:
        WeatherBlock().validate_input({"city": "x", "credentials": CRED, "address": {"city": 3}})
    assert set(info.value.details["errors"]) == {"address.street", "address.city"}


async def test_execute_validates_runs_and_coerces_outputs() -> None:
    block = WeatherBlock()
    outputs = await block.run_collect({"city": "Oslo", "days": 3, "credentials": CRED}, marker="kw")
    assert outputs == {"temperature": [20.0, 21.0, 22.0], "summary": ["sunny in Oslo"]}
    assert all(isinstance(v, float) for v in outputs["temperature"])
    typed, kwargs = block.seen
    assert isinstance(typed, WeatherBlock.Input)
    assert typed.credentials.provider == "weather"
    assert kwargs == {"marker": "kw"}


async def test_execute_rejects_invalid_input_before_running() -> None:
    block = WeatherBlock()
    with pytest.raises(BlockInputError):
        await block.run_collect({"city": "Oslo"})
    assert not hasattr(block, "seen")


async def test_error_pin_fails_the_run() -> None:
    with pytest.raises(BlockExecutionError, match="^quota$"):
        await ScriptBlock().run_collect(
            {"script": [["count", 1], ["error", "quota"], ["count", 2]]}
        )


async def test_unknown_output_pin_is_an_output_error() -> None:
    with pytest.raises(BlockOutputError, match="unknown output 'cuont'"):
        await ScriptBlock().run_collect({"script": [["cuont", 1]]})


async def test_invalid_output_value_is_an_output_error_without_the_value() -> None:
    with pytest.raises(BlockOutputError) as info:
        await ScriptBlock().run_collect({"script": [["count", "sk-not-a-number-123"]]})
    assert "invalid value for output 'count'" in info.value.message
    assert "sk-not-a-number-123" not in info.value.message
    assert info.value.code == "invalid_output"


async def test_value_error_is_a_block_failure_other_exceptions_propagate() -> None:
    with pytest.raises(BlockExecutionError, match="bad value given"):
        await ScriptBlock().run_collect({"script": ["raise:value"]})
    with pytest.raises(RuntimeError, match="a bug"):
        await ScriptBlock().run_collect({"script": ["raise:runtime"]})


async def test_multiple_values_on_one_pin_are_kept_in_order() -> None:
    outputs = await ScriptBlock().run_collect(
        {"script": [["count", 3], ["count", 1], ["count", 2]]}
    )
    assert outputs == {"count": [3, 1, 2]}


async def test_typed_input_is_accepted_as_is() -> None:
    typed = ScriptBlock.Input(script=[["count", 1]])
    assert await ScriptBlock().run_collect(typed) == {"count": [1]}


def test_schema_field_requires_a_description() -> None:
    with pytest.raises(TypeError):
        SchemaField(default=1)  # type: ignore[call-arg]


def test_secret_and_placeholder_extras() -> None:
    class In(BlockSchemaInput):
        token: str = SchemaField(description="A token", secret=True, placeholder="xyz")

    prop = In.jsonschema()["properties"]["token"]
    assert prop["secret"] is True and prop["placeholder"] == "xyz"


def test_credentials_field_extras_round_trip() -> None:
    class In(BlockSchemaInput):
        model: str = SchemaField(default="a", description="Model")
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["p1", "p2"],
            supported_types=["api_key", "oauth2"],
            required_scopes=["s2", "s1"],
            discriminator="model",
            discriminator_mapping={"a": "p1", "b": "p2"},
        )

    info = In.credentials_fields()["credentials"]
    assert info.provider == {"p1", "p2"}
    assert info.supported_types == {"api_key", "oauth2"}
    assert info.required_scopes == {"s1", "s2"}
    assert info.discriminator == "model"
    assert dict(info.discriminator_mapping or {}) == {"a": "p1", "b": "p2"}
    prop = In.jsonschema()["properties"]["credentials"]
    assert prop["credentials_scopes"] == ["s1", "s2"]
    assert prop["discriminator_mapping"] == {"a": "p1", "b": "p2"}
