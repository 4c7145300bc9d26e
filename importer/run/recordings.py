"""Recordings copied out of the old phone system into HighLevel (`--recordings copy`).

A recording is downloaded from the export's URL (with the source system's credentials) or read
from a PBX's recordings folder, hashed while it streams to a temporary file, uploaded to the
location's media library under its sha256, and the call is posted with HighLevel's URL. The
journal records the upload before it leaves and its URL once it is known, before any call that
carries it is posted: a resumed run uploads nothing twice and posts no call without its copy.
What cannot be copied is the row's error (`failed`, naming the recording), never a silent link.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import mimetypes
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Final
from urllib.parse import unquote, urlsplit

import httpx

from importer.api.media import MediaLibrary, Stored
from importer.api.session import backoff
from importer.config import RecordingOptions
from importer.state.journal import Journal, Recording
from importer.state.recordings import RecordingLine

CHUNK: Final = 1 << 16
SOURCE_ATTEMPTS: Final = 4  # a source's 429, 5xx or broken download, tried so often
UPLOAD_ROUNDS: Final = 3  # uploads whose answer was lost and that the library did not show
GRACE_S: Final = 1.0  # assumed: a stored file is listed by its name this soon after the upload
AUDIO_SUFFIXES: Final = (".wav", ".mp3", ".gsm", ".ogg", ".opus", ".m4a", ".wav49", ".WAV")


class RecordingError(Exception):
    """This recording cannot be copied: the row's error, naming the recording."""


class CopyStopped(Exception):
    """The run stopped (token refused, daily cap, Ctrl-C) before the copy was settled."""


@dataclass(frozen=True)
class Copied:
    """A call's recordings as they will be posted: HighLevel's URLs, or why not."""

    urls: list[str] = field(default_factory=list)
    error: str = ""
    stopped: bool = False


@dataclass(frozen=True)
class _Local:
    path: Path
    sha256: str
    size: int
    content_type: str
    suffix: str
    temporary: bool


@dataclass
class Tally:
    """This run's recordings, for the summary, the report and `RESULTS.recordings.csv`."""

    copied: dict[str, Recording] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    linked: Counter[str] = field(default_factory=Counter)  # host -> links posted as they are
    uploads: int = 0
    reused: int = 0  # found in the journal or the library: not uploaded again

    def lines(self, journal: list[Recording]) -> list[RecordingLine]:
        """Every recording of the import so far (the journal's uploads, this run's failures)
        and every host still linked to."""
        out = [
            RecordingLine(r.source, "copied", r.size, r.sha256, r.url)
            for r in journal
            if r.state == "uploaded"
        ]
        copied = {r.source for r in journal if r.state == "uploaded"}
        out += [
            RecordingLine(source, "failed", error=error)
            for source, error in sorted(self.failed.items())
            if source not in copied
        ]
        out += [
            RecordingLine(
                host,
                "linked",
                calls=n,
                error="a link into the old system: it stops working when that account closes",
            )
            for host, n in self.linked.most_common()
        ]
        return out


def link_hosts(sources: Iterable[str]) -> Counter[str]:
    """The hosts recordings link to: what stops working when the old system is closed."""
    return Counter(urlsplit(s).hostname or s for s in sources)


@dataclass
class Survey:
    """What the recordings will cost, said before the import (`resolve`): how many, their
    total size, the uploads left, and for `link` the hosts the links point to."""

    mode: str
    calls: int = 0  # calls with a recording
    sources: int = 0  # distinct recordings
    uploads: int = 0  # not yet copied: one upload request each
    size: int = 0  # bytes, of those whose size is known
    unknown: int = 0  # sizes the source did not say
    hosts: Counter[str] = field(default_factory=Counter)


