"""The weekly step as its own process, for the crash test: ``python -m tests.weekly_worker``.

Arguments: a settings JSON file (``Settings.model_dump(mode="json")``), SendGrid host, the
run's date, recipients per batch. The secret key comes from ``NEWSLETTER_SECRET_KEY``. Prints
the weekly report as JSON on its last line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from pydantic import SecretStr

from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.delivery.backends.sendgrid import SendGridBackend
from newsletter.rhythm.weekly import send_weekly
from tests.fixtures_delivery import API_KEY


def main(argv: list[str]) -> None:
    settings_file, host, day, per_batch = argv
    data = json.loads(Path(settings_file).read_text(encoding="utf-8"))
    data["secret_key"] = SecretStr(os.environ["NEWSLETTER_SECRET_KEY"])
    settings = Settings.model_validate(data)
    backend = SendGridBackend(API_KEY, host, max_retries=0)
    backend.max_batch = int(per_batch)
    engine = make_engine(settings.database_url)
    report = send_weekly(engine, settings, dt.date.fromisoformat(day), backend=backend)
    print(json.dumps({"sent": report.sent, "complete": report.complete}))


if __name__ == "__main__":
    main(sys.argv[1:])
