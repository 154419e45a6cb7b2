"""Stream the concatenated gzip members an APK v2 file is made of.

An APK v2 file is ``[signature.tar.gz] control.tar.gz data.tar.gz`` glued together.
Signatures cover the *compressed* bytes of the control member and ``datahash`` covers
the compressed bytes of the data member, so we hash exactly the compressed bytes each
member consumed while inflating it in bounded chunks. Nothing is held whole in memory.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from qackage.apk.limits import Limits
from qackage.errors import CorruptArchiveError, UnsafeArchiveError

READ_CHUNK = 1024 * 1024
INFLATE_CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class CompressedInput:
    """The file plus bytes read past the end of the previous member."""

    def __init__(self, stream: BinaryIO, limits: Limits, label: str) -> None:
        self._stream = stream
        self._pending = b""
        self.limits = limits
        self.label = label
        self.compressed_total = 0
        self.unpacked_total = 0

    def read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        try:
            return self._stream.read(READ_CHUNK)
        except OSError as exc:
            raise CorruptArchiveError(f"{self.label}: cannot read: {exc.strerror or exc}") from exc

    def push_back(self, data: bytes) -> None:
        self._pending = data + self._pending

    def at_end(self) -> bool:
        if self._pending:
            return False
        data = self.read()
        if data:
            self._pending = data
            return False
        return True

    def account(self, compressed: int, unpacked: int) -> None:
        self.compressed_total += compressed
        self.unpacked_total += unpacked
        limits = self.limits
        if self.unpacked_total > limits.max_unpacked_bytes:
            raise UnsafeArchiveError(
                f"{self.label}: refusing to unpack more than {limits.max_unpacked_bytes} bytes (decompression bomb?)"
            )
        if self.unpacked_total > limits.ratio_floor_bytes and self.unpacked_total > limits.max_ratio * max(
            self.compressed_total, 1
        ):
            raise UnsafeArchiveError(
                f"{self.label}: compression ratio above {limits.max_ratio:g}:1 (decompression bomb?)"
            )


class Member:
    """One gzip member (or, with ``multi``, all remaining members) read as a byte stream.

    ``digest(name)`` is valid once the member was read to its end.
    """

    def __init__(
        self, source: CompressedInput, *, multi: bool = False, cap: int | None = None, sha1: bool = True
    ) -> None:
        self._source = source
        self._multi = multi
        self._cap = cap
        self._inflater = zlib.decompressobj(wbits=31)
        self._started = False
        self._buffer = b""
        self._offset = 0
        self._tail = b""
        self._eof = False
        # SHA-1 is only needed for control segments (signatures, apk checksums); the
        # data segment needs SHA-256 alone, and hashing is a visible cost on big packages.
        self._sha1 = hashlib.sha1() if sha1 else None
        self._sha256 = hashlib.sha256()
        self.compressed_size = 0
        self.unpacked_size = 0

    # -- inflating ------------------------------------------------------------------------

    def _inflate_some(self) -> bytes:
        """Inflate the next chunk; b'' means the member (or the stream) ended."""
        while not self._eof:
            data = self._tail or self._source.read()
            if not data:
                if not self._started:
                    self._eof = True
                    return b""
                raise CorruptArchiveError(f"{self._source.label}: truncated (gzip stream ends early)")
            if not self._started:
                if not GZIP_MAGIC.startswith(data[:2]):
                    raise CorruptArchiveError(f"{self._source.label}: not a gzip stream")
                self._started = True
            try:
                out = self._inflater.decompress(data, INFLATE_CHUNK)
            except zlib.error as exc:
                raise CorruptArchiveError(f"{self._source.label}: corrupt gzip data ({exc})") from exc
            self._tail = self._inflater.unconsumed_tail
            unused = self._inflater.unused_data
            consumed = len(data) - len(self._tail) - len(unused)
            view = memoryview(data)[:consumed]
            if self._sha1 is not None:
                self._sha1.update(view)
            self._sha256.update(view)
            self.compressed_size += consumed
            self.unpacked_size += len(out)
            self._source.account(consumed, len(out))
            if self._cap is not None and self.unpacked_size > self._cap:
                raise UnsafeArchiveError(f"{self._source.label}: a control segment larger than {self._cap} bytes")
            if self._inflater.eof:
                self._tail = b""
                if self._multi and (unused or not self._source.at_end()):
                    # Another member follows; keep inflating it as part of this stream.
                    self._source.push_back(bytes(unused))
                    self._inflater = zlib.decompressobj(wbits=31)
                    self._started = False
                    if out:
                        return out
                    continue
                if unused:
                    self._source.push_back(bytes(unused))
                self._eof = True
            if out:
                return out
        return b""

    # -- reading --------------------------------------------------------------------------

    # The read buffer is immutable bytes plus an offset: one copy per slice, and the
    # common case (the request fits in what is buffered) is a single comparison.

    def _refill(self) -> bool:
        """Append the next inflated chunk to the unread part of the buffer."""
        chunk = self._inflate_some()
        if not chunk:
            return False
        rest = self._buffer[self._offset :]
        self._buffer = rest + chunk if rest else chunk
        self._offset = 0
        return True

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or CorruptArchiveError when the stream ends first."""
        end = self._offset + size
        while end > len(self._buffer):
            if not self._refill():
                raise CorruptArchiveError(f"{self._source.label}: truncated archive")
            end = self._offset + size
        data = self._buffer[self._offset : end]
        self._offset = end
        return data

    def read_upto(self, size: int) -> bytes:
        """Up to ``size`` bytes; b'' only at the end of the stream."""
        if self._offset >= len(self._buffer) and not self._refill():
            return b""
        end = min(self._offset + size, len(self._buffer))
        data = self._buffer[self._offset : end]
        self._offset = end
        return data

    def iter_exact(self, size: int) -> Iterator[bytes]:
        """Yield exactly ``size`` bytes in chunks (for file bodies)."""
        remaining = size
        while remaining:
            chunk = self.read_upto(min(remaining, INFLATE_CHUNK))
            if not chunk:
                raise CorruptArchiveError(f"{self._source.label}: truncated archive")
            remaining -= len(chunk)
            yield chunk

    def skip(self, size: int) -> None:
        remaining = size
        while remaining:
            buffered = len(self._buffer) - self._offset
            if buffered <= 0:
                if not self._refill():
                    raise CorruptArchiveError(f"{self._source.label}: truncated archive")
                continue
            step = min(buffered, remaining)
            self._offset += step
            remaining -= step

    def drain(self) -> None:
        """Read to the end so that digests cover the whole member."""
        self._buffer = b""
        self._offset = 0
        while self._inflate_some():
            pass

    def at_eof(self) -> bool:
        return self._offset >= len(self._buffer) and not self._refill()

    def sha1(self) -> bytes:
        if self._sha1 is None:
            raise RuntimeError("this member was read without SHA-1")
        return self._sha1.digest()

    def sha256(self) -> bytes:
        return self._sha256.digest()

    @property
    def started(self) -> bool:
        return self._started


class PrefetchingMember(Member):
    """A `Member` that inflates and hashes in a background thread.

    zlib and hashlib release the GIL, so on a multi-core machine inflating the next
    chunks overlaps with parsing the current ones; the queue bounds the read-ahead
    (``PREFETCH_CHUNKS`` x ``INFLATE_CHUNK`` bytes). Errors found by the producer are
    re-raised in the consumer at the point the data would have arrived.
    """

    PREFETCH_CHUNKS = 16

    def __init__(
        self, source: CompressedInput, *, multi: bool = False, cap: int | None = None, sha1: bool = True
    ) -> None:
        super().__init__(source, multi=multi, cap=cap, sha1=sha1)
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=self.PREFETCH_CHUNKS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = Member._inflate_some(self)
                self._put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return

    def _inflate_some(self) -> bytes:
        if self._done:
            return b""
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name="qackage-inflate", daemon=True)
            self._thread.start()
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
            self._thread.join()
        return item

    def close(self) -> None:
        """Stop the producer (when the consumer gives up early)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
