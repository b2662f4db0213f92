from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.triggers.sealing import REDACTED, Sealer, split_redacted


def test_a_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    first = Sealer(key=None, data_dir=tmp_path)
    first.load()
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = first.seal({"password": "p"})
    assert "password" not in token  # sealed, not merely encoded
    second = Sealer(key=None, data_dir=tmp_path)
    second.load()
    assert second.unseal(token) == {"password": "p"}


def test_a_configured_key_wins_and_a_wrong_key_cannot_open(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    sealer = Sealer(key=key, data_dir=tmp_path)
    sealer.load()
    assert not (tmp_path / "secret.key").exists()
    token = sealer.seal({"k": [1, 2]})
    other = Sealer(key=Fernet.generate_key().decode(), data_dir=tmp_path)
    other.load()
    with pytest.raises(ValueError, match="cannot be opened"):
        other.unseal(token)
    with pytest.raises(ValueError, match="not a Fernet key"):
        Sealer(key="short", data_dir=tmp_path).load()


def test_split_redacted() -> None:
    shown, hidden = split_redacted({"user": "u", "password": "p", "other": 1}, ("password", "absent"))
    assert shown == {"user": "u", "password": REDACTED, "other": 1}
    assert hidden == {"user": "u", "password": "p", "other": 1}  # the real arguments, sealed whole
    args = {"a": 1}
    assert split_redacted(args, ("b",)) == (args, {})


def test_a_bare_name_is_redacted_at_any_depth_and_a_dotted_one_on_its_path() -> None:
    args = {
        "nested": {"password": "p1", "keep": 1},
        "items": [{"password": "p2"}, "plain"],
        "card": {"number": "4242", "brand": "visa"},
        "number": "not this one",
    }
    shown, real = split_redacted(args, ("password", "card.number"))
    assert shown == {
        "nested": {"password": REDACTED, "keep": 1},
        "items": [{"password": REDACTED}, "plain"],
        "card": {"number": REDACTED, "brand": "visa"},
        "number": "not this one",
    }
    assert real == args


def test_raw_bodies_and_file_contents_are_sealed_on_a_redacting_route() -> None:
    args = {"raw_string": '{"password": "p"}', "password": "p", "file": {"content_base64": "c2VjcmV0"}}
    shown, _ = split_redacted(args, ("password",))
    assert shown == {"raw_string": REDACTED, "password": REDACTED, "file": {"content_base64": REDACTED}}
    text = {"body": "password=p", "raw_string": "password=p"}
    assert split_redacted(text, ("password",))[0] == {"body": REDACTED, "raw_string": REDACTED}
    assert split_redacted({"raw_string": "x"}, ())[0] == {"raw_string": "x"}  # no redact, nothing sealed
