"""Alembic environment of the review workstation.

The connection comes from :func:`radloop.review.store.migrate` through
``config.attributes["connection"]``; there is no alembic.ini and no URL in a file, so one code
path migrates SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from alembic import context

from radloop.review.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when alembic is run by hand
    raise RuntimeError("run migrations with radloop.review.store.migrate(engine)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table_schema=context.config.attributes.get("schema"),
)
with context.begin_transaction():
    context.run_migrations()
