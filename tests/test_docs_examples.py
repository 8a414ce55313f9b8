"""The docs' examples run: every ```python block of README.md and docs/*.md, and every command
line (`resultloader ...` in a ```sh or ```console block) checked against the command it names.

A page's Python blocks run in order in one fresh interpreter (one namespace, as a reader would
paste them), in a temporary directory holding the files the examples name. Where an example
needs a server, a hidden fixture starts the project's own fakes on loopback (FakeApi, the
throwaway PostgreSQL of tests/support/pg_server.py) and points the example at them, by the
provider's environment variables or by replacing the example's host with the fake's
(`fixture_for` below).

A command line is parsed by click's own command objects (an unknown option, a missing value or a
bad one fails), each option it uses must be in that command's --help, and the ones that can run
offline (`load`, `history` and `failed` on local files) run in such a directory and must exit 0.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.testing import FakeApi, MemorySink, Reply

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
OPENAI_KEY = "sk-docs-examples"


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the block's first line of code, from 1
    lang: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path, *langs: str) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        if match[1] in langs:
            line = text.count("\n", 0, match.start(2)) + 1
            found.append(Block(page, line, match[1], match[2]))
    return found


# -- the files the examples name -----------------------------------------------------------------

SAMPLE = (REPO / "examples" / "sample_results.jsonl").read_bytes()
BATCH_LINES = [
    {
        "id": "batch_req_1",
        "custom_id": "request-1",
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {
                "model": "gpt-4o-mini",
                "choices": [{"message": {"content": "Hello"}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 1,
                    "total_tokens": 11,
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            },
        },
        "error": None,
    },
    {
        "id": "batch_req_2",
        "custom_id": "request-2",
        "response": {
            "status_code": 400,
            "request_id": "req_2",
            "body": {"error": {"type": "invalid_request_error", "message": "bad model"}},
        },
        "error": None,
    },
]
BATCH_OUTPUT = "".join(json.dumps(line) + "\n" for line in BATCH_LINES)
# the error file of the same batch: the requests the window and the cancel left undone
BATCH_ERRORS = "".join(
    json.dumps({"id": f"batch_req_{n}", "custom_id": f"request-{n}", "response": None,
                "error": {"code": code, "message": "not run"}}) + "\n"
    for n, code in ((4, "batch_expired"), (5, "batch_cancelled"))
)  # fmt: skip
# the batch's input file: one request a line, keyed as the output is
BATCH_INPUT = "".join(
    json.dumps({"custom_id": f"request-{n}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}})
    + "\n"
    for n in range(1, 6)
)  # fmt: skip


def workspace(path: Path) -> Path:
    """A directory with every file the docs' examples load, under the names they use."""
    shutil.copytree(REPO / "examples", path / "examples")
    (path / "results.jsonl").write_bytes(SAMPLE)
    (path / "results.jsonl.gz").write_bytes(gzip.compress(SAMPLE))
    (path / "bad.jsonl").write_text('{"id": "a", "output": 1}\nnot json\n')
    (path / "batch.csv").write_text('id,output\nr1,"{""score"": 1}"\nr2,\n')
    (path / "batch_output.jsonl").write_text(BATCH_OUTPUT)
    (path / "batch_errors.jsonl").write_text(BATCH_ERRORS)
    (path / "batch_input.jsonl").write_text(BATCH_INPUT)
    for day, rows in (("2026-12-01", SAMPLE), ("2026-12-02", b'{"id": "x", "output": 2}\n')):
        (path / "exports" / day).mkdir(parents=True)
        (path / "exports" / day / "part-0.jsonl.gz").write_bytes(gzip.compress(rows))
        (path / "day").mkdir(exist_ok=True)
        (path / "day" / f"{day}.jsonl").write_bytes(rows)
    return path


# -- the hidden fixtures: fakes for the examples that need a server --------------------------------


def openai_batch(batch_id: str, status: str = "completed") -> dict[str, object]:
    return {
        "id": batch_id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "status": status,
        "output_file_id": "file-out",
        "error_file_id": None,
        "created_at": 1796083200,  # 2026-12-01
        "request_counts": {"total": 2, "completed": 1, "failed": 1},
    }


