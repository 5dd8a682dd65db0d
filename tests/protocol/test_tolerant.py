"""Per-field tolerant validation: one odd field is null, the rest of the answer stands."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from kktmon.protocol.errors import MalformedAnswerError
from kktmon.protocol.tolerant import Version, validate_tolerant, version_text


class Inner(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: int
    label: str | None = None


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: int = Field(alias="Status")
    count: int = Field(0, alias="Count")
    serial: str | None = Field(None, alias="Serial")
    version: Version | None = Field(None, alias="Version")
    inner: Inner | None = Field(None, alias="Inner")
    items: list[Inner] = Field(default_factory=list, alias="Items")


def test_a_valid_answer_drops_nothing() -> None:
    answer, dropped = validate_tolerant(Answer, {"Status": 0, "Serial": "0042"}, what="t")
    assert dropped == [] and answer.serial == "0042"


def test_an_invalid_optional_field_becomes_null_and_the_rest_stands() -> None:
    body = {"Status": 0, "Serial": 42.5, "Count": 3, "Inner": {"code": 1, "label": 7}}
    answer, dropped = validate_tolerant(Answer, body, what="t")
    assert answer.serial is None and answer.count == 3
    assert answer.inner == Inner(code=1, label=None)
    assert sorted(dropped) == ["Inner.label", "Serial"]
    assert body["Serial"] == 42.5  # the caller's data is not changed


def test_a_field_without_a_null_form_takes_its_default() -> None:
    answer, dropped = validate_tolerant(Answer, {"Status": 0, "Count": "many"}, what="t")
    assert answer.count == 0 and dropped == ["Count"]


def test_a_nested_object_missing_a_required_field_becomes_null() -> None:
    answer, dropped = validate_tolerant(Answer, {"Status": 0, "Inner": {"label": "x"}}, what="t")
    assert answer.inner is None and dropped == ["Inner"]


def test_list_items_that_cannot_be_repaired_are_removed() -> None:
    body: dict[str, Any] = {
        "Status": 0,
        "Items": [{"code": "x"}, {"label": "no code"}, {"code": 3, "label": 4}, {"code": 5}],
    }
    answer, dropped = validate_tolerant(Answer, body, what="t")
    assert answer.items == [Inner(code=3), Inner(code=5)]
    assert sorted(dropped) == ["Items.0", "Items.1", "Items.2.label"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        None,
        {"Count": 1},  # no Status: required, no default
        {"Status": "ok"},  # Status of the wrong type: null and removal do not help
    ],
)
def test_an_unusable_envelope_is_malformed(body: Any) -> None:
    with pytest.raises(MalformedAnswerError, match=r"^t: "):
        validate_tolerant(Answer, body, what="t")


def test_the_envelope_error_names_the_original_fault() -> None:
    with pytest.raises(MalformedAnswerError, match="Status: Input should be a valid integer"):
        validate_tolerant(Answer, {"Status": "ok"}, what="t")


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.05, "1.05"), (1.1, "1.1"), (1.2, "1.2"), (1.0, "1.0"), (2, "2"), ("1.05", "1.05")],
)
def test_versions_accept_numbers_and_strings(value: Any, text: str) -> None:
    answer, dropped = validate_tolerant(Answer, {"Status": 0, "Version": value}, what="t")
    assert answer.version == text and dropped == []


def test_a_boolean_is_no_version() -> None:
    answer, dropped = validate_tolerant(Answer, {"Status": 0, "Version": True}, what="t")
    assert answer.version is None and dropped == ["Version"]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_version_number_reads_back_as_the_same_number(value: float) -> None:
    assert float(version_text(value)) == value


_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
_VALUE = (
    _LEAF | st.lists(_LEAF, max_size=3) | st.dictionaries(st.sampled_from(["code", "label"]), _LEAF)
)
_ITEM = st.dictionaries(st.sampled_from(["code", "label"]), _LEAF)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "Count": _VALUE,
            "Serial": _VALUE,
            "Version": _VALUE,
            "Inner": _VALUE,
            "Items": st.lists(_ITEM | _LEAF, max_size=3) | _VALUE,
            "Other": _VALUE,
        },
    )
)
def test_any_json_under_a_good_envelope_validates(body: dict[str, Any]) -> None:
    """Whatever the fields hold, a usable envelope always gives a model."""
    answer, dropped = validate_tolerant(Answer, {**body, "Status": 2}, what="t")
    assert answer.status == 2
    assert all(path.split(".")[0] in body for path in dropped)
