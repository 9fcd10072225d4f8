"""Page requests: ``?limit=N&cursor=C`` (cursor style) or ``?page=P&per_page=N`` (page style).

Cursors are opaque to clients (base64url of the offset); clients should follow ``next``.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import NamedTuple

from farm.spec import Pagination, PaginationStyle

_CURSOR = PaginationStyle.cursor  # read on every page served (a class lookup costs ~0.1 µs)


class PaginationError(ValueError):
    """A malformed or out-of-range pagination parameter (answered with 400)."""


class PageRequest(NamedTuple):
    """A validated page request (a tuple: built on every collection call, so cheap to make)."""

    style: PaginationStyle
    offset: int
    limit: int
    before: int | None = None  # newest-first cursors: the page holds indexes below this
    issued_ms: int | None = None  # when the cursor was issued (farm clock, ms), if it expires

    def next_query(self) -> str:
        """The query string of the page after this one (values need no quoting)."""
        if self.style is _CURSOR:
            return f"limit={self.limit}&cursor={encode_cursor(self.offset + self.limit)}"
        if self.style is PaginationStyle.offset:
            return f"offset={self.offset + self.limit}&limit={self.limit}"
        return f"page={self.offset // self.limit + 2}&per_page={self.limit}"


@functools.lru_cache(maxsize=4096)
def encode_cursor(offset: int) -> str:
    """The opaque cursor of ``offset``."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def encode_keyset_cursor(tag: str, position: int, issued_ms: int | None) -> str:
    """A cursor of a living collection: ``o`` (offset) or ``b`` (newest first: indexes below
    ``position``), stamped with its issue time when cursors expire."""
    raw = f"{tag}:{position}" if issued_ms is None else f"{tag}:{position}:{issued_ms}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor_parts(cursor: str) -> tuple[str, int, int | None]:
    """(tag, position, issued ms or None) of a cursor; :class:`PaginationError` if not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise PaginationError(f"cursor: not a cursor this API issued: {cursor!r}") from None
    parts = raw.split(":")
    if (
        len(parts) not in (2, 3)
        or parts[0] not in ("o", "b")
        or not all(_ascii_digits(p) and len(p) <= 15 for p in parts[1:])
    ):
        raise PaginationError(f"cursor: not a cursor this API issued: {cursor!r}")
    issued = int(parts[2]) if len(parts) == 3 else None
    return parts[0], int(parts[1]), issued


def decode_cursor(cursor: str) -> int:
    """Inverse of :func:`encode_cursor`; :class:`PaginationError` for anything else."""
    tag, position, issued = decode_cursor_parts(cursor)
    if tag != "o" or issued is not None or position >= 10**12:
        raise PaginationError(f"cursor: not a cursor this API issued: {cursor!r}")
    return position


def _ascii_digits(text: str) -> bool:
    """``0-9`` only: ``str.isdigit`` also accepts ``²`` or ``②``, which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def _int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _ascii_digits(raw) or len(raw) > 12:
        raise PaginationError(f"{name}: expected an integer from {low} to {high}, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise PaginationError(f"{name}: expected an integer from {low} to {high}, got {value}")
    return value


def parse_page_request(query: dict[str, str], pagination: Pagination) -> PageRequest:
    """Validate the pagination parameters of a collection request."""
    cap = pagination.max_page_size
    default = min(pagination.page_size, cap)
    if not query:  # the first page at the default size: nothing to validate
        return PageRequest(pagination.style, 0, default)
    if pagination.style is PaginationStyle.cursor:
        if "page" in query or "per_page" in query:
            raise PaginationError("this collection uses cursor pagination: ?limit=N&cursor=C")
        limit = _int(query, "limit", default, 1, cap)
        cursor = query.get("cursor")
        if not cursor:
            return PageRequest(PaginationStyle.cursor, 0, limit)
        tag, position, issued = decode_cursor_parts(cursor)
        if tag == "b":
            return PageRequest(PaginationStyle.cursor, 0, limit, position, issued)
        return PageRequest(PaginationStyle.cursor, position, limit, None, issued)
    if pagination.style is PaginationStyle.offset:
        if "page" in query or "per_page" in query or "cursor" in query:
            raise PaginationError("this collection uses offset pagination: ?offset=O&limit=N")
        limit = _int(query, "limit", default, 1, cap)
        offset = _int(query, "offset", 0, 0, 10**12)
        return PageRequest(PaginationStyle.offset, offset, limit)
    if "cursor" in query:
        raise PaginationError("this collection uses page pagination: ?page=P&per_page=N")
    # ``limit`` is accepted as an alias of ``per_page`` (clients often send it everywhere).
    size_name = "per_page" if "per_page" in query else "limit"
    limit = _int(query, size_name, default, 1, cap)
    page = _int(query, "page", 1, 1, 10**9)
    return PageRequest(pagination.style, (page - 1) * limit, limit)
