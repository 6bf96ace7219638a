"""Shipped price table, user overrides, bad override files and the once-per-model warning."""

import json
import logging
from importlib import resources

import pytest

from inferwatch.producers.pricing import ModelPrice, PriceTable
from inferwatch.producers.traffic_model import FLEET

LOGGER = "inferwatch.producers.pricing"


@pytest.fixture
def table():
    return PriceTable.load()


def test_shipped_table_is_package_data_and_says_to_check_prices():
    shipped = json.loads(resources.files("inferwatch.producers").joinpath("prices.json").read_text())
    assert "override" in shipped["_doc"] and "check" in shipped["_doc"]
    assert shipped["as_of"]


@pytest.mark.parametrize(
    "model", ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "claude-3-5-haiku", "llama-3.1-8b", "llama-3.1-70b",
              "mistral-7b", "qwen2.5-14b"],
)
def test_shipped_models(table, model):
    price = table.price(model)
    assert price is not None and 0 < price.usd_per_1m_input <= price.usd_per_1m_output


def test_synthetic_fleet_prices_match_the_traffic_model(table):
    for profile in FLEET:
        assert table.price(profile.model) == ModelPrice(profile.usd_per_1m_input, profile.usd_per_1m_output)


def test_cost(table):
    assert table.cost_usd("gpt-4o", 1000, 500) == pytest.approx((1000 * 2.5 + 500 * 10.0) / 1e6)
    assert table.cost_usd("llama-3.1-8b-chat-ft", 1_000_000, 1_000_000) == pytest.approx(0.20)
    assert table.cost_usd("gpt-4o", 0, 0) == 0.0


@pytest.mark.parametrize(
    "name, base",
    [("gpt-4o-2024-08-06", "gpt-4o"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
     ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"), ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
     ("GPT-4o", "gpt-4o"), (" gpt-4o ", "gpt-4o")],
)
def test_snapshot_names_bill_at_the_base_model(table, name, base):
    assert table.price(name) == table.price(base)


def test_other_suffixes_are_not_guessed(table):
    # A fine-tune may have a price of its own: no prefix matching.
    assert table.price("llama-3.1-8b-custom") is None
    assert table.cost_usd("gpt-4o-finetuned", 10, 10) is None


def test_negative_tokens_raise(table):
    with pytest.raises(ValueError):
        table.cost_usd("gpt-4o", -1, 0)


def test_unknown_model_warns_once_per_model_per_table(table, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(3):
        assert table.cost_usd("my-private-model", 100, 100) is None
    assert table.cost_usd("My-Private-Model", 100, 100) is None  # same model, other casing
    assert table.cost_usd("other-model", 1, 1) is None
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 2
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert "my-private-model" in warnings[0].getMessage() and "other-model" in warnings[1].getMessage()

    caplog.clear()
    PriceTable.load().cost_usd("my-private-model", 1, 1)  # a new table warns again
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1


def test_known_model_does_not_warn(table, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    table.cost_usd("gpt-4o", 1, 1)
    assert not caplog.records


def test_dict_overrides_replace_and_add(table):
    custom = PriceTable.load({
        "gpt-4o": {"usd_per_1m_input": 1.0, "usd_per_1m_output": 2.0},
        "My-Model": {"usd_per_1m_input": 0, "usd_per_1m_output": 0.5, "source": "internal chargeback"},
        "_comment": "ignored",
    })
    assert custom.price("gpt-4o") == ModelPrice(1.0, 2.0)
    assert custom.cost_usd("my-model", 1_000_000, 2_000_000) == pytest.approx(1.0)
    assert custom.price("gpt-4o-mini") == table.price("gpt-4o-mini")  # the rest is the shipped table
    assert table.price("gpt-4o") == ModelPrice(2.5, 10.0)  # the shipped table is not changed


def test_overrides_may_use_the_models_level():
    custom = PriceTable.load({"models": {"gpt-4o": {"usd_per_1m_input": 1, "usd_per_1m_output": 1}}})
    assert custom.price("gpt-4o") == ModelPrice(1.0, 1.0)


def test_json_file_overrides(tmp_path):
    path = tmp_path / "prices.json"
    entry = {"usd_per_1m_input": 0.05, "usd_per_1m_output": 0.07}
    path.write_text(json.dumps({"_doc": "ours", "models": {"mistral-7b": entry}}))
    assert PriceTable.load(path).price("mistral-7b") == ModelPrice(0.05, 0.07)
    assert PriceTable.load(str(path)).price("mistral-7b") == ModelPrice(0.05, 0.07)


def test_toml_file_overrides(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[models."qwen2.5-14b"]\nusd_per_1m_input = 0.2\nusd_per_1m_output = 0.6\n\n'
                    '[models.team-model]\nusd_per_1m_input = 1\nusd_per_1m_output = 3\n')
    table = PriceTable.load(path)
    assert table.price("qwen2.5-14b") == ModelPrice(0.2, 0.6)
    assert table.price("team-model") == ModelPrice(1.0, 3.0)


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.toml", "[models\nx = ", "not valid TOML"),
        ("prices.yaml", "gpt-4o: 1", ".json or .toml"),
        ("list.json", "[1, 2]", "expected a table of models"),
        ("models.json", '{"models": [1]}', "'models' must be a table"),
        ("missing.json", '{"gpt-4o": {"usd_per_1m_input": 1}}', "missing usd_per_1m_output"),
        ("negative.json", '{"gpt-4o": {"usd_per_1m_input": -1, "usd_per_1m_output": 1}}', "non-negative number"),
        ("text.json", '{"gpt-4o": {"usd_per_1m_input": "2.5", "usd_per_1m_output": 1}}', "non-negative number"),
        ("bool.json", '{"gpt-4o": {"usd_per_1m_input": true, "usd_per_1m_output": 1}}', "non-negative number"),
        ("nan.json", '{"gpt-4o": {"usd_per_1m_input": NaN, "usd_per_1m_output": 1}}', "non-negative number"),
        ("flat.json", '{"gpt-4o": 2.5}', "expected a table with usd_per_1m_input"),
        ("latin1.json", None, "cannot read"),
    ],
)
def test_bad_override_files_name_the_file_and_the_problem(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is None:
        path.write_bytes(b'{"caf\xe9": 1}')
    else:
        path.write_text(content)
    with pytest.raises(ValueError) as error:
        PriceTable.load(path)
    assert str(path) in str(error.value)
    assert problem in str(error.value)


def test_missing_override_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ValueError, match="cannot read") as error:
        PriceTable.load(path)
    assert str(path) in str(error.value)


def test_bad_dict_overrides():
    with pytest.raises(ValueError, match="price overrides: model 'x': missing usd_per_1m_input"):
        PriceTable.load({"x": {"usd_per_1m_output": 1}})
    with pytest.raises(ValueError, match="model names must be strings"):
        PriceTable.load({1: {"usd_per_1m_input": 1, "usd_per_1m_output": 1}})
