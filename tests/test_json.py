"""Tests for nnscratch._json: strict JSON out, NaN and infinity named instead of written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch._json import NonFiniteJSONError, find_non_finite, to_json


@pytest.mark.parametrize(
    ("document", "place"),
    [
        (float("nan"), "the value"),
        ({"accuracy": float("inf")}, "accuracy"),
        ([{"input": "a.png", "probabilities": {"7": float("nan")}}], "[0].probabilities.7"),
        ({"cost_history": [{"cost": 0.5}, {"cost": -np.inf}]}, "cost_history[1].cost"),
        ({"x": np.float32("nan")}, "x"),
        ({"rows": np.array([[0.0, np.nan]])}, "rows[0][1]"),
    ],
)
def test_non_finite_values_are_refused_by_name(document, place):
    with pytest.raises(NonFiniteJSONError) as caught:
        to_json(document, what="metrics.json")
    message = str(caught.value)
    assert message.startswith(f"metrics.json: {place} is ")
    assert "JSON cannot represent, so nothing was written" in message
    assert "nnscratch info" in message  # the fix


def test_the_fix_can_be_given():
    with pytest.raises(NonFiniteJSONError, match="replace NaN by None"):
        to_json({"a": float("nan")}, fix="replace NaN by None.")


def test_numpy_values_become_plain_json():
    text = to_json({"n": np.int64(3), "p": np.float32(0.5), "m": np.arange(3)}, indent=None)
    assert json.loads(text) == {"n": 3, "p": 0.5, "m": [0, 1, 2]}


def test_other_types_are_a_type_error():
    with pytest.raises(TypeError, match="object"):
        to_json({"when": object()})


def test_circular_references_keep_jsons_message():
    document: dict = {}
    document["self"] = document
    with pytest.raises(ValueError, match="Circular reference"):
        to_json(document)


_FINITE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(_FINITE)
def test_finite_documents_round_trip_through_a_strict_reader(document):
    def refuse(name: str) -> float:
        raise AssertionError(f"{name} written")

    assert json.loads(to_json(document), parse_constant=refuse) == document
    assert find_non_finite(document) is None
