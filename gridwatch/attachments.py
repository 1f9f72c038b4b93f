"""Attachments: photos and documents of a case or a hazard, kept in PostgreSQL so a backup holds them.

- The type is read from the content's first bytes (JPEG, PNG, WebP, PDF), never from the name or
  the client's Content-Type; anything else is refused, and so is a file over :data:`MAX_BYTES`.
- Images are opened with Pillow (a broken or decompression-bomb image is refused) and get a JPEG
  thumbnail at most :data:`THUMB_PX` on its long side.
- One row per distinct content (sha256) per case or hazard: uploading the same photo twice (a phone
  retrying) returns the first row.
- Served only to users whose scope admits the case or hazard: the table's row-level security
  follows the parent row (migration 0100), so an attachment outside one's scope is "not found".

>>> sniff(b"%PDF-1.7 ...")
'application/pdf'
>>> sniff(b"GIF89a") is None
True
"""

from __future__ import annotations

import hashlib
import io
import re

import psycopg
from psycopg import sql
from PIL import Image, UnidentifiedImageError

from gridwatch.db import fetch_all
from gridwatch.errors import Invalid, NotFound

__all__ = ["MAX_BYTES", "THUMB_PX", "TYPES", "sniff", "add", "get", "list_for"]

MAX_BYTES = 10 * 1024 * 1024
THUMB_PX = 320
MAX_PIXELS = 40_000_000
TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "application/pdf": ".pdf"}
META = sql.SQL("id, case_id, hazard_id, event_id, filename, media_type, size, encode(sha256, 'hex') AS sha256, width, height, " \
       "note, uploaded_by, uploaded_at, thumbnail IS NOT NULL AS has_thumbnail")


