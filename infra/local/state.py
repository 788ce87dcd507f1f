"""Local mode's state on disk, so that a restart picks up where the last run stopped.

What the embedded moto holds (tables, queues with their messages, the payload bucket, the KMS
key that seals SMTP passwords), the local clock's offset and the generated admin token live in
one folder: `MAILPROXY_STATE_DIR`, default `.mailproxy/` in the working directory.

The state is one file, replaced whole (temporary file, fsync, rename): a crash while saving
leaves the previous state, never half of a new one. Its first line is a JSON header (format
version, the moto version that wrote it, and the length and SHA-256 of each section that
follows), so a truncated or foreign file is recognised before anything is loaded. DynamoDB
tables and S3 buckets are pickled as moto holds them, which ties a state to the moto version
that wrote it (pinned in pyproject); SQS queues and KMS keys hold locks and private-key objects
that do not pickle, so they are written as small explicit snapshots. A folder that cannot be
read is refused, never dropped or overwritten: the person decides what to do with it.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import hashlib
import json
import logging
import os
import pickle
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any

from infra.local.run import StartupError

log = logging.getLogger("mailproxy.local.state")

STATE_DIR_ENV = "MAILPROXY_STATE_DIR"
DEFAULT_STATE_DIR = ".mailproxy"
STATE_FILE = "state"
TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
FORMAT_NAME = "mailproxy-local-state"
FORMAT_VERSION = 1
SAVE_INTERVAL_SECONDS = 60.0
SECTIONS = ("meta", "sqs", "dynamodb", "s3", "kms")
_HEADER_LIMIT = 1 << 20
_PICKLE_PROTOCOL = 5
# Moto objects a request thread may be changing while a periodic save reads them (S3 has no
# lock of its own here): a dict resized under the pickler is read again.
_SNAPSHOT_ATTEMPTS = 5


class UnreadableState(StartupError):
    """The state folder holds something this version cannot load."""


def state_dir() -> Path:
    raw = os.environ.get(STATE_DIR_ENV, "").strip()
    return Path(raw or DEFAULT_STATE_DIR).expanduser().resolve()


def moto_version() -> str:
    return version("moto")


@dataclass
class SaveReport:
    seconds: float
    locked_seconds: float  # DynamoDB requests waited this long
    bytes: int
    counts: dict[str, int]

    def describe(self) -> str:
        counted = ", ".join(f"{value} {name}" for name, value in self.counts.items())
        return f"{counted}; {self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s"


@dataclass
class LocalState:
    folder: Path
    _sections: dict[str, Any] | None = None
    _read_seconds: float | None = None  # None: not read yet
    _taken: bool = False
    _lock_fd: int | None = None
    _save_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> LocalState:
        return cls(state_dir())

    @property
    def file(self) -> Path:
        return self.folder / STATE_FILE

    # -- opening --------------------------------------------------------------------------

    def open(self) -> None:
        """Take the folder for this process and check that its state can be loaded; creates
        an empty folder, changes nothing in an existing one."""
        if self._read_seconds is not None:
            return
        self._take_folder()
        started = time.perf_counter()
        self._sections = self._read_file()
        self._read_seconds = time.perf_counter() - started

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._taken = False

    def _take_folder(self) -> None:
        if self._taken:
            return
        try:
            import fcntl
        except ImportError:  # no flock (Windows): one local mode per folder is on the user
            fcntl = None  # type: ignore[assignment]
        try:
            # Private: it holds the KMS key material, and so every sealed SMTP password.
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.folder, os.O_RDONLY) if fcntl is not None else None
        except OSError as error:
            raise StartupError(
                f"cannot use {self.folder} as the state folder ({error.strerror}): "
                f"fix it or set {STATE_DIR_ENV}"
            ) from None
        if fcntl is None or fd is None:
            self._taken = True
            return
        try:
            # On the folder itself, not a lock file in it: a refused folder stays as it was.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StartupError(
                f"another local mode is using the state in {self.folder}: stop it, "
                f"or set {STATE_DIR_ENV} to another folder"
            ) from None
        except OSError:  # a file system without locks (some network mounts): go without
            os.close(fd)
        else:
            self._lock_fd = fd
        self._taken = True

    def _refuse(self, why: str) -> UnreadableState:
        return UnreadableState(
            f"the state in {self.folder} {why}; move it away or delete it to start empty"
        )

    def _read_file(self) -> dict[str, Any] | None:
        try:
            handle = self.file.open("rb")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._refuse(f"cannot be read ({error.strerror})") from None
        with handle:
            first = handle.readline(_HEADER_LIMIT)
            header = _parse_header(first)
            if header is None:
                raise self._refuse(f"is damaged ({self.file.name} has no readable header)")
            if header.get("version") != FORMAT_VERSION or header.get("moto") != moto_version():
                raise self._refuse(
                    f"was written by another version (format {header.get('version')}, "
                    f"moto {header.get('moto')}; this one reads format {FORMAT_VERSION}, "
                    f"moto {moto_version()})"
                )
            body = memoryview(handle.read())  # sections are sliced, not copied
        try:
            expected = sum(int(section["bytes"]) for section in header["sections"])
            names = [section["name"] for section in header["sections"]]
        except (KeyError, TypeError, ValueError):
            raise self._refuse(f"is damaged ({self.file.name} has a broken header)") from None
        if len(body) != expected or set(names) != set(SECTIONS):
            raise self._refuse(
                f"is damaged ({self.file.name} holds {len(body)} of the {expected} bytes "
                "its header announces: truncated, or written over)"
            )
        sections: dict[str, Any] = {}
        offset = 0
        for section in header["sections"]:
            data = body[offset : offset + section["bytes"]]
            offset += section["bytes"]
            if hashlib.sha256(data).hexdigest() != section.get("sha256"):
                raise self._refuse(f"is damaged (its {section['name']} section fails its checksum)")
            try:
                sections[section["name"]] = _decode(section["name"], data)
            except Exception as error:
                raise self._refuse(
                    f"is damaged (its {section['name']} section cannot be loaded: {error!r})"
                ) from None
        return sections

    # -- the admin token ------------------------------------------------------------------

    def admin_token(self) -> str:
        """The generated admin token of this folder, made on first use: clients and the
        banner keep working across restarts."""
        self.open()
        path = self.folder / TOKEN_FILE
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            token = ""
        except OSError as error:
            raise self._refuse(f"has an unreadable {TOKEN_FILE} ({error.strerror})") from None
        if token:
            return token
        token = secrets.token_urlsafe(24)
        _write_atomically(path, token.encode() + b"\n")
        return token

    # -- restore --------------------------------------------------------------------------

    def restore(self) -> SaveReport | None:
        """Put the saved state into this process's moto backends and clock; None when there
        is none. Call before provisioning, with nothing else using moto yet."""
        self.open()
        if self._sections is None:
            return None
        started = time.perf_counter()
        sections, self._sections = self._sections, None  # the backends own these objects now
        _restore_sqs(sections["sqs"])
        _restore_dynamodb(sections["dynamodb"])
        _restore_s3(sections["s3"])
        _restore_kms(sections["kms"])
        from mailproxy import runtime

        runtime.clock.offset_seconds = float(sections["meta"].get("clock_offset_seconds", 0.0))
        counts = sections["meta"].get("counts", {})
        seconds = (self._read_seconds or 0.0) + time.perf_counter() - started
        return SaveReport(seconds, 0.0, self.file.stat().st_size, counts)

    # -- save -----------------------------------------------------------------------------

    def save(
        self,
        dynamodb_lock: AbstractContextManager[Any] | None = None,
        clock_offset_seconds: float | None = None,
    ) -> SaveReport:
        """Write what moto holds now. `dynamodb_lock` is held while the tables are read, so a
        save sees every DynamoDB request whole. The clock saved is this process's unless
        another's is given (local mode's, when this is the emulation's process)."""
        self.open()
        with self._save_lock:
            started = time.perf_counter()
            # SQS before DynamoDB before S3: a reference is queued after its message is stored
            # and deleted after its outcome is; a payload is stored before its message. Read in
            # this order while requests run, a saved state never has a queued reference whose
            # message is missing, a sent message still leased, or a message without its payload
            # (the scheduler re-enqueues a stored message whose reference is not there).
            sqs, queued = _retrying(_snapshot_sqs)
            locked = time.perf_counter()
            with dynamodb_lock or contextlib.nullcontext():
                dynamodb, items = _snapshot_dynamodb()
            locked = time.perf_counter() - locked
            s3, objects = _snapshot_s3()
            kms, keys = _retrying(_snapshot_kms)
            if clock_offset_seconds is None:
                from mailproxy import runtime

                clock_offset_seconds = runtime.clock.offset_seconds
            counts = {"items": items, "queued messages": queued, "objects": objects, "keys": keys}
            meta = {
                "clock_offset_seconds": clock_offset_seconds,
                "saved_at": time.time(),
                "counts": counts,
            }
            encoded: dict[str, bytes | _Section] = {
                "meta": json.dumps(meta).encode(),
                "sqs": _pickle(sqs),
                "dynamodb": dynamodb,
                "s3": s3,
                "kms": _pickle(kms),
            }
            header = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "moto": moto_version(),
                "python": ".".join(map(str, sys.version_info[:3])),
                "saved_at": meta["saved_at"],
                "sections": [
                    {"name": name, "bytes": _size(data), "sha256": _sha256(data)}
                    for name, data in encoded.items()
                ],
            }
            chunks = [json.dumps(header).encode() + b"\n", *encoded.values()]
            _write_atomically(self.file, chunks)
            size = sum(_size(chunk) for chunk in chunks)
            return SaveReport(time.perf_counter() - started, locked, size, counts)

    def autosave(
        self,
        stop: threading.Event,
        dynamodb_lock: AbstractContextManager[Any] | None = None,
        interval: float = SAVE_INTERVAL_SECONDS,
        save: Callable[[], object] | None = None,
    ) -> threading.Thread:
        """Save every `interval` seconds until `stop` is set: a hard kill loses at most that.
        `save` replaces this process's own save (local mode's asks the emulation's process)."""

        def run() -> None:
            while not stop.wait(interval):
                try:
                    report = save() if save is not None else self.save(dynamodb_lock).describe()
                    log.debug("state saved in %s: %s", self.folder, report)
                except Exception:
                    log.exception(
                        "saving the state in %s failed; the last save stands", self.folder
                    )

        thread = threading.Thread(target=run, name="state-autosave", daemon=True)
        thread.start()
        return thread