@pytest.fixture
def openai_api() -> Iterator[FakeApi]:
    """OpenAI's Batch API on loopback: the batches the docs name, done, with one output file."""
    with FakeApi(auth={"Authorization": f"Bearer {OPENAI_KEY}"}) as api:
        for batch_id in ("batch_abc123", "batch_abc", "batch_def"):
            api.script(f"/v1/batches/{batch_id}", openai_batch(batch_id))
        listed = [openai_batch("batch_abc"), openai_batch("batch_new")]
        api.script("/v1/batches", {"data": listed, "has_more": False, "last_id": "batch_new"})
        api.script("/v1/batches/batch_new", openai_batch("batch_new"))
        api.script("/v1/files/file-out/content", Reply(200, BATCH_OUTPUT))
        yield api
        assert api.leaks == []


@dataclass
class Fixture:
    env: dict[str, str]
    replaced: dict[str, str]  # text of the example -> what it stands for here


def fixture_for(page: str, request: pytest.FixtureRequest, tmp_path: Path) -> Fixture:
    if page in ("ingest.md",):
        api = request.getfixturevalue("openai_api")
        env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": f"{api.api_url}/v1"}
        return Fixture(env, {"https://api.openai.com/v1": f"{api.api_url}/v1"})
    if page == "sinks.md":
        from tests.support.pg_server import PASSWORD

        url = request.getfixturevalue("postgres_url")
        return Fixture({"PGPASSWORD": PASSWORD}, {"postgresql://loader@db:5432/app": url})
    if page == "orchestrators.md":
        return Fixture({"AIRFLOW_HOME": str(tmp_path / "airflow"), "WAREHOUSE": "w.duckdb"}, {})
    return Fixture({}, {})


# -- Python ----------------------------------------------------------------------------------------

RUNNER = """
import json, sys
namespace = {"__name__": "__docs__"}
for name, line, code in json.load(sys.stdin):
    exec(compile("\\n" * (line - 1) + code, name, "exec"), namespace)
"""
PYTHON_PAGES = [p for p in PAGES if blocks(p, "python")]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.name)
def test_the_python_examples_of_each_page_run(page, request, tmp_path):
    fixture = fixture_for(page.name, request, tmp_path)
    found = []
    for block in blocks(page, "python"):
        code = block.code
        for text, stands_for in fixture.replaced.items():
            code = code.replace(text, stands_for)
        found.append((str(block.page.relative_to(REPO)), block.line, code))
    env = {**os.environ, **fixture.env, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(found),
        capture_output=True,
        text=True,
        cwd=workspace(tmp_path / "work"),
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_every_page_is_checked_and_the_signatures_are_not_python():
    """A block that is not valid Python (a signature with `-> X`) is shown without a language,
    so that every ```python block can run."""
    assert {p.name for p in PYTHON_PAGES} >= {"README.md", "load.md", "sinks.md", "ingest.md"}
    for page in PAGES:
        for block in blocks(page, "python"):
            compile(block.code, block.name, "exec")


# -- the command lines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandLine:
    block: Block
    args: tuple[str, ...]  # after `resultloader`
    stdin_file: str | None  # `cat FILE | resultloader ...`
    env: tuple[str, ...]  # VAR=value before the command

    @property
    def name(self) -> str:
        return f"{self.block.name} resultloader {' '.join(self.args)}"


def shell_words(line: str) -> list[list[str]]:
    """The commands of one shell line (split at |, && and ;), without redirections."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    segments: list[list[str]] = [[]]
    words = iter(lexer)
    for word in words:
        if word in ("|", "&&", ";"):
            segments.append([])
        elif word in (">", ">>", "<", "2>"):
            next(words)  # the file it redirects to or from
        else:
            segments[-1].append(word)
    return segments


def command_lines(block: Block) -> list[CommandLine]:
    found = []
    for line in block.code.replace("\\\n", " ").splitlines():
        segments = shell_words(line)
        for n, segment in enumerate(segments):
            env = []
            while segment and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", segment[0]):
                env.append(segment.pop(0))
            if segment[:1] != ["resultloader"]:
                continue
            before = segments[n - 1] if n else []
            stdin = before[1] if before[:1] == ["cat"] and len(before) == 2 else None
            found.append(CommandLine(block, tuple(segment[1:]), stdin, tuple(env)))
    return found


COMMAND_LINES = [c for p in PAGES for b in blocks(p, "sh", "console") for c in command_lines(b)]


def command_of(args: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The command `args` name (down the groups), its path, and the arguments left for it."""
    command: click.Command = main
    path = []
    while isinstance(command, click.Group):
        name, *args = args
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"no command {name!r}"
        command, path = found, [*path, name]
    return command, path, args


def help_of(path: list[str]) -> str:
    done = CliRunner().invoke(main, [*path, "--help"])
    assert done.exit_code == 0, done.output
    return done.output


@pytest.mark.parametrize("line", COMMAND_LINES, ids=lambda c: c.name)
def test_each_command_line_parses_and_uses_options_its_help_shows(line):
    command, path, args = command_of(list(line.args))
    command.make_context(command.name, list(args))  # UsageError on a wrong option or value
    shown = help_of(path)
    for word in args:
        if word.startswith("--"):
            assert word.split("=")[0] in shown, f"{word} is not in `{' '.join(path)} --help`"


def offline(line: CommandLine) -> bool:
    """`load`, `history` or `failed` on local files and local targets: no server, no key."""
    if line.args[0] not in ("load", "history", "failed") or line.env:
        return False
    return not any("://" in arg for arg in line.args)


OFFLINE = [line for line in COMMAND_LINES if offline(line)]


@pytest.mark.parametrize("page", sorted({c.block.page for c in OFFLINE}), ids=lambda p: p.name)
def test_the_offline_command_lines_of_each_page_run(page, tmp_path):
    """In the page's order, in one directory (so `history` sees the loads before it)."""
    work = workspace(tmp_path)
    for line in (c for c in OFFLINE if c.block.page == page):
        stdin = (work / line.stdin_file).read_bytes() if line.stdin_file else None
        done = subprocess.run(
            [sys.executable, "-m", "resultloader", *line.args],
            input=stdin,
            capture_output=True,
            cwd=work,
            timeout=600,
        )
        assert done.returncode == 0, (line.name, done.stderr.decode()[-2000:])


def test_the_checker_finds_the_command_lines_and_refuses_a_wrong_one():
    assert len(COMMAND_LINES) > 40 and len(OFFLINE) > 15
    assert {c.args[0] for c in COMMAND_LINES} == {"load", "ingest", "history", "failed"}
    shown = "cat r.jsonl | X=1 resultloader load - --on-eror skip > out.json  # a typo\n"
    [line] = command_lines(Block(REPO / "README.md", 1, "sh", shown))
    assert line.args == ("load", "-", "--on-eror", "skip")
    assert (line.stdin_file, line.env) == ("r.jsonl", ("X=1",))
    command, _, args = command_of(list(line.args))
    with pytest.raises(click.UsageError):
        command.make_context(command.name, list(args))


# -- the site --------------------------------------------------------------------------------------


def test_the_site_builds_in_strict_mode_with_every_page_in_its_nav(tmp_path):
    """A broken link or a missing page fails the build; a page outside the nav is unreachable."""
    nav = (REPO / "mkdocs.yml").read_text()
    assert [p.name for p in PAGES[1:] if f": {p.name}" not in nav] == []
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "load" / "index.html").exists()


