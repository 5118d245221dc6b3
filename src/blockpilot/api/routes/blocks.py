"""The block catalogue: every loaded block, marked when disabled or excluded from the copilot."""

from __future__ import annotations

from fastapi import APIRouter

from blockpilot.api.deps import PilotDep
from blockpilot.api.routes import error_responses
from blockpilot.api.schemas import BlockDetail, BlockList, BlockSummary, CredentialsRequirement
from blockpilot.blocks.base import Block
from blockpilot.errors import BlockNotFoundError
from blockpilot.pilot import Pilot

router = APIRouter(tags=["blocks"])


def _summary(pilot: Pilot, block: Block) -> BlockSummary:
    return BlockSummary(
        **{**block.info(), "disabled": pilot.registry.is_disabled(block)},
        excluded=pilot.catalog.exclusions.excludes(block),
    )


@router.get("/blocks", summary="All blocks (metadata)")
async def list_blocks(pilot: PilotDep) -> BlockList:
    blocks = [_summary(pilot, b) for b in pilot.registry.all()]
    return BlockList(blocks=blocks, count=len(blocks))


@router.get(
    "/blocks/{block_id}", summary="One block, with its schemas", responses=error_responses(404)
)
async def get_block(block_id: str, pilot: PilotDep) -> BlockDetail:
    block = pilot.registry.get(block_id) or pilot.registry.get_by_name(block_id)
    if block is None:
        raise BlockNotFoundError(
            f"Block {block_id[:80]!r} not found; list blocks with GET /api/v1/blocks"
        )
    requirements = [
        CredentialsRequirement(
            field=field,
            providers=sorted(info.provider),
            types=sorted(info.supported_types),
            scopes=sorted(info.required_scopes),
            discriminator=info.discriminator,
        )
        for field, info in block.Input.credentials_fields().items()
    ]
    return BlockDetail(
        **_summary(pilot, block).model_dump(),
        input_schema=block.Input.jsonschema(),
        output_schema=block.Output.jsonschema(),
        credentials=requirements,
    )
