"""The web app: signup and subscriber pages now; archive, feeds and webhooks plug in as routers."""