def test_the_readme_is_a_five_minute_read_with_the_row_up_front():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert text.index("## What a row looks like") < text.index("## Set-up on a fresh machine")


def test_the_readmes_row_lands_as_it_says(tmp_path):
    """`id`, `output`, `metadata` and `url` as written, every other field in `extra`."""
    [row] = blocks(REPO / "README.md", "json")
    source = tmp_path / "row.jsonl"
    source.write_text(row.code.replace("\n", "") + "\n")
    sink = MemorySink()
    resultloader.load(source, sink)
    [(key, stored)] = sink.rows.items()
    written = json.loads(row.code)
    assert key == written["id"] == "product_12345"
    for field in ("output", "metadata", "url"):
        assert stored[field] == written[field], field
    assert stored["extra"] == {"score": 0.93}


def documented_signatures() -> dict[str, list[str]]:
    """function -> its parameters, as the Python API page's signature block writes them."""
    [block] = [b for b in blocks(REPO / "docs" / "python-api.md", "") if "-> LoadReport" in b.code]
    found = {}
    for name, params in re.findall(r"resultloader\.(\w+)\((.*?)\)\s*->", block.code, re.S):
        words = [p.strip().split("=")[0] for p in params.split(",")]
        found[name] = [w for w in words if w and w != "*"]
    return found


def test_the_python_api_page_shows_each_functions_parameters_in_order():
    import inspect

    documented = documented_signatures()
    assert set(documented) == {"load", "load_many", "ingest", "ingest_many"}
    for name, params in documented.items():
        assert params == list(inspect.signature(getattr(resultloader, name)).parameters), name
