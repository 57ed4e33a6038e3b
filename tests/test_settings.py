import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_bool, env_int


def test_booleans_from_the_environment(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", True) is False
    monkeypatch.delenv("FLAG")
    assert env_bool("FLAG", True) is True


def test_bad_values_fail_loudly_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False)
    monkeypatch.setenv("DB_CONN_MAX_AGE", "forever")
    with pytest.raises(ImproperlyConfigured, match="DB_CONN_MAX_AGE='forever' is not an integer"):
        env_int("DB_CONN_MAX_AGE", 0)
