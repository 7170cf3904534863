"""Provider plumbing for the video stages, and the fake OpenAI/Replicate HTTP services the other
video tests use.

The fakes are ``httpx.MockTransport`` handlers behind the real SDK clients
(``openai.OpenAI(http_client=httpx.Client(transport=...))`` and
``replicate.Client(transport=...)``), so requests are built by the SDKs exactly as in
production and checked here against the providers' documented APIs:
- OpenAI: ``POST /v1/audio/transcriptions`` (multipart: model, file, response_format=verbose_json,
  timestamp_granularities[]=word) and ``POST /v1/chat/completions`` (model, messages,
  response_format json_schema), ``Authorization: Bearer <key>``.
- Replicate: ``POST /v1/predictions`` ({version, input}, ``Prefer: wait=N``),
  ``GET /v1/predictions/{id}``, ``POST /v1/predictions/{id}/cancel``, output files fetched from
  their URLs; ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import email.parser
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
import replicate

from functions.video import providers
from shared.config import reset_settings

OPENAI_KEY = "sk-test-video"
REPLICATE_TOKEN = "r8_test_video"


def multipart_fields(request: httpx.Request) -> dict[str, Any]:
    """Form fields of a multipart request: name -> str, or (filename, bytes) for files."""
    raw = (
        b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
    )
    msg = email.parser.BytesParser().parsebytes(raw)
    out: dict[str, Any] = {}
    for part in msg.get_payload():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        body = part.get_payload(decode=True)
        out[name] = (filename, body) if filename else body.decode()
    return out


class FakeOpenAI:
    """api.openai.com: per endpoint path, a script of answers (the last one repeats).

    An answer is an ``httpx.Response``, an exception to raise (e.g. ``httpx.ReadTimeout``),
    or a callable ``request -> Response``.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: dict[str, list[Any]] = {}

    def on(self, path: str, *answers: Any) -> FakeOpenAI:
        self.script[path] = list(answers)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        queue = self.script.get(request.url.path)
        if not queue:
            return httpx.Response(
                404, json={"error": {"message": "no such route", "type": "invalid_request_error"}}
            )
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=OPENAI_KEY,
            max_retries=0,
            http_client=httpx.Client(transport=httpx.MockTransport(self.handler)),
        )

    def to(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


def chat_answer(
    content: str, prompt_tokens: int = 1200, completion_tokens: int = 900
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content, "refusal": None},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )


def transcription_answer(
    words: list[tuple[str, float, float]], duration_s: float
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "task": "transcribe",
            "language": "english",
            "duration": duration_s,
            "text": " ".join(w for w, _, _ in words),
            "words": [{"word": w, "start": a, "end": b} for w, a, b in words],
        },
    )


class FakeReplicate:
    """api.replicate.com: predictions that succeed, fail or hang, and their output files.

    ``behave(version, input) -> list of statuses`` decides how each new prediction goes: the
    create call answers with the first status, each GET with the next (the last repeats).
    ``outputs[version]`` (read when the prediction is created, so ``behave`` may set it) is its
    output once succeeded; ``files[url]`` the bytes served at an output URL.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.behave: Callable[[str, dict], list[str]] = lambda v, i: ["succeeded"]
        self.outputs: dict[str, Any] = {}
        self.files: dict[str, bytes] = {}
        self.create_errors: list[int] = []  # HTTP statuses to answer creates with, in order
        self.predict_time_s = 4.0
        self._ids = itertools.count(1)
        self._state: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # clips are created from parallel workers

    def _prediction(self, pid: str) -> dict[str, Any]:
        st = self._state[pid]
        status = st["statuses"][min(st["polls"], len(st["statuses"]) - 1)]
        if st.get("canceled"):
            status = "canceled"
        done = status == "succeeded"
        return {
            "id": pid,
            "model": "owner/model",
            "version": st["version"],
            "status": status,
            "input": st["input"],
            "output": st["output"] if done else None,
            "logs": "",
            "error": "CUDA out of memory" if status == "failed" else None,
            "metrics": {"predict_time": self.predict_time_s}
            if status in ("succeeded", "failed")
            else {},
            "created_at": "2026-11-22T00:00:00Z",
            "started_at": None,
            "completed_at": None,
            "urls": {
                "get": f"https://api.replicate.com/v1/predictions/{pid}",
                "cancel": f"https://api.replicate.com/v1/predictions/{pid}/cancel",
            },
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        path = request.url.path
        if request.url.host != "api.replicate.com":
            if str(request.url) in self.files:
                return httpx.Response(200, content=self.files[str(request.url)])
            return httpx.Response(404)
        if request.method == "POST" and path == "/v1/predictions":
            if self.create_errors:
                code = self.create_errors.pop(0)
                return httpx.Response(
                    code, json={"title": "error", "detail": "boom", "status": code}
                )
            body = json.loads(request.content)
            pid = f"p{next(self._ids)}"
            statuses = self.behave(body["version"], body["input"])
            self._state[pid] = {
                "version": body["version"],
                "input": body["input"],
                "polls": 0,
                "statuses": statuses,
                "output": self.outputs.get(body["version"]),
            }
            return httpx.Response(201, json=self._prediction(pid))
        if path.startswith("/v1/predictions/") and path.endswith("/cancel"):
            pid = path.split("/")[3]
            self._state[pid]["canceled"] = True
            return httpx.Response(200, json=self._prediction(pid))
        if request.method == "GET" and path.startswith("/v1/predictions/"):
            pid = path.split("/")[3]
            self._state[pid]["polls"] += 1
            return httpx.Response(200, json=self._prediction(pid))
        return httpx.Response(404, json={"detail": "not found"})

    def client(self) -> replicate.Client:
        return replicate.Client(
            api_token=REPLICATE_TOKEN, transport=httpx.MockTransport(self.handler)
        )

    def creates(self, version: str | None = None) -> list[dict[str, Any]]:
        out = []
        for r in self.requests:
            if r.method == "POST" and r.url.path == "/v1/predictions":
                body = json.loads(r.content)
                if version is None or body["version"] == version:
                    out.append({"body": body, "headers": r.headers})
        return out

    def cancels(self) -> list[str]:
        return [r.url.path for r in self.requests if r.url.path.endswith("/cancel")]


def record_sleeps(monkeypatch) -> list[float]:
    """Backoffs and polls are recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(providers, "sleep", waited.append)
    return waited


