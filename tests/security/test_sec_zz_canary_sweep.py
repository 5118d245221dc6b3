"""The canary sweep (docs/security.md): runs last in the security suite.

Every canary secret the suite planted (as API keys, OAuth tokens, passwords and host-scoped
headers) is looked for — raw, URL-encoded and base64 in its common spellings — in every log
record captured during the suite, every response, exception text and CLI/subprocess output
the tests registered, every file in the data folders the services used (database, WAL,
workspace blobs, crash logs) and every column of every database row except the encrypted
``credentials.secret``. It must be nowhere.
"""

from __future__ import annotations

from sec_helpers import CANARIES


def test_no_canary_anywhere_after_the_security_suite() -> None:
    CANARIES.stop_capture()  # the suite is over; the rest of the session logs as usual
    assert CANARIES.canaries, "no canary was planted: run the whole of tests/security"
    assert CANARIES.logs.texts, "no log record was captured"
    found = CANARIES.sweep()
    assert not found, "canary secrets leaked:\n" + "\n".join(found[:50])
    print(
        f"canary sweep: {len(CANARIES.canaries)} canaries x 7 forms "
        f"over {len(CANARIES.texts)} responses/outputs, "
        f"{len(CANARIES.logs.texts)} log records and {len(CANARIES.homes)} data folders: "
        "nothing found"
    )