def settle(threads: Callable[[], list[threading.Thread]], timeout: float) -> list[str]:
    """Wait for the threads that change state to finish what they are doing; returns the
    names of those still running at the deadline."""
    deadline = time.monotonic() + timeout
    for thread in threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread.name for thread in threads() if thread.is_alive()]


def _parse_header(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        header = json.loads(line)
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        return None
    return header


def _size(data: bytes | _Section) -> int:
    return data.size if isinstance(data, _Section) else len(data)


def _sha256(data: bytes | _Section) -> str:
    return data.sha256 if isinstance(data, _Section) else hashlib.sha256(data).hexdigest()


def _write_atomically(
    path: Path, chunks: Sequence[bytes | _Section] | bytes, mode: int = 0o600
) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # a temporary file left by a crash keeps its old mode
        with os.fdopen(fd, "wb") as handle:
            for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                for block in chunk.blocks() if isinstance(chunk, _Section) else [chunk]:
                    handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    # The rename itself must reach the disk, or a power loss may bring back the old file.
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class _Section:
    """One section of a save, pickled straight into a temporary file and hashed as it is
    written: pickled into memory, the state of 10,000 messages cost the emulation's process
    about 40 MiB more than it holds, for the length of each save."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the section is)
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self._file.write(data)
        self._sha.update(data)
        self.size += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def blocks(self, size: int = 1 << 20) -> Iterator[bytes]:
        self._file.seek(0)
        while block := self._file.read(size):
            yield block


def _pickle(
    value: Any, dispatch: dict[type, Any] | None = None, *, shares_nothing: bool = False
) -> _Section:
    section = _Section()
    pickler = pickle.Pickler(section, protocol=_PICKLE_PROTOCOL)
    if dispatch:
        pickler.dispatch_table = copyreg.dispatch_table | dispatch
    if shares_nothing:
        # No memo: it holds every object pickled (and each item's attributes copied for it)
        # until the end, 80 MiB at 10,000 messages. Right only for a tree of objects, each
        # reachable once: moto's tables (their items referenced only from the table).
        pickler.fast = True
    with _collector_paused():
        pickler.dump(value)
    return section


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # A save or a load makes hundreds of thousands of short-lived or new objects and no
    # garbage: the collector's passes over the whole heap would cost more than the work.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decode(name: str, data: memoryview) -> Any:
    if name == "meta":
        return json.loads(bytes(data))
    with _collector_paused():
        # Only this folder's own saves are loaded, after their checksums were checked.
        return pickle.loads(data)  # noqa: S301


def _regions(service: str) -> Iterator[tuple[str, str, Any]]:
    from moto.backends import get_backend

    for account_id, per_account in list(get_backend(service).items()):  # type: ignore[call-overload]
        for region, backend in list(per_account.items()):
            yield account_id, region, backend


def _backend(service: str, account_id: str, region: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)[account_id][region]  # type: ignore[call-overload]


def _retrying(snapshot: Callable[[], Any]) -> Any:
    for attempt in range(_SNAPSHOT_ATTEMPTS):
        try:
            return snapshot()
        except RuntimeError:  # "changed size during iteration": a request was writing
            if attempt == _SNAPSHOT_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


# -- DynamoDB: the tables as moto holds them ----------------------------------------------------


def _table_state(table: Any) -> tuple[Any, ...]:
    # Local mode's own caches on a table (infra/local/moto_patches.py) are rebuilt on use.
    state = {
        key: value for key, value in table.__dict__.items() if not key.startswith("_mailproxy")
    }
    return (copyreg.__newobj__, (type(table),), state)  # type: ignore[attr-defined]


def _item_attributes(attributes: Any) -> tuple[Any, ...]:
    # Rebuilt in one update: unpickling key by key would re-measure the whole item's size on
    # every attribute (LimitedSizeDict.__setitem__), seconds for a few thousand messages.
    return (type(attributes), (dict(attributes),))


def _snapshot_dynamodb() -> tuple[_Section, int]:
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict
    from moto.dynamodb.models.table import Table

    tables = {
        (account_id, region): dict(backend.tables)
        for account_id, region, backend in _regions("dynamodb")
        if backend.tables
    }
    items = sum(len(table) for per_region in tables.values() for table in per_region.values())
    dispatch: dict[type, Any] = {cls: _table_state for cls in [Table, *_subclasses(Table)]}
    dispatch[LimitedSizeDict] = _item_attributes
    return _pickle(tables, dispatch, shares_nothing=True), items


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    direct: list[type] = cls.__subclasses__()
    for sub in direct:
        found += [sub, *_subclasses(sub)]
    return found


def _restore_dynamodb(tables: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (account_id, region), per_region in tables.items():
        _backend("dynamodb", account_id, region).tables.update(per_region)


# -- S3: the buckets as moto holds them --------------------------------------------------------


def _snapshot_s3() -> tuple[_Section, int]:
    def read() -> tuple[_Section, int]:
        buckets = {
            (account_id, partition): dict(backend.buckets)
            for account_id, partition, backend in _regions("s3")
            if backend.buckets
        }
        objects = sum(
            len(bucket.keys) for per_region in buckets.values() for bucket in per_region.values()
        )
        return _pickle(buckets), objects

    result: tuple[_Section, int] = _retrying(read)
    return result


def _restore_s3(buckets: dict[tuple[str, str], dict[str, Any]]) -> None:
    from moto.backends import get_backend

    backends = get_backend("s3")
    for (account_id, partition), per_partition in buckets.items():
        _backend("s3", account_id, partition).buckets.update(per_partition)
        for name, bucket in per_partition.items():
            # Kept by moto's FakeBucket constructor, which unpickling does not run.
            backends.bucket_accounts[name] = (bucket.partition, account_id)  # type: ignore[attr-defined]


# -- SQS: queues and their messages, explicitly (a queue holds a Condition) ---------------------

# Computed by moto, or kept by the restore itself.
_DERIVED_QUEUE_ATTRIBUTES = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
}
_MESSAGE_FIELDS = (
    "id",
    "body",
    "message_attributes",
    "system_attributes",
    "sender_id",
    "sent_timestamp",
    "approximate_first_receive_timestamp",
    "approximate_receive_count",
    "deduplication_id",
    "group_id",
    "sequence_number",
)


def _snapshot_sqs() -> tuple[dict[tuple[str, str], list[dict[str, Any]]], int]:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    snapshot: dict[tuple[str, str], list[dict[str, Any]]] = {}
    count = 0
    for account_id, region, backend in _regions("sqs"):
        queues = []
        for queue in list(backend.queues.values()):
            messages = []
            for message in list(queue._messages):
                fields = {name: getattr(message, name, None) for name in _MESSAGE_FIELDS}
                # Timers as what is left of them: they run again from the restart.
                fields["delay_ms"] = max(0.0, message.delayed_until - now)
                fields["invisible_ms"] = max(0.0, message.visible_at - now)
                messages.append(fields)
            count += len(messages)
            queues.append(
                {
                    "name": queue.name,
                    "attributes": {
                        key: value
                        for key, value in queue.attributes.items()
                        if key not in _DERIVED_QUEUE_ATTRIBUTES and value is not None
                    },
                    "tags": dict(queue.tags),
                    "created_timestamp": queue.created_timestamp,
                    "last_modified_timestamp": queue.last_modified_timestamp,
                    "messages": messages,
                }
            )
        if queues:
            snapshot[(account_id, region)] = queues
    return snapshot, count


def _restore_sqs(snapshot: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Message

    now = unix_time_millis()
    for (account_id, region), queues in snapshot.items():
        backend = _backend("sqs", account_id, region)
        for saved in queues:
            backend.queues.pop(saved["name"], None)
            attributes = dict(saved["attributes"])
            attributes.pop("RedrivePolicy", None)  # its dead-letter queue may come later
            backend.create_queue(saved["name"], tags=saved["tags"] or None, **attributes)
        for saved in queues:
            queue = backend.queues[saved["name"]]
            if "RedrivePolicy" in saved["attributes"]:
                queue._set_attributes({"RedrivePolicy": saved["attributes"]["RedrivePolicy"]})
            queue.created_timestamp = saved["created_timestamp"]
            queue.last_modified_timestamp = saved["last_modified_timestamp"]
            for fields in saved["messages"]:
                message = Message(fields["id"], fields["body"], fields["system_attributes"])
                for name in _MESSAGE_FIELDS[3:]:
                    setattr(message, name, fields[name])
                message.message_attributes = fields["message_attributes"] or {}
                message.delayed_until = now + fields["delay_ms"] if fields["delay_ms"] else 0.0
                message.visible_at = now + fields["invisible_ms"] if fields["invisible_ms"] else 0.0
                queue._messages.append(message)
                if fields["invisible_ms"]:
                    queue.pending_messages.add(message)


# -- KMS: keys with their material and aliases, explicitly (private keys do not pickle) ---------


def _snapshot_kms() -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    snapshot: dict[tuple[str, str], dict[str, Any]] = {}
    count = 0
    for account_id, region, backend in _regions("kms"):
        keys = []
        for key in list(backend.keys.values()):
            attributes = {
                name: value
                for name, value in key.__dict__.items()
                if name not in ("private_key", "aliases")
            }
            keys.append(
                {
                    "attributes": attributes,
                    "aliases": sorted(key.aliases),
                    "private_key": _private_key_snapshot(key),
                }
            )
        if keys:
            count += len(keys)
            snapshot[(account_id, region)] = {"keys": keys, "tags": dict(backend.tagger.tags)}
    return snapshot, count


def _private_key_snapshot(key: Any) -> dict[str, Any] | None:
    """moto's signing-key wrapper: its class, its plain fields and the key as PKCS #8 DER.
    Every moto key has one, symmetric keys too (unused there)."""
    wrapper = getattr(key, "private_key", None)
    if wrapper is None:
        return None
    from cryptography.hazmat.primitives import serialization

    try:
        der = wrapper.private_key.private_bytes(
            encoding=serialization.Encoding.DER,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
    except Exception:
        # An unknown kind of key: restored with a new one of its spec (signatures change,
        # encryption with the key material does not).
        log.warning("KMS key %s: its signing key is not saved, a new one is made", key.id)
        return None
    fields = {name: value for name, value in wrapper.__dict__.items() if name != "private_key"}
    cls = type(wrapper)
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "fields": fields, "der": der}


def _private_key(saved: dict[str, Any] | None, key_spec: str) -> Any:
    if saved is None:
        from moto.kms.utils import generate_private_key

        return generate_private_key(key_spec)
    from cryptography.hazmat.primitives import serialization

    module, _, name = saved["class"].partition(":")
    wrapper = object.__new__(getattr(import_module(module), name))
    wrapper.__dict__.update(saved["fields"])
    wrapper.private_key = serialization.load_der_private_key(saved["der"], password=None)
    return wrapper


def _restore_kms(snapshot: dict[tuple[str, str], dict[str, Any]]) -> None:
    from moto.kms.models import Key

    for (account_id, region), saved in snapshot.items():
        backend = _backend("kms", account_id, region)
        for saved_key in saved["keys"]:
            key: Any = Key.__new__(Key)
            key.__dict__.update(saved_key["attributes"])
            key.private_key = _private_key(saved_key["private_key"], key.key_spec)
            key.aliases = {}
            backend.keys[key.id] = key
            for alias in saved_key["aliases"]:
                backend.create_alias(key.id, alias)
        backend.tagger.tags.update(saved["tags"])
