"""The parts of docs/ generated from the code (settings, the rules of a valid event, the window
metrics) say what the code does: each block equals what its generator renders now."""

import pytest

from inferwatch.doc_blocks import BLOCKS, current, generated


@pytest.mark.parametrize("name", BLOCKS)
def test_generated_doc_block_is_up_to_date(name):
    assert current(name) == generated(name), (
        f"{BLOCKS[name][0].name}: the {name} block is out of step with the code: regenerate it with "
        "`.venv/bin/python -m inferwatch.doc_blocks --write`")
