"""The web app: platform webhooks, the read API, health and metrics."""
