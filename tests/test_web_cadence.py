"""The preferences page offers cadence and summary language (issue 14)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from subscribers import service
from subscribers.links import link
from subscribers.models import Subscriber
from tests.subscriber_helpers import csrf_of, make_client, with_secret


def _reader(settings: Settings) -> Subscriber:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        row = s.exec(select(Subscriber)).one()
    engine.dispose()
    return row


def test_preferences_page_sets_cadence_and_language(
    make_settings: Callable[..., Settings],
) -> None:
    settings = with_secret(
        make_settings(ai_summary={"language": "English", "languages": ["English", "Chinese"]})
    )
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        sub = service.add(session, settings=settings, email="r@example.org", active=True).subscriber
        sid, key = sub.id, sub.link_key
    assert sid is not None
    path = "/" + link(settings, "preferences", sid, key).split("/", 3)[3]
    with make_client(settings, engine) as client:
        page = client.get(path)
        assert page.status_code == 200
        assert 'value="weekly"' in page.text and "with the Friday run" in page.text
        assert '<option value="Chinese">Chinese</option>' in page.text
        form = {"csrf_token": csrf_of(page.text), "keywords": "graph", "include_summaries": "1"}
        saved = client.post(path, data={**form, "cadence": "weekly", "language": "Chinese"})
        assert saved.status_code == 200
        assert (_reader(settings).cadence, _reader(settings).language) == ("weekly", "Chinese")
        again = client.get(path)
        assert '<option value="Chinese" selected>' in again.text
        assert 'value="weekly" checked' in again.text
        bad = client.post(path, data={**form, "cadence": "hourly", "language": "Chinese"})
        assert bad.status_code == 400 and "cadence must be one of daily, weekly" in bad.text
        bad = client.post(path, data={**form, "cadence": "daily", "language": "<i>Elvish"})
        assert (
            bad.status_code == 400 and "&lt;i&gt;Elvish" in bad.text and "<i>Elvish" not in bad.text
        )
        assert _reader(settings).cadence == "weekly"  # nothing saved from a bad form
        back = client.post(path, data={**form, "cadence": "daily", "language": "English"})
        assert back.status_code == 200
        assert (_reader(settings).cadence, _reader(settings).language) == ("daily", None)
    engine.dispose()
