"""The bare Starlette JSON echo that ``bench/side_by_side.py`` measures the sandbox against.

    python bench/echo_app.py PORT

One POST route that parses the JSON body and answers it back, served by uvicorn with the
sandbox's own HTTP settings (``sandbox.server.serving.config``: httptools, uvloop when
installed): the most any Starlette app could do on this machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def echo(request: Request) -> Response:
    body = json.loads(await request.body())
    return Response(json.dumps(body), media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])


def main() -> int:
    import uvicorn

    from sandbox.server import serving

    port = int(sys.argv[1])
    config = serving.config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
