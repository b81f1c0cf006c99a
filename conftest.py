"""Root conftest: pytest honours `pytest_plugins` only here; it loads the fixtures of tests/ and integration/."""

pytest_plugins = ["projectkit"]
