import pytest


@pytest.fixture(autouse=True)
def strict_metrics(settings):
    """In these tests a metric bug fails loudly (in production it is logged and skipped)."""
    settings.REPORTS_METRICS_STRICT = True
