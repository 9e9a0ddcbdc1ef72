"""The reliability checks that drive Chromium use the browser tests' fixtures."""
from tests.browser.conftest import browser, new_page  # noqa: F401
