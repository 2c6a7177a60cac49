"""Zip containers checked before calamine sees them (``Package``).

Refused: encrypted members, more than ``max_uncompressed_bytes`` declared, a part compressed
beyond ``max_compression_ratio``, a part whose data unpacks to more (or less) than its header
declares, and any XML part carrying a DTD (entity declarations: "billion laughs", external
entities; spreadsheet programs never write one). Every member is inflated here, in bounded
chunks, and checked against its size and CRC, so calamine only ever inflates data proven to
match its header.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator

from flows.read.cells import setting
from flows.settings import Limits
from schemas.records import SourceError

#: Members smaller than this are not checked for their compression ratio: tiny XML parts
#: (styles, a one-cell sheet) legitimately compress a hundredfold.
_RATIO_CHECK_BYTES = 1_000_000


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_CHUNK = 1 << 20
#: Bytes that may come before the first "<" of an XML part: whitespace (UTF-8 or UTF-16) and
#: the byte-order marks.
_XML_LEADING = b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"
#: What may follow "<!" in a part written by a spreadsheet program: a comment or CDATA.
#: Anything else (DOCTYPE, ENTITY, ELEMENT…) is a DTD; also looked for in UTF-16.
_DTD_UTF16 = tuple(s.encode(enc) for s in ("<!D", "<!E") for enc in ("utf-16-le", "utf-16-be"))


class Package:
    """A zip container whose every member is inflated here at most once, in bounded chunks.

    The central directory is checked when opening (encryption, declared total size, each large
    part's compression ratio, duplicate names, compression methods). Reading a member inflates
    its raw data with zlib, never producing more than the size its header declares, and checks
    the length and CRC of what came out; XML members are refused if they carry a DTD. Members
    no one asked for are run through the same checks by ``verify_rest`` before calamine opens
    the file, so calamine only ever inflates data proven to match its header.
    """

    def __init__(self, content: bytes, filename: str, limits: Limits) -> None:
        self.content = content
        self.filename = filename
        try:
            self._zf = zipfile.ZipFile(io.BytesIO(content))
            infos = self._zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise SourceError(f"{filename}: damaged file (not a readable zip: {exc})") from None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self._infos:
                # Two readers could pick different copies: the checked one and another.
                raise SourceError(f"{filename}: damaged file (two parts named {info.filename})")
            self._infos[info.filename] = info
        self._check_directory(limits)
        self._unread = set(self._infos)

    def _check_directory(self, limits: Limits) -> None:
        filename = self.filename
        infos = list(self._infos.values())
        if any(info.flag_bits & 0x1 for info in infos):
            raise SourceError(f"{filename}: the file is password-protected")
        total = self.unpacked_size
        if total > limits.max_uncompressed_bytes:
            raise SourceError(
                f"{filename}: unpacks to {total:,} bytes, more than the limit of "
                f"{limits.max_uncompressed_bytes:,}{setting('max_uncompressed_bytes')}"
            )
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_CHECK_BYTES and ratio > limits.max_compression_ratio:
                raise SourceError(
                    f"{filename}: part {info.filename} is compressed {ratio:.0f}:1, more than "
                    f"the limit of {limits.max_compression_ratio:.0f}:1 (a zip bomb?)"
                    f"{setting('max_compression_ratio')}"
                )
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise SourceError(
                    f"{filename}: damaged or unsupported file (part {info.filename} uses "
                    f"compression method {info.compress_type}, which spreadsheet programs "
                    f"do not write)"
                )

    @property
    def unpacked_size(self) -> int:
        """The bytes every member declares, unpacked (within ``max_uncompressed_bytes``)."""
        return sum(info.file_size for info in self._infos.values())

    @property
    def names(self) -> set[str]:
        """The names of every member."""
        return set(self._infos)

    def close(self) -> None:
        """Close the zip file (the content stays)."""
        self._zf.close()

    def read(self, name: str) -> bytes:
        """A member's bytes, checked (KeyError when there is no such member)."""
        info = self._infos[name]
        data = b"".join(self._chunks(info))
        self._unread.discard(name)
        return data

    def verify_rest(self) -> None:
        """Run every member not read yet through the checks, keeping nothing in memory."""
        for name in sorted(self._unread):
            for _ in self._chunks(self._infos[name]):
                pass
        self._unread.clear()

    def rebuild(self, replaced: dict[str, bytes], *, stored: bool = False) -> bytes:
        """The same zip with some parts replaced. Each part keeps its ZipInfo (so an ods
        mimetype stays first and stored), or with ``stored`` every part is stored uncompressed,
        for a copy that is read once and dropped (deflating it again would cost more)."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as rebuilt:
            for info in self._infos.values():
                data = replaced.get(info.filename)
                if data is None:
                    data = self.read(info.filename)
                if stored:
                    info = zipfile.ZipInfo(info.filename, info.date_time)
                rebuilt.writestr(info, data)
        return out.getvalue()

    def _damaged(self, info: zipfile.ZipInfo, what: str) -> SourceError:
        return SourceError(f"{self.filename}: damaged file (part {info.filename} {what})")

    def _raw(self, info: zipfile.ZipInfo) -> memoryview:
        """The member's compressed bytes, located through its local header."""
        at = info.header_offset
        try:
            sig, *_, name_len, extra_len = _LOCAL_HEADER.unpack_from(self.content, at)
        except struct.error:
            raise self._damaged(info, "is cut off") from None
        if sig != b"PK\x03\x04":
            raise self._damaged(info, "has no local header")
        start = at + _LOCAL_HEADER.size + name_len + extra_len
        raw = memoryview(self.content)[start : start + info.compress_size]
        if len(raw) < info.compress_size:
            raise self._damaged(info, "is cut off")
        return raw

    def _chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        raw = self._raw(info)
        declared = info.file_size
        crc = 0
        produced = 0
        scan: DtdScan | None = None
        undecided = True  # markup or not: told by the first byte that is not whitespace
        if info.compress_type == zipfile.ZIP_STORED:
            if len(raw) != declared:
                raise self._damaged(info, "does not match its declared size")
            pieces: Iterator[bytes] = (
                bytes(raw[i : i + _CHUNK]) for i in range(0, len(raw), _CHUNK)
            )
        else:
            pieces = self._inflate(info, raw)
        for piece in pieces:
            produced += len(piece)
            if produced > declared:
                # A damaged file far more often than a zip bomb (one changed byte will do);
                # either way nothing past the declared size is ever made.
                raise self._damaged(
                    info, f"unpacks to more than the {declared:,} bytes its header declares"
                )
            crc = zlib.crc32(piece, crc)
            if undecided and (head := piece.lstrip(_XML_LEADING)):
                # Decided by content, not by name (a sheet part may be named anything), and
                # not by the first bytes alone (megabytes of spaces may come first).
                undecided = False
                if head.startswith(b"<"):
                    scan = DtdScan(self.filename, info.filename, piece)
            if scan is not None:
                scan.feed(piece)
            yield piece
        if produced != declared:
            raise self._damaged(info, "is shorter than its declared size")
        if crc != info.CRC:
            raise self._damaged(info, "fails its checksum")

    def _inflate(self, info: zipfile.ZipInfo, raw: memoryview) -> Iterator[bytes]:
        """Inflate in chunks of at most _CHUNK bytes out, one past the declared size at most,
        so data that lies about its size is caught after one chunk, not after gigabytes."""
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        pos = 0
        limit = info.file_size + 1
        produced = 0
        try:
            while not inflater.eof and produced < limit:
                data: bytes | memoryview
                if inflater.unconsumed_tail:
                    data = inflater.unconsumed_tail
                elif pos < len(raw):
                    data = raw[pos : pos + _CHUNK]
                    pos += _CHUNK
                else:
                    break
                out = inflater.decompress(data, min(_CHUNK, limit - produced))
                produced += len(out)
                if out:
                    yield out
        except zlib.error:
            raise self._damaged(info, "cannot be unpacked") from None
        if not inflater.eof and produced <= info.file_size:
            raise self._damaged(info, "is cut off")


class DtdScan:
    """Refuses an XML part as soon as a DTD appears in it, across chunk boundaries.

    Looks for "!" (rare in XML, unlike "<", so found at memchr speed) and then at its
    neighbours. In a UTF-16 part (no spreadsheet program writes one, but
    XML allows it) the UTF-16 forms of "<!D" and "<!E" are looked for instead.
    """

    def __init__(self, filename: str, part: str, first: bytes) -> None:
        self.filename = filename
        self.part = part
        self._utf16 = b"\x00" in first[:64]
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        """Scan the next chunk of the part; SourceError at a DTD."""
        # The seam (end of the last chunk + start of this one), then the chunk itself.
        for data in (self._tail + chunk[:16], chunk):
            if self._utf16:
                if any(s in data for s in _DTD_UTF16):
                    raise self._refuse()
            else:
                self._scan(data)
        self._tail = chunk[-16:]

    def _scan(self, data: bytes) -> None:
        at = data.find(b"!")
        while at >= 0:
            if at and data[at - 1] == 0x3C:  # "<!"
                follow = data[at + 1 : at + 8]
                if not follow.startswith((b"--", b"[CDATA[")):
                    cut = len(follow) < 7 and (
                        b"--".startswith(follow) or b"[CDATA[".startswith(follow)
                    )
                    if not cut:  # (if cut by the chunk's end, the seam decides)
                        raise self._refuse()
            at = data.find(b"!", at + 1)

    def _refuse(self) -> SourceError:
        return SourceError(
            f"{self.filename}: part {self.part} declares a DTD (entity declarations, which "
            f"spreadsheet programs never write: refused as a possible XML bomb)"
        )
