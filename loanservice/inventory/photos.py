"""Condition photos: resized and stripped of their metadata (the camera's GPS location with it) on the
way in, kept in the database so that any app server can serve them."""
import io
from collections import defaultdict
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from .models import ConditionCheck, ConditionPhoto, Instrument, PhotoData, PhotoStage

MAX_PHOTOS = 6  # at one time: a few sides of an instrument, not an album
LONGEST_SIDE = 1600  # pixels: enough to see a crack or a scratch, small enough for a phone's data
JPEG_QUALITY = 82


@dataclass
class Upload:
    """A file as it came in: its name (for messages) and at most ``limit + 1`` of its bytes."""

    filename: str
    data: bytes


def read_uploads(files, limit: int) -> list[Upload]:
    """The chosen files of a file field (a browser posts one empty part when none is chosen)."""
    uploads = []
    for storage in files or []:
        if storage is None or not getattr(storage, "filename", ""):
            continue
        uploads.append(Upload(storage.filename, storage.stream.read(limit + 1)))
    return uploads


def prepare_photo(upload: Upload, limit: int) -> tuple[bytes, int, int]:
    """The photo as stored: turned upright, at most LONGEST_SIDE pixels, a JPEG without EXIF (no location)."""
    megabytes = limit / 1_000_000
    if len(upload.data) > limit:
        raise InvalidInput(f"“{upload.filename}” is larger than {megabytes:g} MB: choose a smaller photo "
                           "(a phone's usual photo is 2-5 MB).", field="photos")
    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            image.thumbnail((LONGEST_SIDE, LONGEST_SIDE))
            out = io.BytesIO()
            # Saved afresh with no exif argument: nothing of the camera's metadata is written.
            image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
            return out.getvalue(), image.width, image.height
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
        raise InvalidInput(f"“{upload.filename}” is not a photo this service can read: choose a JPEG, PNG or "
                           "WebP image.", field="photos") from error


def add_photos(
    session: Session, actor, instrument: Instrument, uploads: list[Upload], stage: PhotoStage, *, limit: int,
    condition_check_id: int | None = None, repair_id: int | None = None, loan_id: int | None = None,
) -> list[ConditionPhoto]:
    """Keep ``uploads`` as photos of ``instrument`` taken at ``stage``; every one is checked before any is kept."""
    if len(uploads) > MAX_PHOTOS:
        raise InvalidInput(f"Attach at most {MAX_PHOTOS} photos at a time.", field="photos")
    prepared = [prepare_photo(upload, limit) for upload in uploads]
    photos = []
    for data, width, height in prepared:
        photo = ConditionPhoto(instrument_id=instrument.id, stage=stage, condition_check_id=condition_check_id,
                               repair_id=repair_id, loan_id=loan_id, content_type="image/jpeg", width=width,
                               height=height, byte_size=len(data), taken_by=actor)
        session.add(photo)
        session.flush()
        session.add(PhotoData(photo_id=photo.id, data=data))
        photos.append(photo)
    session.flush()
    return photos


def add_uploaded_photos(session: Session, actor, instrument: Instrument, files, stage: PhotoStage, *, limit: int,
                        **belongs_to) -> list[ConditionPhoto]:
    """Keep the files chosen in a photo field (none is fine) as ``add_photos`` does."""
    uploads = read_uploads(files, limit)
    return add_photos(session, actor, instrument, uploads, stage, limit=limit, **belongs_to) if uploads else []


def latest_check(session: Session, instrument: Instrument) -> ConditionCheck | None:
    """The instrument's most recent condition check (the one a check-in has just written)."""
    return session.scalars(select(ConditionCheck).where(ConditionCheck.instrument_id == instrument.id)
                           .order_by(ConditionCheck.id.desc()).limit(1)).first()


@dataclass
class PhotosByRecord:
    """An instrument's photos, by the condition check, repair or loan they belong to."""

    by_check: dict[int, list[ConditionPhoto]]
    by_repair: dict[int, list[ConditionPhoto]]
    by_loan: dict[int, list[ConditionPhoto]]


def photos_of(session: Session, *, instrument_id: int | None = None, loan_id: int | None = None) -> PhotosByRecord:
    """The photos of an instrument or of a loan, oldest first, grouped by what they belong to."""
    query = select(ConditionPhoto).order_by(ConditionPhoto.id)
    if instrument_id is not None:
        query = query.where(ConditionPhoto.instrument_id == instrument_id)
    if loan_id is not None:
        query = query.where(ConditionPhoto.loan_id == loan_id)
    grouped = PhotosByRecord(defaultdict(list), defaultdict(list), defaultdict(list))
    for photo in session.scalars(query):
        if photo.condition_check_id:
            grouped.by_check[photo.condition_check_id].append(photo)
        if photo.repair_id:
            grouped.by_repair[photo.repair_id].append(photo)
        if photo.loan_id:
            grouped.by_loan[photo.loan_id].append(photo)
    return grouped


def photo_bytes(session: Session, photo_id: int) -> tuple[ConditionPhoto, bytes] | None:
    """A photo and its bytes, or None."""
    row = session.execute(select(ConditionPhoto, PhotoData.data)
                          .join(PhotoData, PhotoData.photo_id == ConditionPhoto.id)
                          .where(ConditionPhoto.id == photo_id)).first()
    return (row[0], row[1]) if row else None
