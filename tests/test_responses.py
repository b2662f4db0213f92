from __future__ import annotations

from typing import Any

import pytest

from gateway.models import Job, JobState
from gateway.triggers.results import render_job_result


def finished(result: Any = None, *, state: JobState = JobState.SUCCEEDED, error: dict | None = None) -> Job:
    return Job(id="j", engine="e", script="s", state=state, result=result, error=error)


def test_plain_result_is_json() -> None:
    response = render_job_result(finished({"a": 1}))
    assert response.status == 200 and response.content_type == "application/json"
    assert response.body == b'{"a":1}'


def test_status_and_content_type_keys() -> None:
    response = render_job_result(
        finished({"windmill_status_code": 202, "windmill_content_type": "text/html", "result": "<b>hi</b>"})
    )
    assert response.status == 202
    assert response.headers["Content-Type"] == "text/html"
    assert response.body == b"<b>hi</b>"


def test_without_result_key_the_rest_of_the_object_is_the_body() -> None:
    response = render_job_result(finished({"windmill_status_code": 409, "reason": "busy"}))
    assert response.status == 409 and response.body == b'{"reason":"busy"}'


def test_json_content_type_keeps_a_string_json_encoded() -> None:
    response = render_job_result(finished({"windmill_content_type": "application/json", "result": "x"}))
    assert response.body == b'"x"'


@pytest.mark.parametrize("bad", [99, 150, 600, "200", 200.0, None, False])
def test_invalid_status_is_a_500_explaining_why(bad: object) -> None:
    response = render_job_result(finished({"windmill_status_code": bad}))
    assert response.status == 500
    assert b"invalid_status_code" in response.body and b"windmill_status_code" in response.body


def test_invalid_content_type_is_a_500() -> None:
    response = render_job_result(finished({"windmill_content_type": 5}))
    assert response.status == 500 and b"invalid_content_type" in response.body


def test_failure_answers_200_or_the_routes_error_status() -> None:
    job = finished(state=JobState.FAILED, error={"name": "ValueError", "message": "m", "stack": "s"})
    assert render_job_result(job).status == 200
    assert render_job_result(job).body == b'{"error":{"name":"ValueError","message":"m","stack":"s"}}'
    assert render_job_result(job, error_status=500).status == 500


def test_windmill_headers_set_response_headers_and_leave_the_body() -> None:
    result = {
        "windmill_headers": {"Location": "/next", "X-Trace": "t1"},
        "windmill_status_code": 302,
        "ok": 1,
    }
    response = render_job_result(finished(result))
    assert response.status == 302
    assert response.headers["Location"] == "/next" and response.headers["X-Trace"] == "t1"
    assert response.body == b'{"ok":1}'
    typed = render_job_result(finished({"windmill_headers": {"Content-Type": "text/csv"}, "result": "a,b"}))
    assert typed.headers["Content-Type"] == "text/csv" and typed.body == b"a,b"


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Content-Length": "1"}, "owns that header"),
        ({"Transfer-Encoding": "chunked"}, "owns that header"),
        ({"Connection": "close"}, "owns that header"),
        ({"X-Evil": "a\r\nSet-Cookie: x=1"}, "without CR or LF"),
        ({"Bad Name": "x"}, "invalid header name"),
        ({"Set-Cookie": "session=1"}, "allow_set_cookie"),
        ({"Content-Security-Policy": "default-src *"}, "allow_active_content"),
        (["Location"], "must be an object"),
    ],
)
def test_headers_that_would_break_the_answer_or_its_protections_are_refused(
    headers: Any, problem: str
) -> None:
    response = render_job_result(finished({"windmill_headers": headers, "result": "x"}))
    assert response.status == 500
    assert problem in response.text  # type: ignore[operator]
    assert "Set-Cookie" not in response.headers


def test_a_route_may_let_a_result_set_a_cookie() -> None:
    response = render_job_result(
        finished({"windmill_headers": {"Set-Cookie": "a=1; HttpOnly"}}), allow_set_cookie=True
    )
    assert response.status == 200 and response.headers["Set-Cookie"] == "a=1; HttpOnly"
