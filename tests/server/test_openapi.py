"""/openapi.json is generated from schemas/ and judges messages exactly as the server does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sandbox.runtime import Sandbox
from tests.support import SEED_CREATE, V1, V3, seed_create, v3_req_data


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validator_for(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": "urn:openapi" + schema["$ref"]}, registry=registry)


@pytest.fixture
def spec(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_every_api_path_is_described(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    expected = {V1 + op for op in ("create", "query", "close")} | {
        V3 + op for op in ("special_create", "create", "query", "close")
    }
    assert expected <= set(spec["paths"])
    assert spec["paths"][V3 + "create"]["post"]["deprecated"] is True


def test_every_reference_resolves_inside_the_document(spec: dict[str, Any]) -> None:
    all_refs = refs(spec)
    assert len(all_refs) > 50
    for ref in all_refs:
        resolve(spec, ref)
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_bundled_schemas_judge_requests_like_the_server(spec: dict[str, Any], sb: Sandbox) -> None:
    v1 = spec["paths"][V1 + "create"]["post"]["requestBody"]["content"]["application/json"]
    check = validator_for(spec, v1["schema"])
    assert check.is_valid(dict(SEED_CREATE))
    assert not check.is_valid(dict(SEED_CREATE, total_amount=1234567890123))
    v3 = spec["paths"][V3 + "special_create"]["post"]["requestBody"]["content"]["application/json"]
    check = validator_for(spec, v3["schema"])
    assert check.is_valid(
        {"req_time": "20261126120000", "version": "3.0", "req_data": v3_req_data(sb, "X1")}
    )
    assert not check.is_valid(
        {"req_time": "20261126120000", "version": "3.0", "req_data": {"out_order_no": "X1"}}
    )


def test_served_responses_match_the_documented_schema(
    spec: dict[str, Any], http: httpx.Client, sb: Sandbox
) -> None:
    ok = http.post(V1 + "create", json=seed_create(sb, "OAS-1")).json()
    error = http.post(V1 + "create", json={"out_order_no": "OAS-2"}).json()
    documented = spec["paths"][V1 + "create"]["post"]["responses"]["200"]
    schema = documented["content"]["application/json"]["schema"]
    for body in (ok, error):
        registry: Registry[Any] = Registry().with_resource(
            "urn:openapi", Resource.from_contents(spec, default_specification=DRAFT202012)
        )
        wrapped = {"anyOf": [{"$ref": "urn:openapi" + s["$ref"]} for s in schema["anyOf"]]}
        assert Draft202012Validator(wrapped, registry=registry).is_valid(body), body


def test_schema_files_and_docs_page_are_served(http: httpx.Client, sb: Sandbox) -> None:
    response = http.get("/schemas/v3/query.req.schema.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    assert response.json() == sb.schemas.documents["v3/query.req"]
    missing = http.get("/schemas/nope.json")
    assert missing.status_code == 404 and "v1/create.req.schema.json" in missing.json()["schemas"]
    page = http.get("/docs")
    assert page.status_code == 200
    assert "v1/create.req" in page.text and "/openapi.json" in page.text
