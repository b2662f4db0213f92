from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.sealing import REDACTED, Sealer, split_redacted


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
    assert hidden == {"password": "p"}
    args = {"a": 1}
    assert split_redacted(args, ("b",)) == (args, {})
