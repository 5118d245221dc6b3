"""Files in the signed-in user's workspace: list, get, put (raw body), delete."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.convertors import PathConvertor, register_url_convertor

from blockpilot.api.deps import CurrentUser, PilotDep
from blockpilot.api.routes import API_PREFIX, error_responses
from blockpilot.api.schemas import WorkspaceFileInfo, WorkspaceFileList
from blockpilot.errors import WorkspaceFileNotFoundError
from blockpilot.pilot import Pilot
from blockpilot.workspaces.manager import WorkspaceFiles
from blockpilot.workspaces.paths import normalise_path, normalise_prefix

router = APIRouter(tags=["workspace"])


class _AnyPathConvertor(PathConvertor):
    """Like ``path`` but matching newlines too, so such paths reach the handler's 400."""

    regex = "(?s:.*)"


register_url_convertor("workspace_path", _AnyPathConvertor())

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+\-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+\-]{0,126}$")
_PATH_ERRORS = error_responses(400)


async def _files(pilot: Pilot, user_id: str) -> WorkspaceFiles:
    return pilot.workspaces.for_workspace(await pilot.workspaces.get_or_create_workspace(user_id))


def _client_media_type(header: str | None) -> str | None:
    """The declared type if well formed and specific; else the path decides."""
    media = (header or "").split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.match(media) or media == "application/octet-stream":
        return None
    return media


@router.get("/workspace/files", summary="List your workspace files", responses=_PATH_ERRORS)
async def list_files(
    user: CurrentUser,
    pilot: PilotDep,
    prefix: Annotated[str, Query(max_length=1024, description="Only files under this folder")] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkspaceFileList:
    folder = normalise_prefix(prefix)  # before touching the workspace: a bad prefix is a 400
    files = await (await _files(pilot, user.id)).list(folder, limit=limit, offset=offset)
    return WorkspaceFileList(
        prefix=folder, files=[WorkspaceFileInfo.model_validate(f.public()) for f in files]
    )


@router.get(
    "/workspace/files/{path:workspace_path}",
    summary="Download a file",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The file's bytes, with its type",
        },
        **error_responses(400, 404),
    },
)
async def get_file(path: str, user: CurrentUser, pilot: PilotDep) -> Response:
    virtual = normalise_path(path)
    files = await _files(pilot, user.id)
    # Checksum-verified before the first byte is sent (a damaged file is a clean 404, never a
    # truncated 200), then streamed from the verified blob: memory stays one chunk.
    record, content = await files.open_verified(virtual)
    filename = quote(record.path.rsplit("/", 1)[-1], safe="")
    return StreamingResponse(
        content,
        media_type=record.mime_type,
        headers={
            "Content-Length": str(record.size_bytes),
            "ETag": f'"{record.checksum}"',
            "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.put(
    "/workspace/files/{path:workspace_path}",
    summary="Create or replace a file (raw body)",
    description="The body is the file's content; its `Content-Type` is kept unless it is generic. "
    "Bodies over the service's max file size get a 413 before they are read.",
    responses={
        201: {"model": WorkspaceFileInfo, "description": "Created"},
        **error_responses(400, 413),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_file(
    path: str, request: Request, response: Response, user: CurrentUser, pilot: PilotDep
) -> WorkspaceFileInfo:
    virtual = normalise_path(path)  # a bad path is refused before a byte of the body is read
    # Streamed to disk as it arrives (memory stays one chunk); the size limit is enforced
    # while streaming by BodySizeLimitMiddleware (and by write_stream()).
    files = await _files(pilot, user.id)
    record = await files.write_stream(
        virtual, request.stream(), mime_type=_client_media_type(request.headers.get("content-type"))
    )
    if record.created_at == record.updated_at:
        response.status_code = 201
        response.headers["Location"] = f"{API_PREFIX}/workspace/files{quote(record.path)}"
    return WorkspaceFileInfo.model_validate(record.public())


@router.delete(
    "/workspace/files/{path:workspace_path}",
    status_code=204,
    summary="Delete a file",
    responses=error_responses(400, 404),
)
async def delete_file(path: str, user: CurrentUser, pilot: PilotDep) -> Response:
    virtual = normalise_path(path)
    if not await (await _files(pilot, user.id)).delete(virtual):
        raise WorkspaceFileNotFoundError(f"No file at {virtual!r} in the workspace")
    return Response(status_code=204)
