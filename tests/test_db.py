from sqlalchemy import inspect
from sqlalchemy.engine import Engine

EXPECTED = {"papers", "issues", "issue_papers", "summaries", "subscribers", "deliveries", "locks"}


def test_migrations_create_every_table(engine: Engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert names >= EXPECTED
