"""``radloop serve-model`` (any backend as an OpenAI-compatible server) and ``radloop models``."""

from __future__ import annotations

import json
from typing import Any

import click

from radloop.models.registry import load_model, parse_options

__all__ = ["backend_competence", "competence_lines", "models_command", "serve_model"]


@click.command("serve-model")
@click.option(
    "--model",
    "model_name",
    default="builtin",
    show_default=True,
    help="Backend to serve (builtin, mock, openai, transformers or an entry point); "
    "'openai/NAME' or 'transformers/DIR' also sets its model.",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A backend option, repeatable; values are read as JSON when they parse "
    "(max_concurrency=4, structured_output=false).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 127.0.0.1 keeps the server on this machine.",
)
@click.option(
    "--port",
    default=8001,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--served-model-name",
    default=None,
    help="Model id to report in /v1/models (default: the backend's model id).",
)
@click.option(
    "--get",
    "get_path",
    default=None,
    metavar="PATH",
    help="Answer one GET request in-process (e.g. /v1/models), print it and exit: "
    "0 on HTTP 200, 1 otherwise. A smoke test; nothing listens.",
)
def serve_model(
    model_name: str,
    options: tuple[str, ...],
    host: str,
    port: int,
    served_model_name: str | None,
    get_path: str | None,
) -> None:
    """Serve a model backend as OpenAI-compatible /v1/chat/completions and /v1/models."""
    from radloop.models.server import create_app

    model = load_model(model_name, **parse_options(options))
    app = create_app(model, served_model_name=served_model_name)
    if get_path is not None:
        from fastapi.testclient import TestClient

        with TestClient(app) as client:
            response = client.get(get_path)
        click.echo(json.dumps(response.json()))
        raise SystemExit(0 if response.status_code == 200 else 1)
    import uvicorn

    click.echo(f"serving {model.model_id} at http://{host}:{port}/v1 (Ctrl+C to stop)", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        model.close()


def competence_lines(competence: Any) -> list[str]:
    lines = [f"  competence: {competence.summary()}"]
    for domain in competence.domains:
        figures = ", ".join(f"{k} {v:.3f}" for k, v in sorted(domain.figures.items()))
        lines.append(f"    {domain.name}: {domain.images}")
        lines.append(f"      finding types: {', '.join(domain.findings) or 'none'}")
        if figures:
            lines.append(f"      validation: {figures}")
    if competence.note:
        lines.append(f"  note: {competence.note}")
    return lines


def backend_competence(name: str) -> Any:
    """The declared competence of backend ``name``: the built-in model's from its sidecar;
    another backend's only where its class declares one (an MLLM declares none by default)."""
    from radloop.models.competence import Competence, competence_of
    from radloop.models.registry import model_factory

    if name == "builtin":
        return competence_of(load_model("builtin"))
    declared = getattr(model_factory(name), "competence", None)
    return declared if isinstance(declared, Competence) else Competence(name)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def models_command(as_json: bool) -> None:
    """List the drafting model backends with the domain each was validated on.

    A backend that declares no validated domain (an MLLM served over the OpenAI API, a local
    checkpoint) may draft, but its claims are never used as evidence: they are shown as the
    model wrote them, each marked not checked unless a verifier valid for the film checks it.
    """
    from radloop.errors import RadloopError
    from radloop.models.registry import available_models, describe_model

    rows: list[dict[str, Any]] = []
    for name in available_models():
        try:
            description = describe_model(name)
            competence = backend_competence(name).to_dict()
        except (RadloopError, ImportError) as error:
            description, competence = f"(not available: {error})", None
        rows.append({"name": name, "description": description, "competence": competence})
    if as_json:
        click.echo(json.dumps({"models": rows}))
        return
    from radloop.models.competence import Competence

    for row in rows:
        click.secho(f"{row['name']}: {row['description']}", bold=True)
        if row["competence"] is not None:
            loaded = Competence.from_dict(row["competence"], owner=row["name"])
            click.echo("\n".join(competence_lines(loaded)))
