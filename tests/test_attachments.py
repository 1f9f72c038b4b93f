"""Attachments in PostgreSQL: type read from the bytes, size and image checks, thumbnails, one row per
content, and served only inside the scope of the case (row-level security as the app role)."""

from __future__ import annotations

import hashlib
import io

import psycopg
import pytest
from PIL import Image
from psycopg.rows import dict_row

from gridwatch import attachments, auth
from gridwatch.db import transaction
from gridwatch.errors import Invalid, NotFound
from tests.factories import make_case, make_category
from tests.test_rls import app_url


def photo(width=1200, height=900, colour=(200, 40, 40), fmt="JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def cases(conn, tiny):
    make_category(conn)
    return {"xindun": make_case(conn, 103.0, 38.5, title="新墩镇的案件"), "wujiang": make_case(conn, 103.0, 35.5, title="乌江乡的案件")}


def test_a_photo_is_stored_with_its_hash_size_and_a_thumbnail_and_the_same_photo_twice_is_one_row(conn, cases):
    content = photo()
    meta, created = attachments.add(conn, content, filename="现场/照片.jpg", uploaded_by="网格员", case_id=cases["xindun"])
    assert created and meta["media_type"] == "image/jpeg" and meta["size"] == len(content)
    assert (meta["width"], meta["height"]) == (1200, 900) and meta["has_thumbnail"]
    assert meta["filename"] == "现场_照片.jpg"          # no path separators survive
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    thumb = attachments.get(conn, meta["id"], thumbnail=True)
    with Image.open(io.BytesIO(thumb["content"])) as img:
        assert img.format == "JPEG" and max(img.size) == attachments.THUMB_PX
    assert attachments.get(conn, meta["id"])["content"] == content
    again, created = attachments.add(conn, content, filename="retry.jpg", uploaded_by="网格员", case_id=cases["xindun"])
    assert not created and again["id"] == meta["id"]
    assert len(attachments.list_for(conn, case_id=cases["xindun"])) == 1


def test_a_pdf_is_kept_without_a_thumbnail_and_other_types_oversize_and_broken_images_are_refused(conn, cases):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    meta, _ = attachments.add(conn, pdf, filename="协议.pdf", uploaded_by="窗口", case_id=cases["xindun"])
    assert meta["media_type"] == "application/pdf" and not meta["has_thumbnail"]
    assert attachments.get(conn, meta["id"], thumbnail=True)["media_type"] == "application/pdf"
    refusals = {
        "gif": (b"GIF89a" + b"\0" * 20, 415),
        "html named .jpg": (b"<script>alert(1)</script>", 415),
        "too large": (b"\xff\xd8\xff" + b"\0" * attachments.MAX_BYTES, 413),
        "broken jpeg": (b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 10, 422),
        "empty": (b"", 422),
    }
    for name, (content, status) in refusals.items():
        with pytest.raises(Invalid) as refused:
            attachments.add(conn, content, filename="x.jpg", uploaded_by="窗口", case_id=cases["xindun"])
        assert refused.value.status == status, name
    assert len(attachments.list_for(conn, case_id=cases["xindun"])) == 1


def test_an_attachment_is_served_only_to_users_whose_scope_admits_the_case(conn, db_url, cases):
    meta, _ = attachments.add(conn, photo(), filename="a.jpg", uploaded_by="窗口", case_id=cases["xindun"])
    xindun = auth.create_session(conn, auth.add_user(conn, "xindun", "operator", region_code="620702100"))
    wujiang = auth.create_session(conn, auth.add_user(conn, "wujiang", "operator", region_code="620702200"))
    with psycopg.connect(app_url(db_url), row_factory=dict_row) as app:
        with transaction(app, credential=xindun) as tx:
            assert attachments.get(tx, meta["id"])["sha256"] == meta["sha256"]
            added, _ = attachments.add(tx, photo(colour=(0, 90, 0), fmt="PNG"), filename="b.png", uploaded_by="xindun",
                                       case_id=cases["xindun"])
            assert added["media_type"] == "image/png"
        with transaction(app, credential=wujiang) as tx:
            with pytest.raises(NotFound):
                attachments.get(tx, meta["id"])
            assert attachments.list_for(tx, case_id=cases["xindun"]) == []
            with pytest.raises(NotFound):     # cannot attach to a case outside the scope either
                attachments.add(tx, photo(), filename="c.jpg", uploaded_by="wujiang", case_id=cases["xindun"])
        with transaction(app, credential=xindun) as tx:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):   # attachments are never changed or deleted
                tx.execute("DELETE FROM attachment WHERE id = %s", (meta["id"],))
