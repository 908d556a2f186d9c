"""Fixtures of the subscriber and web tests (load with ``pytest_plugins``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from newsletter.config import Settings
from newsletter.db import make_engine
from tests.subscriber_helpers import make_client, with_secret


@pytest.fixture
def web_settings(make_settings: Callable[..., Settings]) -> Settings:
    return with_secret(make_settings())


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    engine = make_engine(web_settings.database_url)
    with make_client(web_settings, engine) as c:
        yield c
    engine.dispose()
