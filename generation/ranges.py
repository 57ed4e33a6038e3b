"""HTTP byte ranges for stored files: Safari (and every player that seeks) asks for a video
in `Range: bytes=a-b` pieces and will not play one served only whole."""

import re

from django.http import FileResponse, HttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# An open-ended range ("bytes=0-", what players ask first) is answered with at most this
# much: players ask again for the rest, and a worker never holds a whole large file.
OPEN_RANGE_CHUNK = 8 * 2**20


def file_response(request, file, *, content_type: str, filename: str, as_attachment: bool = False):
    """The file, or the one byte range asked for (206), or 416 for a range outside it."""
    size = file.size
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if not match or (not match.group(1) and not match.group(2)):
        response = FileResponse(file.open("rb"), content_type=content_type, as_attachment=as_attachment, filename=filename)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else min(start + OPEN_RANGE_CHUNK - 1, size - 1)
    else:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if start > end or start >= size:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    with file.open("rb") as handle:
        handle.seek(start)
        body = handle.read(end - start + 1)
    response = HttpResponse(body, status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response
