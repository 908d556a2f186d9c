"""Fetching a day from arXiv: the one client, the feed and API parsers, the calendar, replays."""
