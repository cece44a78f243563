"""``radloop serve-model``: any backend as an OpenAI-compatible server."""

from __future__ import annotations

import json

import click

from radloop.models.registry import load_model, parse_options

__all__ = ["serve_model"]


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
