"""limr.secrets: credentials from a variable or from the file its `_FILE` twin names."""

from __future__ import annotations

import pytest

from limr.secrets import SecretFileError, env_secret


def test_should_read_the_variable_when_set():
    assert env_secret("TOKEN", {"TOKEN": "abc"}) == "abc"


def test_should_read_the_file_and_drop_the_trailing_newline_when_name_file_is_set(tmp_path):
    f = tmp_path / "token"
    f.write_text("s3cr3t\n")
    assert env_secret("TOKEN", {"TOKEN_FILE": str(f)}) == "s3cr3t"


@pytest.mark.parametrize("env", [{}, {"TOKEN": "  "}, {"TOKEN": "", "TOKEN_FILE": ""}])
def test_should_return_none_when_unset_or_blank(env):
    assert env_secret("TOKEN", env) is None


def test_should_return_none_when_the_file_is_blank(tmp_path):
    f = tmp_path / "token"
    f.write_text("\n")
    assert env_secret("TOKEN", {"TOKEN_FILE": str(f)}) is None


def test_should_name_the_variable_and_path_when_the_file_is_missing(tmp_path):
    with pytest.raises(SecretFileError, match=r"TOKEN_FILE=.*missing: cannot read the secret file"):
        env_secret("TOKEN", {"TOKEN_FILE": str(tmp_path / "missing")})


def test_should_refuse_both_forms_at_once(tmp_path):
    f = tmp_path / "token"
    f.write_text("a")
    with pytest.raises(SecretFileError, match="TOKEN and TOKEN_FILE are both set"):
        env_secret("TOKEN", {"TOKEN": "b", "TOKEN_FILE": str(f)})


def test_should_read_os_environ_by_default(monkeypatch, tmp_path):
    f = tmp_path / "token"
    f.write_text("from-file")
    monkeypatch.delenv("LIMR_TEST_SECRET", raising=False)
    monkeypatch.setenv("LIMR_TEST_SECRET_FILE", str(f))
    assert env_secret("LIMR_TEST_SECRET") == "from-file"
