"""CEL expressions and ``${…}`` templates: types kept, text interpolated, every bound refused clearly."""

from __future__ import annotations

import pytest

from gateway.rules.expressions import (
    MAX_EVALUATION_SECONDS,
    MAX_INPUT_BYTES,
    MAX_LENGTH,
    MAX_LIST_ITEMS,
    MAX_NODES,
    Expression,
    ExpressionError,
    Template,
)

NAMES = ("flow_input", "results", "steps")
VALUES = {
    "flow_input": {"n": 2, "repo": "hookgate", "tags": ["a", "b"]},
    "results": {"build": {"count": 3, "artifacts": [{"name": "x", "size": 10}, {"name": "y", "size": 0}]}},
    "steps": {"build": {"state": "succeeded"}},
}


def test_an_expression_reads_the_flow_input_results_and_step_states() -> None:
    expression = Expression.compile(
        "results.build.count + 1 > flow_input.n && steps.build.state == 'succeeded'", names=NAMES
    )
    assert expression.evaluate(VALUES) is True
    sizes = Expression.compile("results.build.artifacts.filter(a, a.size > 0).map(a, a.name)", names=NAMES)
    assert sizes.evaluate(VALUES) == ["x"]


def test_a_whole_expression_keeps_its_type_and_mixed_text_interpolates() -> None:
    template = Template(
        {
            "count": "${results.build.count}",
            "tags": "${flow_input.tags}",
            "title": "release ${flow_input.repo} (${results.build.count} builds, tags ${flow_input.tags})",
            "map": "${ {'repo': flow_input.repo} }",
            "plain": "no expression here",
            "nested": ["${flow_input.n * 2}", 7],
        },
        names=NAMES,
    )
    assert template.render(VALUES) == {
        "count": 3,
        "tags": ["a", "b"],
        "title": 'release hookgate (3 builds, tags ["a","b"])',
        "map": {"repo": "hookgate"},
        "plain": "no expression here",
        "nested": [4, 7],
    }
    assert len(template.expressions) == 7


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("results.build.", "syntax error at 1:15"),
        ("result.build", "unknown name 'result' (known: flow_input, results, steps)"),
        ("x" * (MAX_LENGTH + 1), f"more than {MAX_LENGTH}"),
        (" + ".join(["1"] * (MAX_NODES // 2 + 1)), f"more than {MAX_NODES}"),
        (
            "flow_input.tags.map(a, flow_input.tags.filter(b, b == a))",
            "a comprehension (filter) inside another",
        ),
    ],
)
def test_what_cannot_be_compiled_or_exceeds_a_bound_is_refused_at_load(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Expression.compile(source, names=NAMES)


def test_a_template_refuses_a_bad_expression_and_an_unclosed_one() -> None:
    with pytest.raises(ExpressionError, match="unknown name 'nope'"):
        Template({"a": ["ok", "${nope.x}"]}, names=NAMES)
    with pytest.raises(ExpressionError, match="never closed"):
        Template("${flow_input.n", names=NAMES)
    with pytest.raises(ExpressionError, match="empty"):
        Template("${ }", names=NAMES)


def test_evaluation_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError, match=r"'flow_input.n / 0' failed: division by zero"):
        Expression.compile("flow_input.n / 0", names=NAMES).evaluate(VALUES)
    with pytest.raises(ExpressionError, match=r"'results\.missing\.count' failed"):
        Expression.compile("results.missing.count", names=NAMES).evaluate(VALUES)


def test_values_beyond_the_bounds_are_refused_before_evaluating() -> None:
    expression = Expression.compile("size(flow_input.items)", names=NAMES)
    assert expression.evaluate({"flow_input": {"items": list(range(MAX_LIST_ITEMS))}}) == MAX_LIST_ITEMS
    with pytest.raises(ExpressionError, match=f"more than {MAX_LIST_ITEMS}"):
        expression.evaluate({"flow_input": {"items": [[0] * (MAX_LIST_ITEMS + 1)]}})
    with pytest.raises(ExpressionError, match=f"more than {MAX_INPUT_BYTES}"):
        expression.evaluate({"flow_input": {"items": ["x" * MAX_INPUT_BYTES]}})


def test_an_evaluation_past_the_time_limit_is_refused() -> None:
    ticks = iter([0.0, MAX_EVALUATION_SECONDS + 0.01])
    expression = Expression.compile("flow_input.n + 1", names=NAMES)
    with pytest.raises(ExpressionError, match="its result is not used"):
        expression.evaluate(VALUES, clock=lambda: next(ticks))


@pytest.mark.serial  # it times this machine: other workers' load on the same cores is not its to measure
def test_the_worst_case_the_bounds_allow_stays_under_the_time_limit() -> None:
    """A comprehension over the longest list allowed, with the biggest values allowed."""
    import time

    expression = Expression.compile("flow_input.items.map(a, a * 2).filter(a, a > 10).size()", names=NAMES)
    values = {"flow_input": {"items": list(range(MAX_LIST_ITEMS))}}
    started = time.perf_counter()
    assert expression.evaluate(values) == MAX_LIST_ITEMS - 6
    assert time.perf_counter() - started < MAX_EVALUATION_SECONDS
