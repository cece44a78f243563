"""An admin's requeue of a failed draft: from the study page (a form) or the API.

The study must be ``failed`` (its draft failed after every attempt, or the pipeline crashed):
a fresh job is queued with its attempts from zero, the old one is kept as ``superseded``, and
the requeue is audited. Anything else answers 409 with the study's state.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import RedirectResponse

from radloop.review.deps import Admin, Ctx, RefusedError, csrf_protect
from radloop.review.jobs import JobQueue

__all__ = ["router"]

router = APIRouter()


def _requeue(ctx: Ctx, username: str, study_id: str) -> None:
    if not JobQueue(ctx.store, f"admin:{username}").requeue(study_id):
        raise RefusedError(
            409,
            "expected a study whose draft failed; this one is not failed (or does not exist)",
            "refused_requeue",
        )
    ctx.audit(username, "requeue_draft", study_id)
    if ctx.worker is not None:
        ctx.worker.wake.set()


@router.post("/api/studies/{study_id}/requeue", dependencies=[Depends(csrf_protect)])
def api_requeue(study_id: str, ctx: Ctx, user: Admin) -> dict[str, str]:
    """Queue a failed draft again (admins)."""
    _requeue(ctx, user.username, study_id[:64])
    return {"study": study_id, "status": "queued"}


@router.post("/studies/{study_id}/requeue", dependencies=[Depends(csrf_protect)])
def page_requeue(study_id: str, ctx: Ctx, user: Admin) -> Response:
    """The study page's "Draft again" button (admins)."""
    _requeue(ctx, user.username, study_id[:64])
    return RedirectResponse(f"/studies/{study_id}", status_code=303)
