"""Every API error is ``{"error": {"code", "message", "fields"}}``; never HTML, never a trace.

Public pages get the same mapping rendered as HTML (see ``public``), so the status of a
domain error is decided in this one module.
"""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

from flexmail.services.platform import availability
from flexmail.services.platform.errors import FlexmailError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
    500: "internal_error", 503: "unavailable",
}


def is_api_request() -> bool:
    return request.path.startswith(("/api/", "/hooks/", "/internal/"))


def envelope(status: int, code: str, message: str, fields: dict | None = None, headers=None):
    response = jsonify({"error": {"code": code, "message": message, "fields": fields or {}}})
    response.status_code = status
    for name, value in headers or []:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def flexmail_error_response(exc: FlexmailError):
    headers = list(getattr(exc, "headers", []))
    if getattr(exc, "retry_after", None):
        headers.append(("Retry-After", str(exc.retry_after)))
    return envelope(exc.status, exc.code, exc.message, exc.fields, headers)


class FlexmailApi(Api):
    """flask-smorest's Api with our error envelope, keeping Werkzeug's headers (Allow...)."""

    def _register_error_handlers(self):
        app = self._app
        app.register_error_handler(HTTPException, self.handle_http_exception)
        app.register_error_handler(FlexmailError, self.handle_flexmail_error)
        app.register_error_handler(Exception, self.handle_unexpected)
        for error_class in availability.DATABASE_ERRORS:
            app.register_error_handler(error_class, self.handle_database_error)

    def handle_http_exception(self, error: HTTPException):
        if not is_api_request():
            return _html_error(error.code or 500, error.description)
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") or data.get("errors") or {}
        fields = {}
        if isinstance(messages, dict):
            for location in messages.values():  # webargs nests by location (json, query)
                if isinstance(location, dict):
                    fields.update(location)
        status = error.code or 500
        headers = list(error.get_headers()) + list((data.get("headers") or {}).items())
        message = data.get("message") or ("Invalid input." if fields else error.description)
        return envelope(status, HTTP_CODES.get(status, "error"), message, fields, headers)

    def handle_flexmail_error(self, error: FlexmailError):
        if not is_api_request():
            return _html_error(error.status, error.message)
        return flexmail_error_response(error)

    def handle_unexpected(self, error: Exception):
        if isinstance(error, HTTPException):
            return self.handle_http_exception(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return self.handle_http_exception(InternalServerError())


    def handle_database_error(self, error: Exception):
        """The database is unreachable: 503 with Retry-After (JSON on the API, HTML elsewhere).

        Any other database error (bad data, a constraint) is not an outage and goes to the
        generic handlers.
        """
        if not availability.is_database_unavailable(error):
            return self.handle_unexpected(error)
        availability.reset_session()
        log.warning("database unavailable (%s) on %s %s: answered 503", type(error).__name__,
                    request.method, request.url_rule.rule if request.url_rule else "-")
        return database_unavailable_response()


def database_unavailable_response():
    headers = [("Retry-After", str(availability.RETRY_AFTER))]
    message = "The service is briefly unavailable; please try again shortly."
    if is_api_request():
        return envelope(503, "unavailable", message, headers=headers)
    response = _html_error(503, message)
    return response[0], 503, dict(headers)


def _html_error(status: int, message: str):
    return render_template("public/error.html", status=status, message=message), status
