"""Admin API for notifies and scenarios: an order's notify attempts, fire one now, replay one;
the scenarios loaded and the default; an order's scenario run, and running one step by hand."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.runtime import Sandbox
from sandbox.server.admin.orders import admin, json_body, order_view
from sandbox.server.http import json_response
from sandbox.wire.errors import SandboxError


@admin
async def list_notifies(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    pay_order_no = request.path_params["pay_order_no"]
    sb.engine.get(pay_order_no)  # ORDER_NOT_FOUND rather than an empty list for a typo
    return json_response({"notifies": sb.notifier.attempts(pay_order_no)})


@admin
async def notify_now(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    body = await json_body(request, "notify")
    attempt = sb.notifier.send_now(request.path_params["pay_order_no"], body.get("notify", "now"))
    return json_response({"notify": attempt}, 202)


@admin
async def replay(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return json_response({"notify": sb.notifier.replay(request.path_params["attempt_id"])}, 202)


@admin
async def list_scenarios(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return json_response(sb.runner.list())


@admin
async def set_default(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    name = (await json_body(request, "scenario_default", optional=False)).get("name")
    if not isinstance(name, str):
        raise SandboxError("INVALID_PARAM", field="name", rule="must be a scenario name")
    scenario = sb.runner.set_default(name)
    return json_response({"default": scenario.name, "scenario": scenario.as_dict()})


@admin
async def order_scenario(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    pay_order_no = request.path_params["pay_order_no"]
    sb.engine.get(pay_order_no)
    return json_response({"run": sb.runner.run_for(pay_order_no)})


@admin
async def run_step(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    step = await json_body(request, None, optional=False)  # the runner checks the step
    order = sb.runner.run_step(request.path_params["pay_order_no"], step, source="admin")
    return json_response({"order": order_view(sb, order)})


routes = [
    Route("/sandbox/api/orders/{pay_order_no}/notifies", list_notifies, methods=["GET"]),
    Route("/sandbox/api/orders/{pay_order_no}/notify", notify_now, methods=["POST"]),
    Route("/sandbox/api/notifies/{attempt_id:int}/replay", replay, methods=["POST"]),
    Route("/sandbox/api/scenarios", list_scenarios, methods=["GET"]),
    Route("/sandbox/api/scenarios/default", set_default, methods=["PUT"]),
    Route("/sandbox/api/orders/{pay_order_no}/scenario", order_scenario, methods=["GET"]),
    Route("/sandbox/api/orders/{pay_order_no}/step", run_step, methods=["POST"]),
]
