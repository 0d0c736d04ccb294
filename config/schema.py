"""OpenAPI post-processing: every operation documents the errors it can answer.

The error shape is one (config/exceptions.py), so it is one component, `Error`, and the error
statuses every operation may give are added here instead of by hand on each view: 401 without
credentials, 403 for a role that may not, 404 for an object that is missing or not yours, 429
when throttled; 400 wherever a request carries a body or parameters, 413 for uploads.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What was wrong, in one sentence."},
        "code": {"type": "string", "description": "A stable word for the kind of error."},
        "errors": {
            "description": "For a body that failed validation: the messages by field.",
        },
    },
    "required": ["detail", "code"],
}

ALWAYS = {
    "401": "Not authenticated (no, an expired or a revoked token).",
    "403": "Authenticated, but this role may not do this.",
    "404": "No such object, or not one you may see.",
    "405": "Method not allowed.",
    "429": "Too many requests (throttled or locked out).",
}
WITH_INPUT = {"400": "The request is invalid; `detail` says why, `errors` by field."}
UPLOADS = {"413": "The upload is larger than MAX_UPLOAD_BYTES."}


def add_error_responses(result: dict, generator, request, public) -> dict:
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR_SCHEMA)
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            wanted = dict(ALWAYS)
            body = operation.get("requestBody", {}).get("content", {})
            if body or operation.get("parameters"):
                wanted.update(WITH_INPUT)
            if any(kind.startswith("multipart/") for kind in body):
                wanted.update(UPLOADS)
            if method != "get":
                wanted.update(WITH_INPUT)  # a body that is not JSON at all, a NUL in the path
            responses = operation.setdefault("responses", {})
            for status, description in wanted.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
