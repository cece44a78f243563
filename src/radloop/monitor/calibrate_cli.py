"""``radloop calibrate``: fit calibration on labelled claims (``--data``) or on the site's own
signed reports (``--from-signed DATABASE_URL``), once or on a schedule (``--every``).

The ``--data`` path is ``radloop.safety.cli``'s; reading signed reports needs the review
database, which is why the command is assembled here, above both layers.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path
from typing import Any

import click

from radloop.errors import InputError
from radloop.safety.calibration import OMISSION_FALSE_ALARM, OMISSION_RECALL
from radloop.safety.signed_calibration import HOLDOUT, MIN_SIGNED_CASES

__all__ = ["calibrate", "parse_every", "parse_since", "refit_from_signed"]

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$")
_UNIT_S = {"d": 86_400.0, "h": 3_600.0, "m": 60.0}


def parse_every(text: str) -> float:
    """``7d``, ``12h`` or ``30m`` in seconds."""
    match = _EVERY.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise InputError("--every as a positive number of days, hours or minutes (7d, 12h, 30m)",
                         repr(text))  # fmt: skip
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_since(text: str | None) -> datetime.datetime | None:
    """An ISO-8601 date or date-time (UTC when no zone is given)."""
    if not text:
        return None
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InputError("--since as an ISO-8601 date (2025-01-31) or date-time",
                         repr(text)) from None  # fmt: skip
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def refit_from_signed(
    database_url: str,
    out: Path,
    *,
    plot: Path | None = None,
    since: datetime.datetime | None = None,
    min_cases: int = MIN_SIGNED_CASES,
    holdout: float = HOLDOUT,
    domain: str = "real-frontal",
    omission_false_alarm: float = OMISSION_FALSE_ALARM,
    omission_recall: float = OMISSION_RECALL,
) -> dict[str, Any]:
    """Fit on the signed cases of ``database_url`` and write the calibration file (replaced
    in one step, so a worker never reads half a file) and its reliability diagram."""
    from radloop.monitor.signed_claims import read_signed_claims
    from radloop.safety.signed_calibration import fit_from_signed

    fitted = fit_from_signed(
        read_signed_claims(database_url, since),
        min_cases=min_cases,
        holdout=holdout,
        domain=domain,
        omission_false_alarm=omission_false_alarm,
        omission_recall=omission_recall,
    )
    calibrator = fitted.result.calibrator
    tmp = out.with_name(out.name + ".part")
    calibrator.save(tmp)
    tmp.replace(out)
    plot = plot or out.with_suffix(".png")
    fitted.save_plot(plot)
    return {"out": str(out), "plot": str(plot), **fitted.to_dict()}


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"fitted on {summary['fit_cases']} signed cases ({summary['n_fit']} claims), measured on "
        f"the latest {summary['held_out_cases']} ({summary['n_test']} claims, signed "
        f"{summary['held_out_from'][:10]} to {summary['held_out_until'][:10]})"
    )
    for name, m in summary["held_out"].items():
        label = "before" if name == "identity" else name
        click.echo(f"  {label:12} ECE {m['ece']:.4f}  Brier {m['brier']:.4f}")
    click.echo(f"chose {summary['method']}; wrote {summary['out']} and {summary['plot']}")


@click.command()
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Labelled claims: a .csv or .jsonl file, or a folder of them (format in "
              "docs/safety.md).")  # fmt: skip
@click.option("--from-signed", "database_url", default=None, metavar="DATABASE_URL",
              help="Fit on the site's signed reports: the review workstation's database "
              "(SQLAlchemy URL, as RADLOOP_DATABASE_URL).")  # fmt: skip
@click.option("--since", default=None, help="With --from-signed: only cases signed at or after "
              "this ISO-8601 date.")  # fmt: skip
@click.option("--min-cases", type=click.IntRange(2), default=MIN_SIGNED_CASES, show_default=True,
              help="With --from-signed: refuse to fit on fewer signed cases.")  # fmt: skip
@click.option("--every", default=None, help="With --from-signed: refit on this schedule (7d, "
              "12h, 30m) until stopped, replacing --out each time.")  # fmt: skip
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The calibration JSON file to write (RADLOOP_CALIBRATION names it).",
)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Reliability diagram PNG (default: next to --out, .png).")  # fmt: skip
@click.option("--holdout", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              default=None, help="Share held out to measure calibration (default: 0.3 of the "
              "studies at random with --data; the latest 0.2 of the signed cases with "
              "--from-signed).")  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Seed of the --data study split.")
@click.option("--omission-false-alarm", type=click.FloatRange(0.0, 1.0, max_open=True),
              default=OMISSION_FALSE_ALARM, show_default=True,
              help="Share of correctly denied critical findings allowed to raise a possible "
              "omission (sets each critical finding's omission threshold).")  # fmt: skip
@click.option("--omission-recall", type=click.FloatRange(0.0, 1.0, min_open=True),
              default=OMISSION_RECALL, show_default=True,
              help="Share of labelled present critical findings the omission threshold must "
              "still reach.")  # fmt: skip
@click.option("--domain", default=None, help="The domain of the claims: certainty words are "
              "written from this calibrator only there (default: synthetic-lab with --data, "
              "real-frontal with --from-signed).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def calibrate(
    data: Path | None, database_url: str | None, since: str | None, min_cases: int,
    every: str | None, out: Path, plot: Path | None, holdout: float | None, seed: int,
    omission_false_alarm: float, omission_recall: float, domain: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Fit the combiner of every evidence source and its calibration; report ECE and Brier.

    With --data: on labelled claims (a random share of studies held out). With --from-signed:
    on the site's signed cases, the label being what the radiologist signed; the latest 20 %
    are held out for the reliability diagram, ECE and Brier score, and fewer than
    --min-cases signed cases fit nothing (the error says how many more are needed).
    """
    from radloop.safety.cli import calibrate as labelled
    from radloop.safety.signed_calibration import NotEnoughSignedCasesError

    if (data is None) == (database_url is None):
        raise click.UsageError("give exactly one of --data PATH or --from-signed DATABASE_URL")
    if data is not None:
        if since or every:
            raise click.UsageError("--since and --every go with --from-signed")
        assert labelled.callback is not None
        labelled.callback(
            data=data, out=out, plot=plot, holdout=0.3 if holdout is None else holdout,
            seed=seed, omission_false_alarm=omission_false_alarm,
            omission_recall=omission_recall, domain=domain or "synthetic-lab", as_json=as_json,
        )  # fmt: skip
        return
    assert database_url is not None
    options: dict[str, Any] = {
        "plot": plot, "since": parse_since(since), "min_cases": min_cases,
        "holdout": HOLDOUT if holdout is None else holdout, "domain": domain or "real-frontal",
        "omission_false_alarm": omission_false_alarm, "omission_recall": omission_recall,
    }  # fmt: skip
    if every is None:
        _print(refit_from_signed(database_url, out, **options), as_json)
        return
    period = parse_every(every)
    while True:
        try:
            _print(refit_from_signed(database_url, out, **options), as_json)
        except NotEnoughSignedCasesError as error:
            click.echo(f"not refitted: {error}", err=True)
        time.sleep(period)
