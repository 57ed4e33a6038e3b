"""Every bad input is a 4xx in the answering endpoint's own shape, and nothing is written
(issue #21, items 5-11): NUL characters, lone surrogates, deep or huge JSON, absurd key
expiries, oversized bodies, invisible prompts, and what the schema promises.

Each table lists every endpoint that takes that kind of input. Run on PostgreSQL: it is
PostgreSQL that refuses NUL (SQLite stores it), so only there the bugs showed."""

import json
from dataclasses import dataclass

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from accounts.api_keys import apikey_create
from accounts.models import ApiKey, Membership, Team
from billing.models import CreditEntry
from generation.models import IdempotencyRecord, Job
from openai_api.converters import video_id

from .conftest import client_for, on_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(alice, settings):
    settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = True  # no DNS look-ups for webhook hosts
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")

    def finished(model_name: str, **fields) -> Job:
        job = Job(
            team=alice.personal_team, created_by=alice, prompt="a red circle", seed=1, width=64, height=48,
            num_frames=9, fps=8, steps=4, guidance=5.0, model_name=model_name, pool="cpu", **fields,
        )
        job.video.save("source.mp4", ContentFile(b"mp4"), save=False)
        job.poster.save("source.jpg", ContentFile(b"jpg"), save=False)
        job.state = Job.State.SUCCEEDED
        job.save()
        return job

    return World(
        secret=secret,
        browser=client_for(alice),
        remixable=finished("framecast-tiny"),
        not_remixable=finished("framecast-toy", share_token="s" * 43),
    )


@dataclass
class World:
    secret: str
    browser: Client
    remixable: Job
    not_remixable: Job

    @property
    def remixable_video(self) -> str:
        """The remixable job as the OpenAI layer names it."""
        return video_id(self.remixable.id)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Job, IdempotencyRecord, CreditEntry, Team, ApiKey)}


# ---- the endpoints, each with the shape of its errors ------------------------------------