def sniff(content: bytes) -> str | None:
    """The media type of ``content`` from its magic bytes, or None when it is not an allowed type."""
    if content[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if content[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[:5] == b"%PDF-":
        return "application/pdf"
    return None


def _clean_name(filename: str | None, media_type: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", (filename or "").strip())[-200:].strip(". ")
    return name or f"attachment{TYPES[media_type]}"


def _thumbnail(content: bytes) -> tuple[bytes, int, int]:
    """(JPEG thumbnail, width, height) of an image; Invalid when it cannot be read safely."""
    try:
        with Image.open(io.BytesIO(content)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise Invalid(f"the image is {width}×{height} pixels; at most {MAX_PIXELS:,} are accepted", field="file",
                              value=f"{width}x{height}", message_zh="图片像素过多", fix="send a smaller photo")
            img.draft("RGB", (THUMB_PX * 2, THUMB_PX * 2))
            img.load()
            thumb = img.convert("RGB")
            thumb.thumbnail((THUMB_PX, THUMB_PX))
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=80)
            return out.getvalue(), width, height
    except Invalid:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Invalid(f"the image cannot be read: {exc}", field="file", value=None, message_zh="图片无法读取或已损坏",
                      fix="send an intact JPEG, PNG or WebP photo") from None


def add(conn: psycopg.Connection, content: bytes, *, filename: str | None, uploaded_by: str, case_id: int | None = None,
        hazard_id: int | None = None, event_id: int | None = None, note: str | None = None) -> tuple[dict, bool]:
    """Store an attachment of a case or a hazard; returns (metadata, created). Run inside a transaction
    opened with the uploader's credential: the parent must be visible to them."""
    if (case_id is None) == (hazard_id is None):
        raise Invalid("an attachment belongs to exactly one case or one hazard", field="case_id", value=None,
                      message_zh="附件须属于一件案件或一处隐患", fix="send case_id or hazard_id")
    if not isinstance(content, (bytes, bytearray)) or not content:
        raise Invalid("the file is empty", field="file", value=0, message_zh="文件为空", fix="choose a photo or document")
    if len(content) > MAX_BYTES:
        raise Invalid(f"the file has {len(content):,} bytes; at most {MAX_BYTES:,} are accepted", field="file",
                      value=len(content), message_zh=f"文件过大（上限 {MAX_BYTES // 1024 // 1024} MB）",
                      fix="send a smaller photo or split the document", status=413, code="too_large")
    media_type = sniff(bytes(content[:16]))
    if media_type is None:
        raise Invalid("only JPEG, PNG and WebP photos and PDF documents are accepted", field="file", value=filename,
                      message_zh="仅接受 JPEG、PNG、WebP 图片和 PDF 文档", fix="convert the file to one of these types",
                      status=415, code="unsupported_type")
    parent = ("cases", case_id) if case_id is not None else ("hazard", hazard_id)
    found = conn.execute(sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(parent[0])), (parent[1],)).fetchone()
    if found is None:
        raise NotFound(f"there is no {'case' if case_id is not None else 'hazard'} {parent[1]} in your scope",
                       field="case_id" if case_id is not None else "hazard_id", value=parent[1],
                       message_zh="案件或隐患不存在或不在您的辖区", fix="attach to a case or hazard you can open")
    thumb, width, height = (None, None, None)
    if media_type.startswith("image/"):
        thumb, width, height = _thumbnail(bytes(content))
    digest = hashlib.sha256(content).digest()
    row = conn.execute(
        sql.SQL("""INSERT INTO attachment (case_id, hazard_id, event_id, filename, media_type, size, sha256, content, thumbnail,
                                    width, height, note, uploaded_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT DO NOTHING RETURNING {meta}""").format(meta=META),
        (case_id, hazard_id, event_id, _clean_name(filename, media_type), media_type, len(content), digest, bytes(content),
         thumb, width, height, (note or None) and str(note)[:2000], uploaded_by)).fetchone()
    if row is not None:
        return dict(row), True
    existing = conn.execute(sql.SQL("SELECT {meta} FROM attachment WHERE sha256 = %s AND {col} = %s").format(
        meta=META, col=sql.Identifier("case_id" if case_id is not None else "hazard_id")), (digest, parent[1])).fetchone()
    return dict(existing), False


def get(conn: psycopg.Connection, attachment_id: int, *, thumbnail: bool = False) -> dict:
    """{"media_type", "filename", "content", "sha256"} of an attachment the caller may see (else NotFound).
    ``thumbnail``: the JPEG thumbnail (an image's), or the file itself when it has none."""
    row = conn.execute("SELECT filename, media_type, content, thumbnail, encode(sha256, 'hex') AS sha256 "
                       "FROM attachment WHERE id = %s", (attachment_id,)).fetchone()
    if row is None:
        raise NotFound(f"there is no attachment {attachment_id} in your scope", field="id", value=attachment_id,
                       message_zh="附件不存在或不在您的辖区", fix="open the attachment from its case page")
    if thumbnail and row["thumbnail"] is not None:
        return {"media_type": "image/jpeg", "filename": row["filename"], "content": bytes(row["thumbnail"]),
                "sha256": row["sha256"]}
    return {"media_type": row["media_type"], "filename": row["filename"], "content": bytes(row["content"]),
            "sha256": row["sha256"]}


def list_for(conn: psycopg.Connection, *, case_id: int | None = None, hazard_id: int | None = None) -> list[dict]:
    """Metadata (no bytes) of the attachments of a case (with those of its hazards) or of a hazard."""
    if case_id is not None:
        return fetch_all(conn, sql.SQL("""SELECT {meta} FROM attachment WHERE case_id = %(id)s
                                   OR hazard_id IN (SELECT id FROM hazard WHERE case_id = %(id)s) ORDER BY uploaded_at, id""")
                         .format(meta=META), {"id": case_id})
    return fetch_all(conn, sql.SQL("SELECT {meta} FROM attachment WHERE hazard_id = %s ORDER BY uploaded_at, id").format(meta=META),
                     (hazard_id,))
