"""The docs' generated tables (layers, datasets, clip options) are those the code gives now."""

import pytest

from tests import generated_docs


@pytest.mark.parametrize("page", sorted({page for page, _ in generated_docs.TABLES}))
def test_the_generated_tables_are_current(page):
    text = (generated_docs.ROOT / page).read_text()
    assert text == generated_docs.current(page), "run `python -m tests.generated_docs`"
