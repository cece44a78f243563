"""Docs live next to the code and cannot drift from it."""

from __future__ import annotations

import re
from pathlib import Path

from radloop.cli_reference import render_cli_reference

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == render_cli_reference(), "run `make docs` to regenerate docs/cli.md"


def test_readme_gives_exactly_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme
    assert "make test" in readme
    assert "not a diagnosis" in readme


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_docs_linked_from_the_readme_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("architecture.md", "cli.md", "benchmarks.md"):
        assert f"docs/{name}" in readme
        assert (ROOT / "docs" / name).is_file(), name


def test_every_benchmark_command_is_recorded_in_benchmarks_md() -> None:
    from radloop.cli import bench

    recorded = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for name in bench.commands:
        assert f"radloop bench {name}" in recorded, name


# --- links and paths in the documents ----------------------------------------------------------

DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
# A file path: a relative path with a "/" that ends in a file extension, or in "/" for a folder.
FILE_PATH = re.compile(r"^[\w.][\w.\-/]*/[\w.\-/]*?(\.[A-Za-z]\w{0,5}|/)$")
# A folder written in capitals is a placeholder for the reader's own (`OUT/report.html`).
PLACEHOLDER = re.compile(r"(^|/)[^/]*[A-Z]{2}[^/]*/")
# Paths into the data and documents kept beside the repository, which a checkout may lack.
OUTSIDE = ("../shared/", "tests/artifacts/")  # shared data; what tests write (ignored by git)


def _prose(document: Path) -> str:
    """The document without its fenced code blocks (commands and examples, not references)."""
    return FENCE.sub("", document.read_text(encoding="utf-8"))


def _exists(path: str, document: Path) -> bool:
    # Relative to the document, to the repository, or to src/ for the package (`radloop/data/`).
    candidates = (document.parent / path, ROOT / path, ROOT / "src" / path)
    return any(candidate.exists() for candidate in candidates)


def broken_links(document: Path) -> list[str]:
    """Relative Markdown links (and images) of ``document`` whose target does not exist."""
    broken = []
    for target in LINK.findall(_prose(document)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor on the same page
        path = target.split("#", 1)[0]
        if not path.startswith(OUTSIDE) and not (document.parent / path).exists():
            broken.append(target)
    return broken


def missing_paths(document: Path) -> list[str]:
    """File paths named in backticks in ``document`` that are not in the repository."""
    missing = []
    for _, span in CODE_SPAN.findall(_prose(document)):
        path = span.strip()
        if not FILE_PATH.match(path) or path.startswith(OUTSIDE) or PLACEHOLDER.search(path):
            continue
        if not _exists(path, document):
            missing.append(path)
    return missing


def test_every_relative_link_resolves_to_a_file() -> None:
    broken = {str(d.relative_to(ROOT)): broken_links(d) for d in DOCUMENTS}
    assert {name: links for name, links in broken.items() if links} == {}


def test_every_file_path_in_backticks_exists() -> None:
    missing = {str(d.relative_to(ROOT)): missing_paths(d) for d in DOCUMENTS}
    assert {name: paths for name, paths in missing.items() if paths} == {}


def test_the_path_checks_report_what_is_missing_and_skip_what_is_not_a_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "here.md").write_text("", encoding="utf-8")
    document = tmp_path / "page.md"
    document.write_text(
        "[ok](here.md), [gone](gone.md#part), [site](https://example.org/a.md), [top](#top),\n"
        "`docs/architecture.md`, `radloop/data/scope/acquisition.onnx`, `src/radloop/gone.py`,\n"
        "`tests/nowhere/`, `OUT/report.html`, `../shared/data/x.tgz`, `radloop bench scope`,\n"
        "`radloop.safety.check`\n\n```sh\ncat `src/radloop/in_a_fence.py` [x](fence.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(document) == ["gone.md#part"]
    assert missing_paths(document) == ["src/radloop/gone.py", "tests/nowhere/"]
