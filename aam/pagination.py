"""How providers paginate, as a client has to read it: ``Link`` headers and expired cursors.

- ``Link: <https://api.example.com/items?page=2>; rel="next"`` (RFC 8288, GitHub): the next page
  of a bare-array listing;
- an expired cursor is a documented refusal (``410``, or ``400`` with a code such as
  ``cursor_expired`` or Salesforce's ``INVALID_QUERY_LOCATOR``): the client restarts the scan.
"""

from __future__ import annotations

import re

from aam.errors import AamError

#: How many times one scan may start over after an expired cursor.
MAX_RESTARTS = 3
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_EXPIRED_CODES = frozenset({"cursor_expired", "invalid_query_locator", "expired_cursor"})


def link_next(header: str | None) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, if any."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        params = match.group(2).lower()
        if re.search(r'rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?', params):
            return match.group(1)
    return None


def cursor_expired(exc: AamError) -> bool:
    """Whether a refused page means "your cursor expired, start over"."""
    return exc.status == 410 or (exc.status == 400 and (exc.reason or "") in _EXPIRED_CODES)
