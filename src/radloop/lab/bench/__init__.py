"""Benchmarks: scripts that measure radloop's capabilities (protocols in docs/benchmarks.md)."""

from radloop.lab.bench.parser import (
    ParserBenchmark,
    format_parser_benchmark,
    run_parser_benchmark,
)

__all__ = ["ParserBenchmark", "format_parser_benchmark", "run_parser_benchmark"]
