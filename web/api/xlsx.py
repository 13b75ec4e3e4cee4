"""XLSX responses: the workbook is written to a temporary file, then streamed back in chunks."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from werkzeug.wrappers import Response

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 64 * 1024


def xlsx_response(write: Callable[[IO[bytes]], object], filename: str) -> Response:
    """Return ``write``'s workbook as an attachment, streamed from a temporary file.

    The file has no name on disk and is gone when the response has been sent (or dropped).
    """
    target = tempfile.TemporaryFile()
    try:
        write(target)
        size = target.tell()
        target.seek(0)
    except BaseException:
        target.close()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            while block := target.read(CHUNK):
                yield block
        finally:
            target.close()

    response = Response(
        chunks(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    response.content_length = size
    return response
