"""The media library's two endpoints, and a stand-in for the old phone system's recordings.

`POST /medias/upload-file` takes `multipart/form-data` (a `file` part and an optional `name`),
streamed to disk while it arrives, up to a size limit (HighLevel's is 25 MB; `--max-upload-mb`
lowers it for tests: 413 past it), and refuses types HighLevel does not store (415). It answers
`{"fileId", "url"}`, the url served by the sandbox itself as HighLevel's storage would serve it.
`GET /medias/files` lists a location's files (its required query parameters checked as the
spec lists them), filtered by `query` on the name.

The recordings source (`--source-dir DIR`, `--source-auth-env VAR`) serves DIR's files under
`/source/` behind HTTP Basic auth, as Twilio serves recordings: what `--recordings copy`
downloads from in tests and in the demo.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from python_multipart.multipart import MultipartParser, parse_options_header

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# What HighLevel's media library stores, by type family (assumed: audio, video, images, PDF).
ACCEPTED: Final = ("audio/", "video/", "image/", "application/pdf")
FILES_QUERY: Final = frozenset(
    {"altType", "altId", "type", "sortBy", "sortOrder", "query", "limit", "offset", "parentId",
     "fetchAll"}
)  # fmt: skip
FILES_REQUIRED: Final = ("altType", "altId", "type", "sortBy", "sortOrder")
CHUNK: Final = 1 << 16


class Refused(Exception):
    """An upload refused: the status and the API's body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status)
        self.status = status
        self.body = {"statusCode": status, "message": message}


@dataclass
class StoredFile:
    id: str
    location_id: str
    name: str
    path: Path
    size: int
    sha256: str
    content_type: str
    url: str

    def as_json(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "altId": self.location_id,
            "altType": "location",
            "name": self.name,
            "url": self.url,
            "path": self.url,
            "type": "file",
            "size": self.size,
            "contentType": self.content_type,
        }


@dataclass
class Library:
    max_bytes: int
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sandbox-media-")))
    files: dict[str, StoredFile] = field(default_factory=dict)
    uploads: int = 0  # accepted uploads, for the tests' counts

    async def upload(
        self, receive: Receive, content_type: str, location_id: str, base_url: str
    ) -> StoredFile:
        """Stream one multipart body to disk; its `file` part stored, or Refused."""
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise Refused(400, "Bad Request")
        part = _Parts(self.root, self.max_bytes)
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": part.begin,
                "on_header_field": part.header_field,
                "on_header_value": part.header_value,
                "on_header_end": part.header_end,
                "on_part_data": part.data,
                "on_part_end": part.end,
            },
        )
        while True:
            message = await receive()
            body = bytes(message.get("body", b""))
            if body and not part.too_large:
                parser.write(body)
            if not message.get("more_body"):
                break
        parser.finalize()
        if part.too_large:
            part.discard()
            raise Refused(413, "File too large")
        if part.file is None:
            raise Refused(422, "file should not be empty")
        upload = part.file
        name = part.fields.get("name") or upload.filename or "file"
        declared = upload.content_type or mimetypes.guess_type(name)[0] or ""
        if not declared.startswith(ACCEPTED):
            upload.path.unlink(missing_ok=True)
            raise Refused(415, f"Unsupported file type {declared or 'unknown'}")
        file_id = secrets.token_hex(12)
        self.uploads += 1
        stored = StoredFile(
            file_id,
            location_id,
            name,
            upload.path,
            upload.size,
            upload.digest.hexdigest(),
            declared,
            f"{base_url}/sandbox/media/{file_id}/{name}",
        )
        self.files[file_id] = stored
        return stored

    def listing(self, query: dict[str, str], location_id: str) -> list[dict[str, Any]]:
        wanted = query.get("query", "")
        found = [
            f.as_json()
            for f in self.files.values()
            if f.location_id == location_id and wanted in f.name
        ]
        if query.get("sortOrder") == "desc":
            found.reverse()
        offset = int(query.get("offset") or 0)
        limit = int(query.get("limit") or 10)
        return found[offset : offset + limit]


@dataclass
class _Upload:
    path: Path
    filename: str
    content_type: str
    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0


class _Parts:
    """The parser's callbacks: the `file` part goes to a temporary file, other parts are
    form fields held in memory (they are short)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.file: _Upload | None = None
        self.too_large = False
        self._headers: dict[str, str] = {}
        self._field = b""
        self._value = b""
        self._name = ""
        self._text = b""
        self._out: Any = None

    def begin(self) -> None:
        self._headers = {}

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field = self._value = b""
        disposition = self._headers.get("content-disposition")
        if disposition is None:
            return
        _, params = parse_options_header(disposition)
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if self._name == "file" and filename is not None and self.file is None:
            kind = self._headers.get("content-type", "")
            handle = tempfile.NamedTemporaryFile(dir=self.root, delete=False)  # noqa: SIM115
            self._out = handle
            self.file = _Upload(Path(handle.name), filename.decode("utf-8", "replace"), kind)

    def data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._out is not None and self.file is not None:
            self.file.size += len(chunk)
            if self.file.size > self.max_bytes:
                self.too_large = True
                return
            self.file.digest.update(chunk)
            self._out.write(chunk)
        else:
            self._text += chunk

    def end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._name:
            self.fields[self._name] = self._text.decode("utf-8", "replace")
        self._text = b""
        self._name = ""

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()
        if self.file is not None:
            self.file.path.unlink(missing_ok=True)


def files_problems(query: dict[str, str]) -> list[str]:
    """`GET /medias/files` as the spec lists it: unknown parameters and missing required ones."""
    problems = [f"property {k} should not exist" for k in query if k not in FILES_QUERY]
    problems += [f"{k} is required" for k in FILES_REQUIRED if not query.get(k)]
    if query.get("altType") not in (None, "", "location"):
        problems.append("altType must be location")
    for number in ("limit", "offset"):
        if query.get(number) and not query[number].isdigit():
            problems.append(f"{number} must be a number")
    return problems


async def serve_file(send: Send, path: Path, content_type: str, head: bool = False) -> None:
    """A stored or source file, streamed in chunks (large recordings included)."""
    size = path.stat().st_size
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(size).encode()),
            ],
        }
    )
    if head:
        await send({"type": "http.response.body", "body": b""})
        return
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@dataclass(frozen=True)
class Source:
    """The old phone system's recording server: DIR's files behind Basic auth (`user:pass`
    read from the environment variable `--source-auth-env` names)."""

    root: Path
    credentials: str | None

    def authorised(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode("ascii")
        return secrets.compare_digest(headers.get("authorization", ""), expected)

    def file(self, relative: str) -> Path | None:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return None
        return path
