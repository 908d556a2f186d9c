"""Self-hosted arXiv newsletter: fetch, rank, summarise, archive and mail each day's papers."""

__version__ = "0.1.0"
