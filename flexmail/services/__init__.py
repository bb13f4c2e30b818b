"""Business rules. Views, actors and CLI commands call these; they never see flask.request."""
