"""Docs live next to the code and cannot drift from it."""

from __future__ import annotations

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
