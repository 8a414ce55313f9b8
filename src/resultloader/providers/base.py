"""The provider seam: what one API family's job endpoint looks like, and a registry by name.

A provider declares its endpoints, its auth header, its status map (raw status -> running /
succeeded / failed / cancelled / expired), how to turn a finished status payload into a
`Location` (a pure function: an absolute URL, or a path on the API that the key may go to, with
the `RowMapping` of its lines), whether an expired link can be renewed, and its command line
(the job's flag, extra options). It does no parsing and no loading. A new API is one module with
one subclass decorated with `@register`; a third-party package names that module (or class) in
the `resultloader.providers` entry point group, and `resultloader ingest NAME` appears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from urllib.parse import quote

from .._columns import Column
from .._errors import (
    KEY_FIXED,
    PARTIAL,
    JobCancelled,
    JobExpired,
    JobFailed,
    NotReady,
    ResolveError,
)
from .._mapping import RowMapping
from .._model import LoadOptions
from .location import Download, Location

if TYPE_CHECKING:
    import requests

State = Literal["running", "succeeded", "failed", "cancelled", "expired"]
Payload = Mapping[str, Any]


class Client(Protocol):
    """What a provider asks of the API client (`_client.ApiClient`): authenticated requests to
    the API's own origin, with the transport's retries and the overall timeout."""

    base_url: str

    def get(self, path: str, what: str) -> requests.Response: ...
    def get_json(self, path: str, what: str) -> dict[str, Any]: ...
    def post_json(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]: ...
    def decode(self, response: requests.Response, what: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Listing:
    """`GET path?limit=N&CURSOR=last_id`: the list endpoint of a provider's jobs, for
    `ingest NAME --since DATE` (paged by `_listing.list_jobs`)."""

    path: str
    cursor: str  # the query parameter taking the previous page's `last_id`
    limit: int
    created_field: str = "created_at"  # Unix seconds or an RFC 3339 time


@dataclass(frozen=True)
class Job:
    """Which job: its id, the namespace for APIs that scope ids by one (SafetyKit data), and
    the values of a provider's own options (Shopify's shop and API version)."""

    id: str
    namespace: str | None = None
    params: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.id}" if self.namespace else self.id


@dataclass(frozen=True)
class Credential:
    """Another way to authenticate than the key: the environment variable holding the secret,
    and the header it goes in (Azure OpenAI's Entra ID token, `Authorization: Bearer`)."""

    env: str
    header: str
    prefix: str = ""


@dataclass(frozen=True)
class Option:
    """A command-line option of one provider: `--shop NAME` lands in `Job.params["shop"]`
    (`dest="namespace"`: in `Job.namespace`)."""

    flag: str
    dest: str
    help: str
    default: str | None = None
    metavar: str = "TEXT"


class Provider:
    """One API family. Subclasses fill in the class attributes and `job_path` / `locate`."""

    name: ClassVar[str]
    base_url: ClassVar[str]
    key_env: ClassVar[str]  # environment variable holding the API key
    base_url_env: ClassVar[str]  # environment variable overriding the base URL
    auth_header: ClassVar[str]
    auth_prefix: ClassVar[str] = ""  # "Bearer " for Authorization headers
    # used when the key is not set, the first whose variable is (a token instead of a key)
    other_credentials: ClassVar[tuple[Credential, ...]] = ()
    status_field: ClassVar[str] = "status"
    states: ClassVar[Mapping[str, State]]  # raw status, lower case -> state
    noun: ClassVar[str] = "job"  # how the docs call a job, for messages
    brand: ClassVar[str] = ""  # how its docs call its results' kind: "OpenAI Batch"
    needs_namespace: ClassVar[bool] = False
    poll_floor: ClassVar[float] = 2.0  # seconds between the first status checks
    poll_cap: ClassVar[float] = 30.0  # longest wait between two checks
    expired_hint: ClassVar[str] = "its results are gone; run the job again"
    stale_link_hint: ClassVar[str] = "ingest the job again for a fresh link"
    headers: ClassVar[Mapping[str, str]] = {}  # sent with the key (Anthropic's version header)
    # the command line: `resultloader ingest NAME JOB_FLAG ID [OPTIONS]`
    title: ClassVar[str] = ""  # one line for `ingest --help`; the class docstring is the rest
    job_flag: ClassVar[str] = "--job-id"
    job_help: ClassVar[str] = "The job's id."
    job_required: ClassVar[bool] = True
    options: ClassVar[tuple[Option, ...]] = ()
    partial_results: ClassVar[bool] = False  # a failed job may leave results (--partial)
    index_ids: ClassVar[bool] = False  # items may lack a key (--index-ids)
    listing: ClassVar[Listing | None] = None  # its jobs can be listed (`ingest NAME --since`)
    # its result files, for `load FILE --as NAME` too: how a line maps to a row (None: the usual
    # id/output/metadata/url), the top-level keys that tell its lines apart (a load without --as
    # suggests the provider when no row had an output), and the typed columns users query
    mapping: ClassVar[RowMapping | None] = None
    result_keys: ClassVar[tuple[frozenset[str], ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()

    def __repr__(self) -> str:
        return f"<provider {self.name}>"

    @property
    def credentials_help(self) -> str:
        """Where the API's credentials come from, for `ingest NAME --help`."""
        others = "".join(f" (or ${c.env}, sent as {c.header})" for c in self.other_credentials)
        return f"The API key is read from ${self.key_env}{others}."

    def typed(self, own: tuple[Column, ...]) -> tuple[Column, ...]:
        """Its typed columns, then one's own (one of the same name replaces the provider's)."""
        names = {column.name for column in own}
        return tuple(c for c in self.columns if c.name not in names) + own

    def looks_like(self, line: Mapping[str, Any]) -> bool:
        """Whether a result line (its top-level fields) is one of this provider's."""
        return any(keys <= line.keys() for keys in self.result_keys)

    # -- identity ------------------------------------------------------------------------------

    def job(
        self, job_id: str, namespace: str | None = None, params: Mapping[str, str] | None = None
    ) -> Job:
        if self.job_required and (not job_id or not job_id.strip()):
            raise ValueError(f"{self.name}: a {self.noun} id is required ({self.job_flag})")
        for what, value in ((f"{self.noun} id", job_id or None), ("namespace", namespace)):
            if value is not None and value.strip() in _DOT_SEGMENTS:
                # quoted, `..` is still `..`: the URL would climb to another endpoint
                raise ValueError(f"{self.name}: {value.strip()!r} is not a valid {what}")
        if self.needs_namespace and not namespace:
            raise ValueError(f"{self.name}: a namespace is required (--namespace)")
        if namespace and not self.needs_namespace:
            raise ValueError(f"{self.name}: takes no namespace")
        return Job((job_id or "").strip(), namespace, dict(params or {}))

    def job_from_line(
        self, line: str, namespace: str | None = None, params: Mapping[str, str] | None = None
    ) -> Job:
        """The job one line of an ids file names (`--ids-file`): its id; for a provider that
        scopes ids by a namespace, `NAMESPACE/ID`, or the id alone with `namespace` for all."""
        if self.needs_namespace and namespace is None:
            found, slash, job_id = line.partition("/")
            if not slash:
                raise ValueError(
                    f"{self.name}: {line!r}: give NAMESPACE/{self.noun.upper()}_ID, "
                    "or --namespace for every line"
                )
            return self.job(job_id, found, params)
        return self.job(line, namespace, params)

    def api_base(self, job: Job, given: str | None) -> str | None:
        """The base URL for this job: `given` (--base-url, or the environment's) by default."""
        return given

    def job_from_payload(self, payload: Payload) -> Job | None:
        """The job a saved status payload is about, when the payload says."""
        value = payload.get("job_id")
        return Job(value) if isinstance(value, str) and value else None

    def job_path(self, job: Job) -> str:
        raise NotImplementedError

    def api_path(self, path: str, job: Job) -> str:
        """A path on the API as it is requested for `job` (the status, a file's content): as
        it is, unless the API wants more on every request (Azure's prefix and api-version)."""
        return path

    def describe(self, job: Job) -> str:
        return f"{self.name} {self.noun} {job}"

    # -- status --------------------------------------------------------------------------------

    def raw_status(self, payload: Payload) -> str:
        value = payload.get(self.status_field)
        if not isinstance(value, str):
            raise ResolveError(
                f"{self.name}: the status payload has no {self.status_field!r} field; "
                "is it this provider's status response?"
            )
        return value

    def state(self, payload: Payload) -> State:
        raw = self.raw_status(payload)
        state = self.states.get(raw.lower())
        if state is None:
            known = ", ".join(sorted(self.states))
            raise ResolveError(f"{self.name}: unknown status {raw!r} (known: {known})")
        return state

    def counts(self, payload: Payload) -> dict[str, int] | None:
        """Progress counts to show while waiting (None when the API reports none)."""
        return None

    # -- resolving (pure) ----------------------------------------------------------------------

    def resolve(
        self,
        payload: Payload,
        *,
        job_id: str | None = None,
        items_path: str | None = None,
        partial: bool = False,
    ) -> Location:
        """Where the results of a finished job are, or the reason there are none. A job that
        ended badly but left some results (`partial_location`) loads them only with `partial`."""
        if not isinstance(payload, Mapping):
            raise ResolveError(f"{self.name}: a status payload is a JSON object")
        job = job_id or self._payload_id(payload)
        what = f"{self.name} {self.noun} {job}" if job else f"{self.name} {self.noun}"
        state, raw = self.state(payload), self.raw_status(payload)
        if state == "running":
            raise NotReady(f"{what} is not finished yet (status {raw!r}); try again later")
        if state == "succeeded":
            return self.locate(payload, what, job, items_path)
        left = self.partial_location(payload, what)
        if left is not None and partial:
            then = tuple(replace(part, partial=True) for part in left.then)
            return replace(left, partial=True, then=then)
        error = _ended(state, raw, what, self.failure(payload, what), self.expired_hint)
        if left is not None:
            raise type(error)(f"{error}; {PARTIAL}")
        if state == "cancelled":
            raise JobCancelled(f"{error}; it has no results")
        raise error

    def partial_location(self, payload: Payload, what: str) -> Download | None:
        """The results a failed, cancelled or expired job left behind, if any."""
        return None

    def failure(self, payload: Payload, what: str) -> str:
        """The message for a failed job, with the API's own error text."""
        return f"{what} failed (status {self.raw_status(payload)!r}){_detail(error_text(payload))}"

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        """The Location of a succeeded job's results."""
        raise NotImplementedError

    def _payload_id(self, payload: Payload) -> str | None:
        found = self.job_from_payload(payload)
        return str(found) if found else None

    # -- I/O, through the client ---------------------------------------------------------------

    def fetch_status(self, client: Client, job: Job) -> dict[str, Any]:
        return client.get_json(self.api_path(self.job_path(job), job), self.describe(job))

    def can_refresh(self, client: Client, download: Download) -> bool:
        """Can an expired link be replaced by asking the API again? (Yes, by default.)"""
        return True

    def refresh(self, client: Client, job: Job, stale: Download) -> Download:
        """A fresh link for the same results: the status again, resolved again."""
        payload = self.fetch_status(client, job)
        location = self.resolve(payload, job_id=job.id, partial=stale.partial)
        if not isinstance(location, Download):
            raise ResolveError(f"{self.describe(job)}: the API no longer offers a download")
        return location


_DOT_SEGMENTS = ("", ".", "..")


def quoted(value: str) -> str:
    """A path segment: an id with a slash in it cannot reach another endpoint, and `.` or `..`
    (which quoting leaves as they are, and URLs resolve) are refused."""
    if value in _DOT_SEGMENTS:
        raise ValueError(f"{value!r} is not a valid id")
    return quote(value, safe="")


def looks_like(line: Mapping[str, Any]) -> Provider | None:
    """The one provider whose result lines look like `line` (its top-level fields), if any."""
    found = [p for p in (get_provider(n) for n in provider_names()) if p.looks_like(line)]
    return found[0] if len(found) == 1 else None


def with_provider(options: LoadOptions) -> LoadOptions:
    """`options` with its provider's row mapping (unless one is set) and typed columns, those
    of one's own after them (one of the same name replaces the provider's)."""
    if options.provider is None:
        return options
    prov = get_provider(options.provider)
    if prov.mapping is not None and options.key != "id" and options.mapping is None:
        raise ValueError(f"{prov.name}: rows are keyed by {prov.mapping.key!r} {KEY_FIXED}")
    return replace(
        options, mapping=options.mapping or prov.mapping, columns=prov.typed(options.columns)
    )


def error_text(payload: Payload) -> str | None:
    """The API's own words about a failure, from the usual fields, as one short line."""
    for name in ("error", "error_message", "message", "detail", "failure_reason"):
        value = payload.get(name)
        if isinstance(value, Mapping):
            value = value.get("message") or value.get("detail") or value.get("error")
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:500]
    return None


def _detail(text: str | None) -> str:
    return f": {text}" if text else ""


def _ended(state: State, raw: str, what: str, failure: str, expired_hint: str) -> Exception:
    if state == "failed":
        return JobFailed(failure)
    if state == "cancelled":
        return JobCancelled(f"{what} was cancelled (status {raw!r})")
    return JobExpired(f"{what} has expired (status {raw!r}): {expired_hint}")


_REGISTRY: dict[str, Provider] = {}
ENTRY_POINTS = "resultloader.providers"
BUILTIN = (
    "safetykit",
    "pulse",
    "openai",
    "azure_openai",
    "anthropic",
    "gemini",
    "mistral",
    "bedrock",
    "shopify",
)


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make a provider available by its `name`."""
    _REGISTRY[cls.name] = cls()
    return cls


def get_provider(name: str | Provider) -> Provider:
    """The registered provider called `name` (a Provider instance is returned as is)."""
    if isinstance(name, Provider):
        return name
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown provider {name!r} (known: {known})") from None


def provider_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def _load_all() -> None:
    """The built-in providers, then those installed packages declare as entry points."""
    import importlib
    from importlib.metadata import entry_points

    for module in BUILTIN:  # importing a provider module registers it
        importlib.import_module(f"{__package__}.{module}")
    for point in entry_points(group=ENTRY_POINTS):
        if point.name in _REGISTRY:
            continue
        try:
            found = point.load()
        except Exception as exc:  # a broken plug-in must not break the built-in providers
            _BROKEN[point.name] = f"{type(exc).__name__}: {exc}"
            continue
        if isinstance(found, type) and issubclass(found, Provider):
            _REGISTRY.setdefault(found.name, found())


_BROKEN: dict[str, str] = {}  # entry points that failed to load, by name, with the reason
