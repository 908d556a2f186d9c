"""The digest e-mail's content: per-subscriber selection, rendering and headers."""
