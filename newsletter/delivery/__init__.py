"""Getting e-mail out: backends (file outbox, SendGrid, SMTP) and exactly-once bookkeeping."""
