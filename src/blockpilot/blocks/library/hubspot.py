"""HubSpot CRM blocks over the CRM v3 objects API (https://developers.hubspot.com/docs/api/
crm), with a private app access token or a connected HubSpot account (OAuth scopes
``crm.objects.<contacts|companies>.<read|write>``)."""

from __future__ import annotations

from typing import Any, ClassVar

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.library._provider_api import MAX_PAGES, ProviderAPI, segment
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import APIKeyCredentials, CredentialsMetaInput, OAuth2Credentials
from blockpilot.executions.context import ExecutionContext

CONTACT_PROPERTIES = ("email", "firstname", "lastname", "phone", "company", "jobtitle")
COMPANY_PROPERTIES = ("name", "domain", "industry", "city", "country", "numberofemployees")


def hubspot_credentials_field(scope: str) -> Any:
    return CredentialsField(
        providers=["hubspot"],
        supported_types=["api_key", "oauth2"],
        required_scopes=[scope],
        description="HubSpot private app token or connected HubSpot account",
    )


def crm_record(obj: dict[str, Any], properties: tuple[str, ...]) -> dict[str, Any]:
    """A CRM object as ``{"id": …, <property>: …}`` with only the properties a model needs."""
    values = obj.get("properties") or {}
    return {"id": str(obj.get("id") or ""), **{p: values.get(p) for p in properties}}


