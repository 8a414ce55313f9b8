"""Text that may reach errors, reports and logs, with its secrets taken out.

Presigned URLs carry their signature in the query string: it is a credential, so a URL is shown
without its query or user info, and any query string inside a longer text is dropped.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# A query string inside a longer token (a URL or a request path): it may hold a signature.
_QUERY = re.compile(r"(?<=\S)\?[^\s'\"()<>]+")
_USER_INFO = re.compile(r"//[^/@]*@")


def display_name(source: str) -> str:
    """The source as it may appear in errors, reports and the ledger: no query, no credentials.

    Presigned URLs carry their signature in the query string; it is a credential.
    """
    try:
        parts = urlsplit(source)
    except ValueError:  # `http://[::1/x`: an IPv6 host without its closing bracket
        return _USER_INFO.sub("//", re.split(r"[?#]", source, maxsplit=1)[0])
    if not parts.scheme or len(parts.scheme) == 1:  # a path (or a Windows drive letter)
        return source
    # the host and port as written, less any user info: an IPv6 host keeps its brackets
    # (`.hostname` drops them, and `http://::1:8080/x` no longer parses as a URL)
    host = parts.netloc.rpartition("@")[2].lower()
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact(text: str) -> str:
    """`text` without query strings and URL credentials, for error messages."""
    words = [display_name(w) if "://" in w else w for w in text.split(" ")]
    return _QUERY.sub("", " ".join(words))


def first_line(exc: BaseException) -> str:
    """An exception's first line, redacted: what a one-line error may say about its cause."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact(text)
