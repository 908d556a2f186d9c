"""The sender as its own process, for the crash tests: ``python -m tests.delivery_worker``.

Arguments: database URL, SendGrid host, in-flight policy, concurrency, recipients per batch,
and optionally ``prepare`` (build the requests in a preparing process, however small the send).
Prints the run's report as JSON on its last line.
"""

from __future__ import annotations

import json
import sys

from newsletter.db import make_engine
from newsletter.delivery.backends.sendgrid import SendGridBackend
from newsletter.delivery.send import send_issue
from tests.fixtures_delivery import API_KEY, delivery_settings, recorded_view
from tests.fixtures_email import RECORDED_DAY


def main(argv: list[str]) -> None:
    url, host, policy, concurrency, per_batch, *flags = argv
    settings = delivery_settings(
        url,
        backend="sendgrid",
        sendgrid_host=host,
        in_flight_policy=policy,
        concurrency=int(concurrency),
        **({"prepare_processes": 1, "prepare_min_batches": 1} if "prepare" in flags else {}),
    )
    backend = SendGridBackend(API_KEY, host, max_retries=0)
    backend.max_batch = int(per_batch)
    engine = make_engine(url)
    report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), backend=backend)
    print(
        json.dumps(
            {
                "sent": report.sent,
                "in_flight": [p.subscriber_id for p in report.in_flight],
                "totals": report.totals,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