class RecordingCopier:
    def __init__(self, options: RecordingOptions, library: MediaLibrary, journal: Journal) -> None:
        self.options = options
        self.library = library
        self.journal = journal
        self.tally = Tally()
        self._sources = asyncio.Semaphore(options.concurrency)
        self._running: dict[str, asyncio.Future[str]] = {}  # by source
        self._contents: dict[str, asyncio.Future[Recording]] = {}  # by sha256: uploaded once
        self._http: httpx.AsyncClient | None = None
        self._tmp: Path | None = None
        self._folder: dict[str, list[Path]] | None = None

    async def survey(self, calls: list[tuple[list[str], str]]) -> Survey:
        """`calls`: each call's recordings and its unique id. Sizes come from the source's
        HEAD answers (or the files), at the source's pace; nothing is uploaded."""
        survey = Survey(self.options.mode)
        wanted: dict[str, None] = {}
        for sources, alt_id in calls:
            if not sources and self.options.directory is not None:
                found = self._in_folder(alt_id)
                sources = [found.as_posix()] if isinstance(found, Path) else []
            if sources:
                survey.calls += 1
            wanted.update(dict.fromkeys(sources))
        survey.sources = len(wanted)
        if not self.options.copy:
            survey.hosts = link_hosts(s for sources, _ in calls for s in sources)
            return survey
        todo = [s for s in wanted if (r := self.journal.recording(s)) is None or not r.url]
        survey.uploads = len(todo)

        async def size_of(source: str) -> int | None:
            async with self._sources:
                return await self._size(source)

        for size in await asyncio.gather(*(size_of(s) for s in todo)):
            if size is None:
                survey.unknown += 1
            else:
                survey.size += size
        return survey

    async def _size(self, source: str) -> int | None:
        if not source.startswith(("http://", "https://")):
            path = Path(source)
            return path.stat().st_size if path.is_file() else None
        try:
            response = await self._client().head(source, headers=self._credentials(source))
        except httpx.HTTPError:
            return None
        declared = response.headers.get("content-length", "")
        return int(declared) if response.is_success and declared.isdigit() else None

    async def copy(self, sources: list[str], alt_id: str) -> Copied:
        """Every recording of one call, copied (or found copied); the first failure wins."""
        if not sources and self.options.directory is not None:
            found = self._in_folder(alt_id)
            if isinstance(found, str):
                return Copied(error=found)
            sources = [found.as_posix()] if found else []
        urls: list[str] = []
        for source in sources:
            try:
                urls.append(await self._once(source))
            except RecordingError as exc:
                return Copied(error=str(exc))
            except CopyStopped as exc:
                return Copied(error=str(exc), stopped=True)
        return Copied(urls)

    async def _once(self, source: str) -> str:
        """Two calls with one recording copy it once: the second waits for the first."""
        running = self._running.get(source)
        if running is None:
            running = asyncio.ensure_future(self._copy(source))
            self._running[source] = running
        try:
            return await asyncio.shield(running)
        except CopyStopped:
            self._running.pop(source, None)  # a later chunk of a resumed run tries again
            raise

    async def _copy(self, source: str) -> str:
        try:
            url = await self._settled(source)
        except RecordingError as exc:
            self.tally.failed[source] = str(exc)
            raise
        return url

    async def _settled(self, source: str) -> str:
        known = self.journal.recording(source)
        if known is not None and known.state == "uploaded":
            self.tally.reused += 1
            self.tally.copied[source] = known
            return known.url
        if known is not None:  # uploading: its answer was lost, or the run died after sending
            found = await self.library.find(known.name)
            _raise_stopped(found)
            if found.error:
                raise RecordingError(
                    f"recording {source}: an earlier upload's answer was lost and the media"
                    f" library could not be read ({found.error}); a re-run looks again"
                )
            if found.url:
                self.tally.reused += 1
                return self._uploaded(replace(known, url=found.url, file_id=found.file_id))
        async with self._sources:
            local = await self._fetch(source)
        try:
            return await self._store(source, local)
        finally:
            if local.temporary:
                local.path.unlink(missing_ok=True)

    async def _store(self, source: str, local: _Local) -> str:
        if local.size > self.options.max_bytes:
            raise RecordingError(
                f"recording {source}: {_mb(local.size)}, over HighLevel's upload limit of"
                f" {_mb(self.options.max_bytes)}"
            )
        same = self.journal.recording_with_content(local.sha256)
        uploading = self._contents.get(local.sha256)
        if same is None and uploading is not None:  # the same bytes, being uploaded right now
            try:
                same = await asyncio.shield(uploading)
            except (RecordingError, CopyStopped):
                same = None  # that source's failure is its own: this one tries for itself
        if same is not None:
            self.tally.reused += 1
            return self._uploaded(replace(same, source=source))
        mine: asyncio.Future[Recording] = asyncio.get_running_loop().create_future()
        self._contents[local.sha256] = mine
        try:
            recording = await self._upload(source, local)
        except BaseException as exc:
            self._contents.pop(local.sha256, None)
            mine.set_exception(exc if isinstance(exc, Exception) else CopyStopped("stopped"))
            mine.exception()  # retrieved here: no warning when nobody was waiting
            raise
        mine.set_result(recording)
        return self._uploaded(recording)

    async def _upload(self, source: str, local: _Local) -> Recording:
        """Upload until the answer (or the library) says where it is stored."""
        name = f"{local.sha256}{local.suffix}"
        for _ in range(UPLOAD_ROUNDS):
            self.tally.uploads += 1
            stored = await self.library.upload(
                local.path,
                name,
                local.content_type,
                before_send=lambda: self.journal.mark_uploading(
                    source, local.sha256, local.size, name
                ),
            )
            _raise_stopped(stored)
            if not stored.url and not stored.uncertain:
                raise RecordingError(f"recording {source}: {stored.error}")
            if not stored.url:  # the answer was lost: stored or not, the library says
                await asyncio.sleep(GRACE_S)
                stored = await self.library.find(name)
                _raise_stopped(stored)
                if stored.error:
                    raise RecordingError(
                        f"recording {source}: the upload's answer was lost and the media"
                        f" library could not be read ({stored.error}); a re-run looks again"
                    )
            if stored.url:
                return Recording(
                    source, local.sha256, local.size, name, "uploaded", stored.url, stored.file_id
                )
        raise RecordingError(
            f"recording {source}: {UPLOAD_ROUNDS} uploads lost their answers and none shows in"
            " the media library; a re-run tries again"
        )

    def _uploaded(self, recording: Recording) -> str:
        self.journal.mark_uploaded(recording)
        self.tally.copied[recording.source] = recording
        return recording.url

    # Sources ---------------------------------------------------------------------------------

    async def _fetch(self, source: str) -> _Local:
        if source.startswith(("http://", "https://")):
            local = self._from_folder_by_url(source)
            return local if local is not None else await self._download(source)
        return await asyncio.to_thread(self._read_file, Path(source))

    def _from_folder_by_url(self, url: str) -> _Local | None:
        """With `--recordings-dir`, a URL's file name found in the folder is read from there:
        a PBX's web link to a file that its disk holds."""
        if self.options.directory is None:
            return None
        name = unquote(PurePosixPath(urlsplit(url).path).name)
        candidate = self.options.directory / name
        if name and candidate.is_file():
            return self._read_file(candidate)
        return None

    def _read_file(self, path: Path) -> _Local:
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as handle:
                while block := handle.read(CHUNK):
                    digest.update(block)
                    size += len(block)
        except OSError as exc:
            raise RecordingError(f"recording {path}: cannot be read ({exc.strerror})") from None
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return _Local(path, digest.hexdigest(), size, kind, _suffix(path.name, kind), False)

    def _in_folder(self, alt_id: str) -> Path | str | None:
        """The PBX's recording of a call, by its unique id: a file named after it
        (`1741601700.123.wav`) or ending with it (`out-...-1741601700.123.wav`). None when
        there is none; two is an error, never a guess."""
        if self._folder is None:
            self._folder = _index_folder(self.options.directory)
        found = self._folder.get(alt_id, [])
        if len(found) > 1:
            names = ", ".join(p.name for p in found[:3])
            return f"recording of call {alt_id}: {len(found)} files match ({names}); keep one"
        return found[0] if found else None

    async def _download(self, url: str) -> _Local:
        client = self._client()
        last = ""
        for attempt in range(1, SOURCE_ATTEMPTS + 1):
            try:
                local = await self._download_once(client, url)
                if local is not None:
                    return local
                last = "the download broke"
            except _Retry as exc:
                last = str(exc)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if attempt < SOURCE_ATTEMPTS:
                await asyncio.sleep(backoff(attempt))
        raise RecordingError(
            f"recording {url}: the source failed {SOURCE_ATTEMPTS} times ({last}); a re-run"
            " tries again"
        )

    async def _download_once(self, client: httpx.AsyncClient, url: str) -> _Local | None:
        headers = self._credentials(url)
        async with client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status in (401, 403):
                raise RecordingError(
                    f"recording {url}: the source refused access (HTTP {status}); give its"
                    " credentials in RECORDINGS_BASIC_AUTH or RECORDINGS_BEARER_TOKEN"
                )
            if status in (404, 410):
                raise RecordingError(f"recording {url}: not found at the source (HTTP {status})")
            if status == 429 or status >= 500:
                raise _Retry(f"HTTP {status}")
            if not 200 <= status < 300:
                raise RecordingError(f"recording {url}: the source answered HTTP {status}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.options.max_bytes:
                raise RecordingError(
                    f"recording {url}: {_mb(int(declared))}, over HighLevel's upload limit"
                    f" of {_mb(self.options.max_bytes)}"
                )
            kind = response.headers.get("content-type", "").split(";")[0].strip()
            name = unquote(PurePosixPath(urlsplit(url).path).name)
            if not kind or kind == "application/octet-stream":
                kind = mimetypes.guess_type(name)[0] or kind or "application/octet-stream"
            digest = hashlib.sha256()
            size = 0
            handle, raw_path = tempfile.mkstemp(dir=self._tmp_dir(), suffix=".part")
            path = Path(raw_path)
            try:
                with os.fdopen(handle, "wb") as out:
                    async for block in response.aiter_bytes(CHUNK):
                        size += len(block)
                        if size > self.options.max_bytes:
                            raise RecordingError(
                                f"recording {url}: over HighLevel's upload limit of"
                                f" {_mb(self.options.max_bytes)}"
                            )
                        digest.update(block)
                        out.write(block)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            if declared and declared.isdigit() and int(declared) != size:
                path.unlink(missing_ok=True)
                return None
            return _Local(path, digest.hexdigest(), size, kind, _suffix(name, kind), True)

    def _credentials(self, url: str) -> dict[str, str]:
        """The source's credentials go only over HTTPS, or to this machine: a plain-HTTP link
        in an export would otherwise carry them across the network in the clear."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not _loopback(parts.hostname or ""):
            return {}
        if self.options.bearer is not None:
            return {"Authorization": f"Bearer {self.options.bearer.reveal()}"}
        if self.options.basic_auth is not None:
            pair = base64.b64encode(self.options.basic_auth.reveal().encode()).decode("ascii")
            return {"Authorization": f"Basic {pair}"}
        return {}

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                follow_redirects=True,  # httpx drops Authorization when a redirect leaves the host
                timeout=httpx.Timeout(self.options.timeout_s, connect=10.0),
                limits=httpx.Limits(max_connections=self.options.concurrency),
            )
        return self._http

    def _tmp_dir(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="call-importer-recordings-"))
        return self._tmp

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


class _Retry(Exception):
    """The source said to come back later (429, 5xx)."""


def _raise_stopped(stored: Stored) -> None:
    if stored.stopped:
        raise CopyStopped(stored.error)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _index_folder(directory: Path | None) -> dict[str, list[Path]]:
    """Every recording under the folder, by its name without the suffix, and by the part after
    its last `-` (FreePBX names files `out-<to>-<from>-<date>-<time>-<uniqueid>.wav`)."""
    index: dict[str, list[Path]] = {}
    if directory is None:
        return index
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or not path.name.endswith(AUDIO_SUFFIXES):
            continue
        stem = path.name[: path.name.rindex(".")]
        for key in dict.fromkeys((stem, stem.rsplit("-", 1)[-1])):
            index.setdefault(key, []).append(path)
    return index


def _suffix(name: str, content_type: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return suffix
    return mimetypes.guess_extension(content_type) or ""


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
