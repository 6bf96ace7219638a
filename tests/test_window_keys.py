"""Key sets: parsing, clear errors, and which of them span Kafka partitions."""

import pytest
from pydantic import ValidationError

from inferwatch.processors.windows.keys import KeySet, parse_keysets
from inferwatch.settings import Settings


def test_default_key_sets_model_whole_tenant_and_route_per_partition():
    keysets = parse_keysets(Settings.model_fields["window_keys"].get_default(call_default_factory=True))
    assert [(k.name, k.fields, k.spans_partitions) for k in keysets] == [
        ("model", ("service", "model", "model_version"), False),
        ("tenant", ("tenant_id", "model"), True),
        ("route", ("route",), True),
    ]


@pytest.mark.parametrize("text, message", [
    ("tenant", "expected <name>=<field>"),
    ("tenant=user_id", "fields must be distinct, among"),
    ("tenant=model,model", "fields must be distinct"),
    ("Tenant=model", "expected <name>=<field>"),
])
def test_bad_key_sets_are_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        KeySet.parse(text)


def test_settings_reject_bad_key_sets_when_loaded():
    with pytest.raises(ValidationError, match="alerts watch"):
        Settings(window_keys=["route=route", "model=service,model,model_version"])
    with pytest.raises(ValidationError, match="names must be distinct"):
        Settings(window_keys=["m=service,model", "m=service,model,model_version"])
    with pytest.raises(ValidationError, match="at least one key set"):
        Settings(window_keys=[])
