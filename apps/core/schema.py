"""drf-spectacular postprocessing: the API's error contract in the schema. Every
error is JSON {"detail": ...}: a message, or for a body or filter the API refused
field by field, {field: [messages]} under "detail" (apps/core/errors.py)."""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {
        "description": "What was wrong: a message, or field -> messages.",
        "anyOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}],
    }},
}
ERRORS = {
    "400": "Invalid parameter or body (docs/api.md, Bad parameters)",
    "401": "Not authenticated",
    "403": "Not allowed for this role or object",
    "404": "Not found (or not visible to you)",
}
BODY_ERRORS = {"413": "Request body too large", "415": "Unsupported media type"}


def spectacular_errors_hook(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            errors = dict(ERRORS, **BODY_ERRORS) if "requestBody" in operation else ERRORS
            for code, text in errors.items():
                responses.setdefault(code, {"description": text, "content": content})
    return result
