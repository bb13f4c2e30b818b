"""Entry point: `flask --app app ...`, `gunicorn app:app`, `dramatiq app:broker flexmail.tasks`."""

from flexmail import create_app

app = create_app()
broker = app.extensions["dramatiq"]
