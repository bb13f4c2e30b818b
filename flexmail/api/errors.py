"""Every API error is ``{"error": {"code", "message", "fields"}}``; never HTML, never a trace.

Public pages get the same mapping rendered as HTML (see ``public``), so the status of a
domain error is decided in this one module.
"""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

from flexmail.services.errors import FlexmailError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
    500: "internal_error",
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


def _html_error(status: int, message: str):
    return render_template("public/error.html", status=status, message=message), status
