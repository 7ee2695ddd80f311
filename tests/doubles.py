"""Test doubles for the client and the contract checker: a sandbox whose answers drift.

``DriftingApp(app, mutate)`` is an ASGI app that runs the sandbox and hands every v3 answer to
``mutate(path, Answer) -> Answer`` before sending it; ``resign`` signs a changed body again with
the sandbox's platform key, so only the change itself is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sandbox.runtime import Sandbox
from sandbox.wire import signing

V3 = "/api/v3/"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Mutate = Callable[[str, Answer], Answer]


class DriftingApp:
    def __init__(self, app: Any, mutate: Mutate) -> None:
        self.app = app
        self.mutate = mutate
        self.state = app.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(V3):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def collect(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
        headers.pop("content-length", None)
        answer = self.mutate(scope["path"], Answer(start["status"], headers, b"".join(chunks)))
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
        raw.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": raw})
        await send({"type": "http.response.body", "body": answer.body})


def resign(sb: Sandbox, answer: Answer, body: bytes) -> Answer:
    """``body`` with fresh, valid Lklapi-* headers from the sandbox's platform key."""
    headers = {k: v for k, v in answer.headers.items() if not k.lower().startswith("lklapi-")}
    appid = answer.headers.get("lklapi-appid", sb.settings.appid)
    headers.update(
        signing.response_headers(sb.keys.platform_key, appid, sb.keys.platform_serial, body)
    )
    return replace(answer, headers=headers, body=body)


def change_data(sb: Sandbox, operation: str, change: Callable[[dict[str, Any]], None]) -> Mutate:
    """Edit ``resp_data`` of one operation's successful answers, then sign them again."""

    def mutate(path: str, answer: Answer) -> Answer:
        message = answer.json()
        if not path.endswith("/" + operation) or message.get("code") != "000000":
            return answer
        change(message["resp_data"])
        return resign(sb, answer, json.dumps(message, ensure_ascii=False).encode())

    return mutate


def drop_field(sb: Sandbox, operation: str, field: str) -> Mutate:
    return change_data(sb, operation, lambda data: data.pop(field))


def retype_field(sb: Sandbox, operation: str, field: str, value: Any) -> Mutate:
    def change(data: dict[str, Any]) -> None:
        data[field] = value

    return change_data(sb, operation, change)


def omit_header(name: str) -> Mutate:
    def mutate(path: str, answer: Answer) -> Answer:
        return replace(
            answer, headers={k: v for k, v in answer.headers.items() if k.lower() != name.lower()}
        )

    return mutate


def replace_answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Mutate:
    def mutate(path: str, answer: Answer) -> Answer:
        return Answer(
            status, headers if headers is not None else {"content-type": "text/plain"}, body
        )

    return mutate
