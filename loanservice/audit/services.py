"""Record audit events; nothing here updates or deletes them."""
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from .models import AuditEvent


def record(
    session: Session,
    actor,
    action: str,
    entity,
    summary: str = "",
    changes: dict[str, Any] | None = None,
    instrument=None,
) -> AuditEvent:
    """Add an audit event for a change to ``entity`` made by ``actor``."""
    if instrument is None and type(entity).__name__ == "Instrument":
        instrument = entity
    audit_event = AuditEvent(
        actor=actor,
        action=action,
        entity_type=type(entity).__tablename__,
        entity_id=entity.id,
        instrument_id=instrument.id if instrument is not None else None,
        summary=summary,
        changes=_jsonable(changes or {}),
    )
    session.add(audit_event)
    return audit_event


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