def set_keys(monkeypatch) -> None:
    """Settings with both provider keys set (monkeypatch undoes the env; call reset_settings)."""
    monkeypatch.setenv("SOUNDSTAGE_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("SOUNDSTAGE_REPLICATE_API_TOKEN", REPLICATE_TOKEN)
    reset_settings()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    return record_sleeps(monkeypatch)


# -- the plumbing itself ------------------------------------------------------------------------


def test_no_keys_means_no_clients():
    assert providers.openai_client("", 60) is None
    assert providers.replicate_client("", 30) is None


def test_clients_leave_retries_to_our_policy():
    client = providers.openai_client(OPENAI_KEY, 60.0)
    assert client.max_retries == 0  # tenacity owns attempts: 3, not 3 x the SDK's 2
    assert client.timeout == 60.0


def test_replicate_client_connects_within_10_s_and_reads_within_the_policy():
    timeout = providers.replicate_client(REPLICATE_TOKEN, 120.0)._client.timeout
    assert (timeout.connect, timeout.read) == (10.0, 120.0)


def test_transient_errors_are_retried_and_client_errors_are_not():
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    assert providers.is_transient(openai.APITimeoutError(request=req))
    assert providers.is_transient(
        openai.InternalServerError("x", response=httpx.Response(503, request=req), body=None)
    )
    assert providers.is_transient(
        openai.RateLimitError("x", response=httpx.Response(429, request=req), body=None)
    )
    assert not providers.is_transient(
        openai.AuthenticationError("x", response=httpx.Response(401, request=req), body=None)
    )
    assert providers.is_transient(replicate.exceptions.ReplicateError(status=502))
    assert not providers.is_transient(replicate.exceptions.ReplicateError(status=422))
    assert not providers.is_transient(ValueError("bug"))
    # The HTTP stack's own timeouts and connection errors (the Replicate SDK lets them through).
    assert providers.is_transient(httpx.ReadTimeout("read timed out", request=req))
    assert providers.is_transient(httpx.ConnectError("refused", request=req))
    assert not providers.is_transient(
        httpx.HTTPStatusError("x", request=req, response=httpx.Response(404, request=req))
    )


def test_retry_policy_backs_off_2_then_4_seconds(sleeps):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise providers.ProviderTimeout("slow")
        return "ok"

    assert providers.WHISPER.retrying()(flaky) == "ok"
    assert sleeps == [2.0, 4.0]


def test_prediction_is_created_with_wait_header_then_polled(sleeps):
    fake = FakeReplicate()
    fake.behave = lambda v, i: ["starting", "processing", "succeeded"]
    fake.outputs["v1"] = ["https://replicate.delivery/x/out.png"]
    result = providers.run_prediction(fake.client(), "v1", {"prompt": "p"}, timeout_s=30.0)
    create = fake.creates()[0]
    assert create["body"] == {"version": "v1", "input": {"prompt": "p"}}
    assert create["headers"]["authorization"] == f"Bearer {REPLICATE_TOKEN}"
    assert create["headers"]["prefer"] == "wait=29"
    polls = [r for r in fake.requests if r.method == "GET"]
    assert [r.url.path for r in polls] == ["/v1/predictions/p1", "/v1/predictions/p1"]
    assert result.output == ["https://replicate.delivery/x/out.png"]
    assert result.predict_time_s == 4.0


def test_a_prediction_past_its_deadline_is_canceled(monkeypatch):
    fake = FakeReplicate()
    fake.behave = lambda v, i: ["processing"]  # never finishes
    billed: list[float] = []
    monkeypatch.setattr(providers, "sleep", lambda s: __import__("time").sleep(0.01))
    with pytest.raises(providers.ProviderTimeout):
        providers.run_prediction(fake.client(), "v1", {}, timeout_s=0.2, billed_s=billed)
    assert fake.cancels() == ["/v1/predictions/p1/cancel"]
    assert len(billed) == 1 and billed[0] >= 0.2  # the canceled run is still paid for


def test_a_failed_prediction_raises_and_is_billed(sleeps):
    fake = FakeReplicate()
    fake.behave = lambda v, i: ["processing", "failed"]
    billed: list[float] = []
    with pytest.raises(providers.ProviderFailed, match="CUDA out of memory"):
        providers.run_prediction(fake.client(), "v1", {}, timeout_s=30.0, billed_s=billed)
    assert billed == [4.0]
