"""Record audit events; nothing here updates or deletes them."""
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from ..batch import Batch
from ..timeutil import utcnow
from .models import AuditEvent


def record(
    session: Session,
    actor,
    action: str,
    entity,
    summary: str = "",
    changes: dict[str, Any] | None = None,
    instrument=None,
    *,
    batch: Batch | None = None,
) -> AuditEvent | None:
    """Add an audit event for a change to ``entity`` made by ``actor`` (to ``batch``, if given)."""
    if instrument is None and type(entity).__name__ == "Instrument":
        instrument = entity
    values = dict(
        action=action,
        entity_type=type(entity).__tablename__,
        entity_id=entity.id,
        instrument_id=instrument.id if instrument is not None else None,
        summary=summary,
        changes=_jsonable(changes or {}),
    )
    if batch is not None:
        batch.add(AuditEvent, at=utcnow(), actor_id=actor.id if actor is not None else None, **values)
        return None
    audit_event = AuditEvent(actor=actor, **values)
    session.add(audit_event)
    return audit_event


def assign_changed(obj, **values) -> list[str]:
    """Set the attributes that differ; the names of those that changed."""
    changed = [key for key, value in values.items() if getattr(obj, key) != value]
    for key in changed:
        setattr(obj, key, values[key])
    return changed


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session, flush_context, instances):
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("The audit trail is append-only")
