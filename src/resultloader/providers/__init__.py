"""Providers: one module per API family, registered by name (see `base.Provider`).

What a provider module needs is here: `Provider` and `register` (or the `resultloader.providers`
entry point group for a third-party package), `Option` for its own flags, `Credential` for a
token taken when its key is not set, `Listing` if its jobs can be listed (`--since`), the two
`Location`s (`Inline`, `Download`) and `RowMapping`/`When` for how its lines become rows.
"""

from .._mapping import RowMapping, When
from .base import (
    ENTRY_POINTS,
    Credential,
    Job,
    Listing,
    Option,
    Payload,
    Provider,
    State,
    error_text,
    get_provider,
    provider_names,
    quoted,
    register,
)
from .location import Download, Inline, as_count, download_url, parse_time

__all__ = [
    "ENTRY_POINTS",
    "Credential",
    "Download",
    "Inline",
    "Job",
    "Listing",
    "Option",
    "Payload",
    "Provider",
    "RowMapping",
    "State",
    "When",
    "as_count",
    "download_url",
    "error_text",
    "get_provider",
    "parse_time",
    "provider_names",
    "quoted",
    "register",
]
