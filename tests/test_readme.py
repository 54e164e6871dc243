"""The README and docs/ as a reader meets them: every link leads to a file of the repository
(and a heading of it), none out of it; and the README's walkthrough, run command by command
against a fresh database, prints what the README says it prints.

The walkthrough lies between ``<!-- walkthrough`` and ``<!-- /walkthrough -->`` in README.md.
A fenced block after ``<!-- file: NAME -->`` is a file the reader writes (written to the
working directory); a ```` ```console ```` block holds ``$ command`` lines, each followed by
the lines it prints (in order; others may come between; ``...`` stands for anything). The
example's exports stand in ``~/Downloads/``: the public AJ Bell samples beside the repository
take their place (the test is skipped without them).
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REAL_DATA, REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
SAMPLES = REAL_DATA / "gsej_investment_tracker"

FENCE = re.compile(r"^(```+|~~~+)(.*?)\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
UP_PATH = re.compile(r"(?<![\w/.])(?:\.\./)+[\w./-]+")


def prose(text: str) -> str:
    """The text without its fenced code blocks (their lines kept, blank, so lines still count)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file (a repeated one gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))  # a link: its text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def link_problems(path: Path, text: str | None = None) -> list[str]:
    """What is wrong with the links of ``path`` (its ``text``, if given, instead of the file's)."""
    text = prose(path.read_text(encoding="utf-8") if text is None else text)
    problems = []
    where = path.relative_to(REPO)
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"^(https?|mailto):", target):
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            problems.append(f"{where}: {target} is not a path inside the repository")
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(REPO):
            problems.append(f"{where}: {target} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{where}: {target} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: {target}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    for match in UP_PATH.finditer(text):  # a path named in the text, linked or not
        named = (path.parent / match.group(0).rstrip(".")).resolve()
        if not named.is_relative_to(REPO):
            problems.append(f"{where}: {match.group(0)} is outside the repository")
        elif not named.exists():
            problems.append(f"{where}: {match.group(0)} names no file of the repository")
    return problems


def test_every_link_of_the_readme_and_the_docs_leads_to_a_file_of_the_repository() -> None:
    assert len(DOCS) >= 10
    problems = [p for path in (README, *DOCS) for p in link_problems(path)]
    assert problems == []
    linked = {m.group(1).partition("#")[0] for m in LINK.finditer(prose(README.read_text(encoding="utf-8")))}
    for name in ("reference", "configuration", "data-model", "ledger", "development"):
        assert f"docs/{name}.md" in linked, f"the README does not link docs/{name}.md"


def test_the_link_check_catches_what_it_should() -> None:
    page = REPO / "docs" / "index.md"  # never written: the text is given
    text = (
        "[ok](ledger.md#dividends) [gone](nope.md) [out](../../x.md) [anchor](ledger.md#no-such)\n"
        "`../shared/spec/logical-data-model.md` ![img](screenshots/dashboard.png) [abs](/etc/passwd)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    assert link_problems(page, text) == [
        "docs/index.md: nope.md does not exist",
        "docs/index.md: ../../x.md leaves the repository",
        "docs/index.md: ledger.md#no-such: no heading #no-such in docs/ledger.md",
        "docs/index.md: /etc/passwd is not a path inside the repository",
        "docs/index.md: ../../x.md is outside the repository",
        "docs/index.md: ../shared/spec/logical-data-model.md names no file of the repository",
    ]


def test_the_data_model_doc_names_every_append_only_table_as_the_triggers_do() -> None:
    from sqlmodel import SQLModel

    import tradeassist.db.models  # noqa: F401  (the tables)
    from tradeassist.db.immutability import GUARDED_TABLES, STREAM_TABLES

    text = (REPO / "docs" / "data-model.md").read_text(encoding="utf-8")
    table = text[text.index("<!-- append-only-table") : text.index("<!-- /append-only-table -->")]
    rows = {
        line.split("|")[1].strip(): line.split("|")[2] for line in table.splitlines() if line.startswith("| ")
    }
    assert {t.strip() for t in rows["stream"].split(",")} == set(STREAM_TABLES)
    guarded = dict(re.findall(r"(\w+) \(([^)]*)\)", rows["stream-ish"]))
    assert {t: tuple(c.strip() for c in cols.split(",")) for t, cols in guarded.items()} == GUARDED_TABLES
    snapshots = {t.strip() for t in rows["snapshot"].split(",")}
    assert snapshots == set(SQLModel.metadata.tables) - set(STREAM_TABLES) - set(GUARDED_TABLES)
    for name in SQLModel.metadata.tables:  # and the section tables above name every table
        assert f"`{name}`" in text, name


# --- the walkthrough -------------------------------------------------------------------------


def walkthrough() -> list[tuple[str, str, str]]:
    """The walkthrough's steps in order: ("file", name, content) or ("run", command, expected)."""
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- walkthrough")
    part = text[start : text.index("<!-- /walkthrough -->", start)]
    steps: list[tuple[str, str, str]] = []
    for block in FENCE.finditer(part):
        before = part[: block.start()].rstrip().rsplit("\n", 1)[-1]
        named = re.fullmatch(r"<!-- file: (\S+) -->", before.strip())
        if named:
            steps.append(("file", named.group(1), block.group(3)))
        elif block.group(2).strip() == "console":
            for run in re.split(r"^\$ ", block.group(3), flags=re.MULTILINE)[1:]:
                command, _, expected = run.partition("\n")
                steps.append(("run", command, expected))
    return steps


def argv(command: str, folder: Path) -> list[str]:
    """The command's arguments as a shell would give them, the samples for ~/Downloads/."""
    words = shlex.split(command.replace("~/Downloads/", f"{SAMPLES}/"))
    assert words[0] == "tradeassist", command
    args = []
    for word in words[1:]:
        if "*" in word:
            matched = sorted(glob.glob(word, root_dir=folder) if not os.path.isabs(word) else glob.glob(word))
            assert matched, f"{word} matches no file"
            args += matched
        else:
            args.append(word)
    return [sys.executable, "-m", "tradeassist", *args]


def expected_lines(expected: str) -> list[re.Pattern[str]]:
    return [
        re.compile(".*".join(re.escape(piece) for piece in line.rstrip().split("...")))
        for line in expected.splitlines()
        if line.strip()
    ]


def test_the_walkthrough_reads_as_the_steps_of_a_first_account() -> None:
    steps = walkthrough()
    files = [name for kind, name, _ in steps if kind == "file"]
    commands = [shlex.split(command)[1:3] for kind, command, _ in steps if kind == "run"]
    assert files == ["listings.csv", "policy.json", "manifesto.md"]
    assert commands == [
        ["init"],
        ["portfolio", "add"],
        ["setup", "listings"],
        ["setup", "strategy"],
        ["setup", "import"],
        ["setup", "prices"],
        ["strategy", "approve"],
        ["recommend", "--portfolio"],
    ]
    assert all(expected_lines(expected) for kind, _, expected in steps if kind == "run")


@pytest.mark.slow
def test_the_walkthrough_runs_as_the_readme_shows(tmp_path: Path) -> None:
    if not (SAMPLES / "ajbell").is_dir():
        pytest.skip(f"the walkthrough's AJ Bell samples are not at {SAMPLES}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {
        "TRADEASSIST_HOME": str(tmp_path / "home"),
        "TRADEASSIST_REPORTS_DIR": str(tmp_path / "reports"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    for kind, what, content in walkthrough():
        if kind == "file":
            (tmp_path / what).write_text(content, encoding="utf-8")
            continue
        run = subprocess.run(
            argv(what, tmp_path), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, f"$ {what}\n{run.stdout}{run.stderr}"
        noisy = [line for line in run.stderr.splitlines() if re.match(r"(warning|error|CRITICAL)\b", line)]
        assert noisy == [], f"$ {what}\n{run.stderr}"
        printed = iter(run.stdout.splitlines())
        for pattern in expected_lines(content):
            assert any(pattern.fullmatch(line.rstrip()) for line in printed), (
                f"$ {what}\nexpected, in order: {pattern.pattern}\nprinted:\n{run.stdout}"
            )