class HubSpotBlockBase(Block):
    """Shared plumbing: the CRM API for one object type with the token."""

    categories = frozenset({BlockCategory.CRM})
    object_type: ClassVar[str] = "contacts"
    properties: ClassVar[tuple[str, ...]] = CONTACT_PROPERTIES

    async def run(
        self,
        input_data: Any,
        *,
        credentials: APIKeyCredentials | OAuth2Credentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        api = ProviderAPI.known(
            execution_context, "hubspot", auth={"Authorization": credentials.auth_header()}
        )
        async for output in self.call(api, input_data):
            yield output

    def call(self, api: ProviderAPI, input_data: Any) -> BlockOutput:
        raise NotImplementedError

    @property
    def path(self) -> str:
        return f"/crm/v3/objects/{self.object_type}"

    async def search(self, api: ProviderAPI, query: str, limit: int) -> tuple[list[Any], int]:
        """Up to *limit* records matching *query* (cursor ``after``), and HubSpot's total."""
        results: list[dict[str, Any]] = []
        after: str | None = None
        total = 0
        for _ in range(MAX_PAGES):
            body: dict[str, Any] = {
                "limit": min(100, limit - len(results)),
                "properties": list(self.properties),
            }
            if query:
                body["query"] = query
            if after:
                body["after"] = after
            page = await api.call("POST", self.path + "/search", json=body)
            total = int(page.get("total") or 0)
            results += [r for r in page.get("results") or [] if isinstance(r, dict)]
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after or len(results) >= limit:
                break
        return [crm_record(r, self.properties) for r in results[:limit]], total

    async def get(self, api: ProviderAPI, record_id: str, id_property: str | None) -> Any:
        record = await api.call(
            "GET",
            f"{self.path}/{segment(record_id)}",
            params={"properties": ",".join(self.properties), "idProperty": id_property},
        )
        return crm_record(record, self.properties)

    async def create(self, api: ProviderAPI, values: dict[str, Any]) -> Any:
        properties = {k: v for k, v in values.items() if v not in ("", None)}
        record = await api.call("POST", self.path, json={"properties": properties})
        return crm_record(record, self.properties)


def _query_field(what: str) -> Any:
    return SchemaField(
        default="", description=f"Text to find in {what} (empty: all)", max_length=500
    )


def _limit_field() -> Any:
    return SchemaField(default=20, ge=1, le=200, description="Most records to return")


class HubSpotSearchContactsBlock(HubSpotBlockBase):
    id = "40363f07-cf23-40b3-97f0-cf25238dab5f"
    effect = BlockEffect.READ
    description = (
        "Searches contacts (people) in the HubSpot CRM by name, e-mail, phone or company; "
        "returns their id, e-mail, name, phone, company and job title."
    )

    class Input(BlockSchemaInput):
        query: str = _query_field("contacts' name, e-mail, phone or company")
        limit: Integer = _limit_field()
        credentials: CredentialsMetaInput = hubspot_credentials_field("crm.objects.contacts.read")

    class Output(BlockSchemaOutput):
        contacts: list[dict[str, Any]] = SchemaField(
            description="Contacts: id, email, firstname, lastname, phone, company, jobtitle"
        )
        total: int = SchemaField(description="How many contacts match in all")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        contacts, total = await self.search(api, input_data.query, input_data.limit)
        yield "contacts", contacts
        yield "total", total


class HubSpotGetContactBlock(HubSpotBlockBase):
    id = "62a95261-89d0-4b3c-918a-7139d9538433"
    effect = BlockEffect.READ
    description = "Gets one HubSpot CRM contact by its id or e-mail address."

    class Input(BlockSchemaInput):
        contact: str = SchemaField(
            description="Contact id or e-mail address", min_length=1, max_length=320
        )
        credentials: CredentialsMetaInput = hubspot_credentials_field("crm.objects.contacts.read")

    class Output(BlockSchemaOutput):
        contact: dict[str, Any] = SchemaField(
            description="The contact: id, email, firstname, lastname, phone, company, jobtitle"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        key = input_data.contact.strip()
        yield "contact", await self.get(api, key, "email" if "@" in key else None)


class HubSpotCreateContactBlock(HubSpotBlockBase):
    id = "064bbf67-f1d8-4efb-a779-ff3c19ecd1f4"
    effect = BlockEffect.WRITE
    description = "Creates a new contact (person, lead) in the HubSpot CRM."

    class Input(BlockSchemaInput):
        email: str = SchemaField(description="E-mail address", min_length=3, max_length=320)
        firstname: str = SchemaField(default="", description="First name", max_length=200)
        lastname: str = SchemaField(default="", description="Last name", max_length=200)
        phone: str = SchemaField(default="", description="Phone number", max_length=100)
        company: str = SchemaField(default="", description="Company name", max_length=300)
        jobtitle: str = SchemaField(default="", description="Job title", max_length=300)
        credentials: CredentialsMetaInput = hubspot_credentials_field("crm.objects.contacts.write")

    class Output(BlockSchemaOutput):
        contact_id: str = SchemaField(description="Id of the new contact")
        contact: dict[str, Any] = SchemaField(description="The new contact's properties")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        values = input_data.model_dump(include=set(CONTACT_PROPERTIES))
        record = await self.create(api, values)
        yield "contact_id", record["id"]
        yield "contact", record


class HubSpotSearchCompaniesBlock(HubSpotBlockBase):
    id = "bb60fedc-eea3-4f2f-94b3-62a4ecdc81ce"
    effect = BlockEffect.READ
    description = (
        "Searches companies (accounts, organisations) in the HubSpot CRM by name or domain; "
        "returns id, name, domain, industry, city, country and size."
    )
    object_type = "companies"
    properties = COMPANY_PROPERTIES

    class Input(BlockSchemaInput):
        query: str = _query_field("companies' name or domain")
        limit: Integer = _limit_field()
        credentials: CredentialsMetaInput = hubspot_credentials_field("crm.objects.companies.read")

    class Output(BlockSchemaOutput):
        companies: list[dict[str, Any]] = SchemaField(
            description="Companies: id, name, domain, industry, city, country, numberofemployees"
        )
        total: int = SchemaField(description="How many companies match in all")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        companies, total = await self.search(api, input_data.query, input_data.limit)
        yield "companies", companies
        yield "total", total


class HubSpotGetCompanyBlock(HubSpotBlockBase):
    id = "e6682e60-e673-4e15-b5be-35a98d84f50e"
    effect = BlockEffect.READ
    description = "Gets one HubSpot CRM company by its id or web domain."
    object_type = "companies"
    properties = COMPANY_PROPERTIES

    class Input(BlockSchemaInput):
        company: str = SchemaField(
            description="Company id, or its domain such as example.com",
            min_length=1,
            max_length=300,
        )
        credentials: CredentialsMetaInput = hubspot_credentials_field("crm.objects.companies.read")

    class Output(BlockSchemaOutput):
        company: dict[str, Any] = SchemaField(
            description="The company: id, name, domain, industry, city, country, numberofemployees"
        )

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        key = input_data.company.strip()
        yield "company", await self.get(api, key, None if key.isdigit() else "domain")


class HubSpotCreateCompanyBlock(HubSpotBlockBase):
    id = "50b208bf-d52e-4e06-87fe-5548aa2c7086"
    effect = BlockEffect.WRITE
    description = "Creates a new company (account) in the HubSpot CRM."
    object_type = "companies"
    properties = COMPANY_PROPERTIES

    class Input(BlockSchemaInput):
        name: str = SchemaField(description="Company name", min_length=1, max_length=300)
        domain: str = SchemaField(
            default="", description="Web domain, e.g. example.com", max_length=300
        )
        industry: str = SchemaField(
            default="", description="HubSpot industry value, e.g. COMPUTER_SOFTWARE", max_length=200
        )
        city: str = SchemaField(default="", description="City", max_length=200)
        country: str = SchemaField(default="", description="Country", max_length=200)
        credentials: CredentialsMetaInput = hubspot_credentials_field("crm.objects.companies.write")

    class Output(BlockSchemaOutput):
        company_id: str = SchemaField(description="Id of the new company")
        company: dict[str, Any] = SchemaField(description="The new company's properties")

    async def call(self, api: ProviderAPI, input_data: Input) -> BlockOutput:
        values = input_data.model_dump(include={"name", "domain", "industry", "city", "country"})
        record = await self.create(api, values)
        yield "company_id", record["id"]
        yield "company", record
