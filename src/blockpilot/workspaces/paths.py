"""Virtual workspace paths: normalised, and impossible to point outside the workspace.

Virtual paths only ever name rows in the database; file bytes live in blobs named by
random ids, so no user-supplied text ever reaches the file system.
"""

from __future__ import annotations

import unicodedata

from blockpilot.errors import WorkspacePathError

MAX_PATH_CHARS = 1024
MAX_SEGMENT_CHARS = 255


def normalise_path(path: str, *, allow_root: bool = False) -> str:
    """Return the canonical ``/a/b.txt`` form of *path* or raise :class:`WorkspacePathError`.

    Rejected: non-strings, NUL and control characters, backslashes, ``..`` segments,
    over-long paths or segments, and (unless *allow_root*) the bare root.
    """
    if not isinstance(path, str):
        raise WorkspacePathError("Path must be a string such as 'notes/today.txt'")
    text = unicodedata.normalize("NFKC", path.strip())
    if any(ch == "\\" for ch in text):
        raise WorkspacePathError("Path must use '/' as separator, not '\\'")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text):
        raise WorkspacePathError("Path contains control or invisible characters; remove them")
    if len(text) > MAX_PATH_CHARS:
        raise WorkspacePathError(f"Path is longer than {MAX_PATH_CHARS} characters")
    segments: list[str] = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == ".." or segment.strip(" .") == "":
            raise WorkspacePathError("Path must not contain '..' or dot-only segments")
        if len(segment) > MAX_SEGMENT_CHARS:
            raise WorkspacePathError(
                f"A path segment is longer than {MAX_SEGMENT_CHARS} characters"
            )
        segments.append(segment)
    if not segments and not allow_root:
        raise WorkspacePathError("Path is empty; give a file path such as 'notes/today.txt'")
    return "/" + "/".join(segments)


def normalise_prefix(prefix: str | None) -> str:
    """A listing prefix: ``""``/``"/"`` mean everything; otherwise a normalised path."""
    if prefix is None or prefix.strip() in ("", "/"):
        return "/"
    return normalise_path(prefix)
