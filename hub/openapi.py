"""The OpenAPI 3.1 document of the hub's HTTP API, served at ``GET /openapi.json``.

It is plain data, one function per group of paths, so it stays reviewable next to the routes.
To document a new route, write a ``_<group>_paths()`` function that returns its path items
(reuse :func:`_errors`, :func:`_json` and the schemas in :func:`_schemas`) and add it to
``PATH_GROUPS``. ``tests/test_fuzz_api.py`` fails while a served route is missing here, and
fuzzes every documented operation against a live hub, so keep the document exact: every
status a route can answer, and every field it always sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.models import Disposition, ErrorCategory, Source, Status
from hub.providers import ADAPTERS

Json = dict[str, Any]

_REASONS = {
    400: "malformed request: bad UTF-8 or JSON, JSON nested too deep, a bad query parameter",
    401: "missing or wrong API key, or a forged, altered or expired token",
    403: "a genuine token used for another provider, task or purpose",
    404: "no such task or provider",
    408: "the request body did not arrive within HUB_BODY_TIMEOUT_S",
    409: "the task or the provider's task id is already bound to something else",
    413: "the request body is over HUB_MAX_BODY_BYTES",
    415: "the body is not application/json",
    422: "the JSON is well formed but not acceptable",
    429: "too many requests from this client (webhooks per address, streams per token); "
    "retry after Retry-After seconds",
    502: "the provider's API failed or answered something unexpected",
    503: "the store did not take the write (nothing was acknowledged), the provider asked to "
    "slow down, or the process serves as many streams as it may",
}
_BODY_ERRORS = (400, 408, 413, 415, 422)


def document() -> Json:
    """The whole OpenAPI document."""
    paths: Json = {}
    for group in PATH_GROUPS:
        paths.update(group())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callback-hub",
            "version": "1",
            "description": "Durable webhook correlation for async generation APIs. Every error "
            'is JSON: {"error": {"code", "message"}}.',
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Json, description: str = "OK") -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> Json:
    responses = {str(code): _json(_ref("Error"), _REASONS[code]) for code in codes}
    for code in ("429", "503"):
        if code in responses:
            responses[code]["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait (always on 429)",
                    "schema": {"type": "string"},
                }
            }
    return responses


def _body(schema: Json) -> Json:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _nullable(kind: str, **extra: Any) -> Json:
    return {"type": [kind, "null"], **extra}


def _string(description: str, **extra: Any) -> Json:
    return {"type": "string", "description": description, **extra}


_BEARER: list[Json] = [{"apiKey": []}]
_PAGE = {"minimum": 1, "maximum": 200}
_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _provider_param() -> Json:
    return {
        "name": "provider",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": sorted(ADAPTERS)},
    }


# -- paths, one group per routes module ---------------------------------------------------


def _health_paths() -> Json:
    return {
        "/healthz": {
            "get": {
                "summary": "Liveness: the process answers",
                "responses": {"200": _json(_ref("Health"))},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the store and the bus answer",
                "responses": {
                    "200": _json(_ref("Ready")),
                    "503": _json(_ref("Ready"), "not ready; checks say which part is down"),
                },
            }
        },
    }


def _metrics_paths() -> Json:
    return {
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "responses": {
                    "200": {"description": "OK", "content": {"text/plain": {"schema": {}}}}
                },
            }
        }
    }


def _task_paths() -> Json:
    wait = {
        "name": "wait",
        "in": "query",
        "description": "long-poll up to this many seconds (at most HUB_WAIT_MAX_S) for a "
        "terminal status; answers 200 with the current state when the time is up",
        "schema": {"type": "number", "minimum": 0},
    }
    filters: list[Json] = [
        {"name": name, "in": "query", "schema": {"type": "string"}}
        for name in ("provider", "external_id", "parent_id", "cursor")
    ]
    filters += [
        {"name": "status", "in": "query", "schema": {"type": "string", "enum": _values(Status)}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", **_PAGE}},
    ]
    return {
        "/v1/tasks": {
            "post": {
                "summary": "Register a task; hand its callback_url to the provider",
                "security": _BEARER,
                "requestBody": _body(_ref("CreateTask")),
                "responses": {
                    "201": _json(_ref("Task"), "Created"),
                    **_errors(401, 404, 409, 502, 503, *_BODY_ERRORS),
                },
            },
            "get": {
                "summary": "List tasks, newest first",
                "security": _BEARER,
                "parameters": filters,
                "responses": {"200": _json(_ref("TaskPage")), **_errors(400, 401, 503)},
            },
        },
        "/v1/tasks/{task_id}": {
            "get": {
                "summary": "A task and all its stored events; ?wait= long-polls",
                "security": _BEARER,
                "parameters": [_TASK_ID, wait],
                "responses": {"200": _json(_ref("TaskWithEvents")), **_errors(400, 401, 404, 503)},
            }
        },
        "/v1/tasks/{task_id}/bind": {
            "post": {
                "summary": "Record the provider's task id; early events are attached",
                "security": _BEARER,
                "parameters": [_TASK_ID],
                "requestBody": _body(_ref("Bind")),
                "responses": {
                    "200": _json(_ref("Task")),
                    **_errors(401, 404, 409, 503, *_BODY_ERRORS),
                },
            }
        },
        "/v1/tasks/{task_id}/actions": {
            "post": {
                "summary": "Start a follow-up (upscale, variation, reroll) as a child task",
                "security": _BEARER,
                "parameters": [_TASK_ID],
                "requestBody": _body(_ref("ActionRequest")),
                "responses": {
                    "201": _json(_ref("Task"), "Created"),
                    **_errors(401, 404, 409, 502, 503, *_BODY_ERRORS),
                },
            }
        },
        "/v1/providers/{provider}/account-hook": {
            "get": {
                "summary": "The account-level webhook URL (providers with one URL per account)",
                "security": _BEARER,
                "parameters": [_provider_param()],
                "responses": {"200": _json(_ref("AccountHook")), **_errors(400, 401, 404)},
            }
        },
    }


def _hook_paths() -> Json:
    operation = {
        "requestBody": _body(_ref("WebhookBody")),
        "responses": {
            "200": _json(_ref("WebhookAccepted"), "committed before this answer"),
            **_errors(401, 403, 404, 429, 503, *_BODY_ERRORS),
        },
    }
    token = {"in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/hooks/{provider}/{token}": {
            "post": {
                "summary": "A task's signed callback URL, for the provider",
                "parameters": [_provider_param(), {"name": "token", **token}],
                **operation,
            }
        },
        "/hooks/{provider}/account/{key}": {
            "post": {
                "summary": "The account-level callback URL; correlates by provider id or ref",
                "parameters": [_provider_param(), {"name": "key", **token}],
                **operation,
            }
        },
    }


def _event_paths() -> Json:
    resume = [
        {
            "name": "Last-Event-ID",
            "in": "header",
            "description": "resume after this event (EventSource sends it on reconnect)",
            "schema": {"type": "string", "pattern": "^[0-9]{0,19}$"},  # empty: not resuming
        },
        {"name": "last_event_id", "in": "query", "schema": {"type": "string"}},
    ]
    filters: list[Json] = [
        {
            "name": name,
            "in": "query",
            "description": "comma-separated values",
            "schema": {"type": "string"},
        }
        for name in ("task_id", "provider", "type", "status", "channel")
    ]
    frame = _object(
        {"data": {"type": "string"}},
        {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": {"type": "string", "description": "message (an Event as JSON) or reset"},
        },
    )
    stream = {
        "description": "Server-Sent Events; each `id:` is the event's seq, `data:` its JSON",
        "content": {"text/event-stream": {"schema": frame}},
    }
    return {
        "/v1/events": {
            "get": {
                "summary": "Every applied event as Server-Sent Events, filtered",
                "security": _BEARER,
                "parameters": [*filters, *resume],
                "responses": {"200": stream, **_errors(400, 401, 503)},
            }
        },
        "/v1/tasks/{task_id}/events": {
            "get": {
                "summary": "One task's events as Server-Sent Events (subscriber token or key)",
                "parameters": [
                    _TASK_ID,
                    {"name": "token", "in": "query", "schema": {"type": "string"}},
                    {"name": "stay_open", "in": "query", "schema": {"type": "string"}},
                    *resume,
                ],
                "responses": {
                    "200": stream,
                    "204": {"description": "the task is finished and the client has it all"},
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            }
        },
    }


def _meta_paths() -> Json:
    return {
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"})},
            }
        }
    }


#: Every group of documented paths; add yours here.
PATH_GROUPS: list[Callable[[], Json]] = [
    _health_paths,
    _metrics_paths,
    _task_paths,
    _event_paths,
    _hook_paths,
    _meta_paths,
]


# -- schemas ------------------------------------------------------------------------------


def _values(enum: Any) -> list[str]:
    return [member.value for member in enum]


def _object(required: dict[str, Json], optional: dict[str, Json] | None = None) -> Json:
    # Responses may grow fields; clients must ignore ones they do not know.
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def _schemas() -> Json:
    short = {"type": "string", "minLength": 1, "maxLength": 200}
    number = {"type": "number"}
    output = _object(
        {"url": {"type": "string"}, "role": {"type": "string"}, "index": _nullable("integer")}
    )
    action = _object(
        {
            "kind": {"type": "string"},
            "index": _nullable("integer"),
            "provider_ref": _nullable("string"),
        }
    )
    task_error = {
        "oneOf": [
            {"type": "null"},
            _object(
                {
                    "category": {"type": "string", "enum": _values(ErrorCategory)},
                    "code": _nullable("string"),
                    "message": {"type": "string"},
                    "retryable": {"type": "boolean"},
                }
            ),
        ]
    }
    state = {
        "progress": _nullable("integer", minimum=0, maximum=100),
        "outputs": {"type": "array", "items": _ref("Output")},
        "actions": {"type": "array", "items": _ref("Action")},
        "error": _ref("TaskError"),
    }
    task = _object(
        {
            "id": {"type": "string"},
            "provider": {"type": "string"},
            "status": {"type": "string", "enum": _values(Status)},
            "created_at": number,
            "updated_at": number,
            "external_id": _nullable("string"),
            "parent_id": _nullable("string"),
            **state,
            "metadata": {"type": "object"},
            "deadline_at": _nullable("number"),
            "last_event_at": _nullable("number"),
            "callback_url": {"type": "string"},
            "events_url": {"type": "string"},
        }
    )
    event = _object(
        {
            "id": {"type": "integer"},
            "seq": _nullable("integer"),
            "task_id": _nullable("string"),
            "provider": {"type": "string"},
            "provider_task_id": _nullable("string"),
            "type": _nullable("string"),
            "status": {"enum": [*_values(Status), None]},
            "provider_status": _nullable("string"),
            **state,
            "disposition": {"type": "string", "enum": _values(Disposition)},
            "source": {"type": "string", "enum": _values(Source)},
            "received_at": number,
        }
    )
    return {
        "Error": _object(
            {
                "error": _object(
                    {"code": {"type": "string"}, "message": {"type": "string"}},
                )
            }
        ),
        "Output": output,
        "Action": action,
        "TaskError": task_error,
        "Task": task,
        "TaskWithEvents": {
            "allOf": [
                _ref("Task"),
                _object({"events": {"type": "array", "items": _ref("Event")}}),
            ]
        },
        "Event": event,
        "TaskPage": _object(
            {
                "tasks": {"type": "array", "items": _ref("Task")},
                "next_cursor": _nullable("string"),
            }
        ),
        "CreateTask": _object(
            {"provider": {"type": "string", "enum": sorted(ADAPTERS)}},
            {  # null is the same as leaving a field out
                "external_id": {**short, "type": ["string", "null"]},
                "parent_id": {**short, "type": ["string", "null"]},
                "metadata": _nullable("object"),
                "deadline_s": _nullable("number", exclusiveMinimum=0, maximum=100 * 365 * 86_400),
                "submit": {
                    "type": "object",
                    "description": "start the task at the provider too (then no external_id "
                    "or parent_id); options are the provider's own submit fields",
                    "required": ["prompt"],
                    "properties": {
                        "prompt": {"type": "string", "minLength": 1, "maxLength": 8000},
                        "options": {"type": "object"},
                    },
                    "additionalProperties": False,
                },
            },
        ),
        "ActionRequest": _object(
            {"action": {"type": "string", "enum": ["upscale", "variation", "reroll"]}},
            {"index": _nullable("integer", minimum=1, maximum=4)},
        ),
        "Bind": _object({"external_id": short}),
        "AccountHook": _object({"provider": {"type": "string"}, "url": {"type": "string"}}),
        "WebhookBody": {
            "type": "object",
            "description": "the provider's own webhook body (see the README's provider table)",
        },
        "WebhookAccepted": _object(
            {
                "ok": {"const": True},
                "event_id": {"type": "integer"},
                "disposition": {"type": "string", "enum": _values(Disposition)},
            }
        ),
        "Health": _object({"status": {"const": "ok"}}),
        "Ready": _object(
            {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        ),
    }
