"""The operator's dashboard under ``/admin`` (present only when ``NEWSLETTER_ADMIN_TOKEN`` is set).

``routes.router`` is included by ``newsletter.web.routers``; the rest are small modules with one
job each: ``session`` (sign-in cookie), ``throttle`` (failed sign-ins), ``stats`` (figures for the
overview), ``chart`` (SVG geometry), ``search`` (subscriber search), ``details`` (what the
subscriber and issue pages show), ``actions`` (audited changes through ``subscribers.service``),
``sending`` (the "send what is still queued" thread).
"""

IMPORT_PATH = "/admin/subscribers/import"
MAX_IMPORT_BYTES = 20 * 1024 * 1024  # a CSV of about 400,000 subscribers