def api_json(path: str, *, idempotent: bool = False):
    """POST to an API `path` (formatted with the world) as JSON: a dict is encoded (lone
    surrogates as "\\ud800" escapes, as a fuzzer's client sends them), a str sent as it is."""
    def send(world: World, body):
        headers = {"HTTP_IDEMPOTENCY_KEY": "fuzz-1"} if idempotent else {}
        return Client().post(path.format(world=world), body if isinstance(body, str) else json.dumps(body),
                             content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {world.secret}", **headers)
    return send


def api_form(path: str, content_type: str = "application/x-www-form-urlencoded"):
    def send(world: World, body: dict):
        if content_type.startswith("multipart"):
            return Client().post(path.format(world=world), body, HTTP_AUTHORIZATION=f"Bearer {world.secret}")
        from urllib.parse import urlencode

        return Client().post(path.format(world=world), urlencode(body), content_type=content_type,
                             HTTP_AUTHORIZATION=f"Bearer {world.secret}")
    return send


def page_post(path: str):
    def send(world: World, body: dict):
        return world.browser.post(path.format(world=world), body)
    return send


def page_get(path: str):
    def send(world: World, query: dict):
        return world.browser.get(path.format(world=world), query)
    return send


CREATE = "/api/v1/videos"
REMIX = "/api/v1/videos/{world.remixable.id}/remix"
VERIFY = "/api/v1/verify"
OPENAI_CREATE = "/openai/v1/videos"
OPENAI_REMIX = "/openai/v1/videos/{world.remixable_video}/remix"


def assert_native_error(response, status: int | tuple = (400,), field: str | None = None):
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.content[:300]
    error = response.json()["error"]
    assert {"type", "message", "request_id"} <= set(error), error
    if field is not None:
        assert error["field"] == field, error
    return error


def assert_openai_error(response, status: int | tuple = (400,), param: str | None = None):
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.content[:300]
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    if param is not None:
        assert error["param"] == param, error
    return error


def assert_html_error(response, status: int | tuple = (400,)):
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


# ---- 5. NUL characters --------------------------------------------------------------------

NUL = "\u0000"

NUL_IN_JSON = [
    # (endpoint, body, field the error names)
    (api_json(CREATE), {"prompt": f"a{NUL}b"}, "prompt"),
    (api_json(CREATE), {"prompt": "a cat", "negative_prompt": NUL}, "negative_prompt"),
    (api_json(CREATE), {"prompt": "a cat", "model": NUL}, "model"),
    (api_json(CREATE), {"prompt": "a cat", "metadata": {NUL: "x"}}, "metadata"),
    (api_json(CREATE), {"prompt": "a cat", "metadata": {"order": f"1{NUL}"}}, "metadata.order"),
    (api_json(CREATE), {"prompt": "a cat", "metadata": {"tags": ["a", NUL]}}, "metadata.tags[1]"),
    (api_json(CREATE), {"prompt": "a cat", "webhook_url": f"https://example.com/{NUL}"}, "webhook_url"),
    (api_json(CREATE, idempotent=True), {"prompt": "a cat", "metadata": {"k": NUL}}, "metadata.k"),
    (api_json(REMIX), {"prompt": f"a{NUL}"}, "prompt"),
    (api_json(REMIX, idempotent=True), {"prompt": f"a{NUL}"}, "prompt"),
    (api_json(VERIFY), {"share_url": f"https://framecast.example/s/{NUL}/"}, "share_url"),
]


@pytest.mark.parametrize("send, body, field", NUL_IN_JSON)
def test_a_nul_in_a_native_api_json_body_is_a_400_naming_the_field(world, send, body, field):
    before = counts()
    error = assert_native_error(send(world, body), 400, field)
    assert "NUL" in error["message"]
    assert counts() == before


NUL_IN_FORMS = [
    (api_form(CREATE), {"prompt": f"a{NUL}b"}, "prompt"),
    (api_form(CREATE), {"prompt": "a cat", "webhook_url": NUL}, "webhook_url"),
    (api_form(VERIFY, "multipart/form-data"), {"share_url": f"/s/{NUL}/"}, "share_url"),
]


@pytest.mark.parametrize("send, body, field", NUL_IN_FORMS)
def test_a_nul_in_a_native_api_form_body_is_a_400_naming_the_field(world, send, body, field):
    before = counts()
    assert_native_error(send(world, body), 400, field)
    assert counts() == before


NUL_IN_OPENAI = [
    (api_json(OPENAI_CREATE), {"prompt": f"a{NUL}"}, "prompt"),
    (api_json(OPENAI_CREATE), {"prompt": "a", "model": NUL}, "model"),
    (api_json(OPENAI_CREATE), {"prompt": "a", "size": NUL}, "size"),
    (api_json(OPENAI_CREATE, idempotent=True), {"prompt": f"a{NUL}"}, "prompt"),
    (api_form(OPENAI_CREATE, "multipart/form-data"), {"prompt": f"a{NUL}"}, "prompt"),
    (api_json(OPENAI_REMIX), {"prompt": f"a{NUL}"}, "prompt"),
]


@pytest.mark.parametrize("send, body, param", NUL_IN_OPENAI)
def test_a_nul_in_an_openai_body_is_a_400_in_openais_shape(world, send, body, param):
    before = counts()
    assert_openai_error(send(world, body), 400, param)
    assert counts() == before


NUL_IN_PAGES = [
    # (endpoint, form, a word of the page's message)
    (page_post("/"), {"prompt": f"a{NUL}b"}, "NUL"),
    (page_post("/teams/"), {"name": f"Acme{NUL}"}, "NUL"),
    (page_post("/team/rename/"), {"name": f"Acme{NUL}"}, "NUL"),
    (page_post("/team/keys/"), {"name": f"ci{NUL}"}, "NUL"),
    (page_post("/s/" + "s" * 43 + "/report/"), {"reason": "other", "note": NUL}, "NUL"),
    (page_post("/verify"), {"share_url": f"/s/{NUL}/"}, "NUL"),
    (page_get("/gallery/"), {"model": NUL}, "NUL"),
]


@pytest.mark.parametrize("send, body, words", NUL_IN_PAGES)
def test_a_nul_in_a_page_form_or_query_is_a_400_page(world, send, body, words):
    before = counts()
    page = assert_html_error(send(world, body), 400)
    assert words in page
    assert counts() == before


@pytest.mark.parametrize(
    "path", ["/s/%00/", "/s/%00/video.mp4", "/s/%00/poster.jpg", "/s/%00/report/", "/s/a.b/", "/s/%20/"]
)
def test_a_share_link_outside_the_token_alphabet_is_a_404_page_for_anyone(db, path):
    assert_html_error(Client().get(path), 404)


# ---- 6. Lone UTF-16 surrogates --------------------------------------------------------------

SURROGATE = "\ud800"

SURROGATES = [
    (api_json(CREATE), {"prompt": f"a{SURROGATE}"}, assert_native_error, "prompt"),
    (api_json(CREATE), {"prompt": "a", "negative_prompt": SURROGATE}, assert_native_error, "negative_prompt"),
    (api_json(CREATE), {"prompt": "a", "metadata": {"k": SURROGATE}}, assert_native_error, "metadata.k"),
    (api_json(CREATE), {"prompt": "a", "metadata": {SURROGATE: 1}}, assert_native_error, "metadata"),
    (api_json(REMIX), {"prompt": SURROGATE}, assert_native_error, "prompt"),
    (api_json(VERIFY), {"share_url": SURROGATE}, assert_native_error, "share_url"),
    (api_json(OPENAI_CREATE), {"prompt": f"a{SURROGATE}"}, assert_openai_error, "prompt"),
    (api_json(OPENAI_REMIX), {"prompt": SURROGATE}, assert_openai_error, "prompt"),
]


@pytest.mark.parametrize("send, body, check, field", SURROGATES)
def test_a_lone_surrogate_is_a_400_naming_the_field(world, send, body, check, field):
    before = counts()
    error = check(send(world, body), 400, field)
    assert "surrogate" in error["message"]
    assert counts() == before


# ---- 7. Deep and huge JSON ------------------------------------------------------------------

DEEP = "[" * 1000 + "]" * 1000
JSON_ENDPOINTS = [
    (api_json(CREATE), assert_native_error),
    (api_json(REMIX), assert_native_error),
    (api_json(VERIFY), assert_native_error),
    (api_json(OPENAI_CREATE), assert_openai_error),
    (api_json(OPENAI_REMIX), assert_openai_error),
]


@pytest.mark.parametrize("send, check", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body, words, field",
    [
        # Too deep for Python's json to parse at all: no field to name, the body is at fault.
        ('{"prompt": "a cat", "metadata": ' + DEEP + "}", "nested too deeply", None),
        ('{"prompt": "a cat", "metadata": ' + "[" * 12 + "]" * 12 + "}", "nested too deeply", "metadata" + "[0]" * 9),
        ('{"prompt": "a cat", "metadata": {"ids": ' + json.dumps(list(range(2000))) + "}}", "more than 1000 values",
         "metadata"),
    ],
    ids=["1000-deep", "12-deep", "2000-values"],
)
def test_deep_or_huge_json_is_a_400_saying_the_bound(world, send, check, body, words, field):
    before = counts()
    error = check(send(world, body), 400)
    assert words in error["message"]
    assert error.get("field", error.get("param")) == field
    assert counts() == before


def test_metadata_may_nest_a_few_levels_and_is_returned_as_given(world):
    metadata = {"order": {"lines": [{"sku": "a-1", "qty": 2}]}, "note": "ok"}
    response = api_json(CREATE)(world, {"prompt": "a red circle", "metadata": metadata})
    assert response.status_code == 201, response.content
    assert response.json()["metadata"] == metadata


# ---- 8. API key expiry ------------------------------------------------------------------------

@pytest.mark.parametrize("days", [str(10**12), "3651", "0", "²", "1" * 5000])
def test_an_api_key_expiry_beyond_ten_years_is_a_400_page(world, days):
    before = counts()
    page = assert_html_error(world.browser.post("/team/keys/", {"name": "ci", "expires_in_days": days}), 400)
    assert "from 1 to 3650" in page
    assert counts() == before


# ---- 9. Bodies over Django's 2.5 MB limit -------------------------------------------------------

BIG = json.dumps({"prompt": "a cat", "metadata": {"blob": "x" * (3 * 2**20)}})

OVERSIZED = [
    (api_json(CREATE), BIG, assert_native_error),
    (api_json(REMIX), BIG, assert_native_error),
    (api_json(VERIFY), BIG, assert_native_error),
    (api_json(OPENAI_CREATE), BIG, assert_openai_error),
    (api_json(OPENAI_REMIX), BIG, assert_openai_error),
    (api_form(CREATE), {"prompt": "x" * (3 * 2**20)}, assert_native_error),
    (api_form(OPENAI_CREATE, "multipart/form-data"), {"prompt": "x" * (3 * 2**20)}, assert_openai_error),
]


@pytest.mark.parametrize("send, body, check", OVERSIZED)
def test_a_body_over_the_limit_is_a_413_naming_the_limit(world, send, body, check):
    before = counts()
    error = check(send(world, body), 413)
    assert "2.5 MB" in error["message"]
    assert counts() == before


def test_an_oversized_stripe_webhook_is_a_json_413(world):
    response = Client().post("/billing/stripe/webhook/", BIG, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=x")
    assert response.status_code == 413
    assert "2.5 MB" in response.json()["error"]


# ---- 10. Prompts of only invisible characters ----------------------------------------------------

INVISIBLE = ["\u200b\u200b", "\u200b \u2060\ufeff\u00a0", "\u3164", "\u202e\u200d"]

PROMPT_ENDPOINTS = [
    (api_json(CREATE), assert_native_error),
    (api_form(CREATE), assert_native_error),
    (api_json(REMIX), assert_native_error),
    (api_json(OPENAI_CREATE), assert_openai_error),
    (api_json(OPENAI_REMIX), assert_openai_error),
]


@pytest.mark.parametrize("prompt", INVISIBLE, ids=["zwsp", "mixed", "hangul-filler", "bidi"])
@pytest.mark.parametrize("send, check", PROMPT_ENDPOINTS)
def test_a_prompt_with_no_visible_character_is_refused_like_an_empty_one(world, send, check, prompt):
    before = counts()
    error = check(send(world, {"prompt": prompt}), 400, "prompt")
    assert "required" in error["message"]
    assert counts() == before


@pytest.mark.parametrize("prompt", INVISIBLE, ids=["zwsp", "mixed", "hangul-filler", "bidi"])
def test_the_studio_refuses_an_invisible_prompt_on_its_field(world, prompt):
    before = counts()
    page = assert_html_error(world.browser.post("/", {"prompt": prompt}), 400)
    assert "Prompt is required" in page
    assert counts() == before


# ---- 11. The schema says what the server checks ----------------------------------------------------

@pytest.fixture
def schema(client):
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def request_schema(schema, path, method="post", media="application/json"):
    body = schema["paths"][path][method]["requestBody"]["content"]
    ref = body[media]["schema"]["$ref"].rsplit("/", 1)[-1]
    return body, schema["components"]["schemas"][ref]


def test_the_schema_states_formats_enums_and_conditional_rules(schema):
    create_body, create = request_schema(schema, "/api/v1/videos")
    # JSON only: a form body cannot carry null or the metadata object the schema describes.
    assert set(create_body) == {"application/json"}
    fields = create["properties"]
    assert fields["webhook_url"]["oneOf"][0] == {"type": "string", "format": "uri", "pattern": "^https?://"}
    assert schema["components"]["schemas"]["SpeedEnum"]["enum"] == ["standard", "fast", "turbo"]
    assert "visible character" in fields["prompt"]["description"]
    assert fields["prompt"]["pattern"]
    assert "levels" in fields["metadata"]["description"] and "4096" in fields["metadata"]["description"]
    remix_body, remix = request_schema(schema, "/api/v1/videos/{job_id}/remix")
    assert set(remix_body) == {"application/json"}
    assert "remix: true" in schema["paths"]["/api/v1/videos/{job_id}/remix"]["post"]["description"]
    _, link = request_schema(schema, "/api/v1/verify")
    assert link["properties"]["share_url"]["format"] == "uri-reference"
    assert "/s/" in link["properties"]["share_url"]["pattern"]


SCHEMA_VIOLATIONS = [
    (api_json(CREATE), {"prompt": "a red circle", "metadata": ""}, "metadata"),
    (api_json(CREATE), {"prompt": "a red circle", "metadata": []}, "metadata"),
    (api_form(CREATE), {"prompt": "0", "metadata": ""}, "metadata"),
    (api_json(CREATE), {"prompt": "a red circle", "webhook_url": {}}, "webhook_url"),
    (api_json(CREATE), {"prompt": "a red circle", "webhook_url": 0}, "webhook_url"),
    (api_json(CREATE), {"prompt": "a red circle", "webhook_url": "https://Ï"}, "webhook_url"),
    (api_json(CREATE), {"prompt": "a red circle", "webhook_url": "https://a b.example/"}, "webhook_url"),
    (api_json(CREATE), {"prompt": "a red circle", "webhook_url": "https://example.com:99999/"}, "webhook_url"),
    (api_json(VERIFY), {"share_url": "00"}, "share_url"),
    (api_json(VERIFY), {"share_url": "https://example.com/s/" + "a" * 43 + "/poster.jpg"}, "share_url"),
]


@pytest.mark.parametrize("send, body, field", SCHEMA_VIOLATIONS)
def test_what_the_schema_says_is_invalid_is_refused(world, send, body, field):
    before = counts()
    assert_native_error(send(world, body), 400, field)
    assert counts() == before


def test_a_remix_of_a_model_that_cannot_remix_names_the_rule(world):
    response = api_json("/api/v1/videos/{world.not_remixable.id}/remix")(world, {"prompt": "a blue square"})
    error = assert_native_error(response, 400, "model")
    assert error["type"] == "remix_unsupported"


# ---- Numbers in other scripts' digits (str.isdigit() takes "²", int() does not) -------------------

def test_a_digit_that_is_not_ascii_is_a_400_not_a_500(world):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {world.secret}"}
    assert_native_error(Client().get("/api/v1/videos", {"limit": "²"}, **auth), 400, "limit")
    assert_openai_error(Client().get("/openai/v1/videos", {"limit": "²"}, **auth), 400, "limit")
    before = counts()
    waited = api_json(CREATE)(world, {"prompt": "a red circle"})  # control: no Prefer
    assert waited.status_code == 201
    odd = Client().post(CREATE, json.dumps({"prompt": "a red circle"}), content_type="application/json",
                        HTTP_PREFER="wait=²", **auth)
    assert odd.status_code == 201  # an unreadable wait is no wait, as any other bad Prefer value
    assert counts()["Job"] == before["Job"] + 2
