"""JWT keys and tokens, and the attacks they must refuse."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from gateway.auth.tokens import AUDIENCE, KEY_FILE, KeyRing, TokenError, rotate_key_file
from gateway.config import AuthConfig, KeyConfig

SECRET = "a-test-secret-that-is-at-least-32-bytes-long"


def hs_ring(kid: str = "k1", secret: str = SECRET) -> KeyRing:
    return KeyRing.load(
        AuthConfig(keys=(KeyConfig(kid=kid, algorithm="HS256", secret=secret),)), Path("/nonexistent")
    )


def pem_files(tmp_path: Path, private_key: object, name: str) -> tuple[Path, Path]:
    private = tmp_path / f"{name}.pem"
    public = tmp_path / f"{name}.pub"
    private.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )  # type: ignore[attr-defined]
    public.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )  # type: ignore[attr-defined]
    return private, public


def test_issue_and_decode_round_trip() -> None:
    ring = hs_ring()
    now = int(time.time())
    token, claims = ring.issue(subject="route:/d", scopes=["jobs:run:routes:/d"], ttl=60, label="ci", now=now)
    decoded = ring.decode(token)
    assert (
        decoded["sub"] == "route:/d"
        and decoded["scope"] == ["jobs:run:routes:/d"]
        and decoded["aud"] == AUDIENCE
    )
    assert decoded["exp"] == now + 60 and decoded["jti"] == claims["jti"] and decoded["label"] == "ci"
    assert jwt.get_unverified_header(token)["kid"] == "k1"


def test_a_token_without_expiry_is_accepted() -> None:
    ring = hs_ring()
    token, claims = ring.issue(subject="route:/d", scopes=[])
    assert "exp" not in claims and ring.decode(token)["sub"] == "route:/d"


def _forge(claims: dict, *, header: dict, key: bytes | str = b"", algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


def _claims(**extra: object) -> dict:
    """Claims issued now; ``exp``/``nbf`` are given relative to now (tokens are checked on the wall clock)."""
    now = int(time.time())
    relative = {k: now + v for k, v in extra.items() if k in ("exp", "nbf") and isinstance(v, int)}
    return {
        "sub": "route:/d",
        "scope": ["jobs:run:routes:/d"],
        "aud": AUDIENCE,
        "iat": now,
        "jti": "x",
        **extra,
        **relative,
    }


def test_alg_none_is_refused() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode()).rstrip(
        b"="
    )
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    with pytest.raises(TokenError) as info:
        hs_ring().decode((header + b"." + body + b".").decode())
    assert info.value.code == "invalid_token"


def test_algorithm_confusion_hs256_signed_with_the_rsa_public_key(tmp_path: Path) -> None:
    private, public = pem_files(
        tmp_path, rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa"
    )
    ring = KeyRing.load(
        AuthConfig(keys=(KeyConfig(kid="rsa", algorithm="RS256", private_key=private, public_key=public),)),
        tmp_path,
    )
    good, _ = ring.issue(subject="route:/d", scopes=[])
    assert ring.decode(good)["sub"] == "route:/d"
    # The attacker signs HS256 with the public key's PEM as the HMAC secret, naming the RSA key.
    hmac_with_public = jwt.api_jws.PyJWS()
    hmac_with_public._algorithms["HS256"].prepare_key = lambda key: key  # type: ignore[method-assign]
    forged = hmac_with_public.encode(
        json.dumps(_claims()).encode(), public.read_bytes(), algorithm="HS256", headers={"kid": "rsa"}
    )
    with pytest.raises(TokenError):
        ring.decode(forged)


def test_eddsa_keys_and_verify_only_replicas(tmp_path: Path) -> None:
    private, public = pem_files(tmp_path, ed25519.Ed25519PrivateKey.generate(), "ed")
    signer = KeyRing.load(
        AuthConfig(keys=(KeyConfig(kid="ed", algorithm="EdDSA", private_key=private),)), tmp_path
    )
    token, _ = signer.issue(subject="route:/d", scopes=[])
    replica = KeyRing.load(
        AuthConfig(keys=(KeyConfig(kid="ed", algorithm="EdDSA", public_key=public),)), tmp_path
    )
    assert replica.decode(token)["sub"] == "route:/d"
    with pytest.raises(TokenError) as info:
        replica.issue(subject="route:/d", scopes=[])
    assert info.value.code == "no_signing_key"


@pytest.mark.parametrize(
    ("token_factory", "code"),
    [
        (lambda: _forge(_claims(), header={"kid": "unknown"}, key=SECRET), "invalid_token"),
        (
            lambda: _forge(_claims(), header={"kid": "k1"}, key="another-secret-that-is-32-bytes-long!"),
            "invalid_token",
        ),
        (lambda: _forge(_claims(aud="someone-else"), header={"kid": "k1"}, key=SECRET), "invalid_token"),
        (lambda: _forge(_claims(exp=-1), header={"kid": "k1"}, key=SECRET), "token_expired"),
        (lambda: _forge(_claims(nbf=3600), header={"kid": "k1"}, key=SECRET), "invalid_token"),
        (
            lambda: _forge(
                {"sub": "x", "aud": AUDIENCE, "iat": int(time.time()), "jti": "j"},
                header={"kid": "k1"},
                key=SECRET,
            ),
            "invalid_token",
        ),
        (lambda: _forge(_claims(scope="admin"), header={"kid": "k1"}, key=SECRET), "invalid_token"),
        (lambda: "not.a.jwt", "invalid_token"),
    ],
    ids=[
        "unknown-kid",
        "wrong-key",
        "wrong-audience",
        "expired",
        "not-yet-valid",
        "missing-scope",
        "scope-not-a-list",
        "garbage",
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token_factory: object, code: str) -> None:
    with pytest.raises(TokenError) as info:
        hs_ring().decode(token_factory())  # type: ignore[operator]
    assert info.value.code == code


def test_tampered_payload_is_refused() -> None:
    ring = hs_ring()
    token, _ = ring.issue(subject="route:/a", scopes=["jobs:run:routes:/a"])
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = ["admin"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        ring.decode(f"{header}.{forged_payload}.{signature}")


def test_generated_key_file_and_rotation(tmp_path: Path) -> None:
    ring = KeyRing.load(AuthConfig(), tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    old_token, _ = ring.issue(subject="route:/d", scopes=[])
    old_kid = ring.signer.kid  # type: ignore[union-attr]
    entries = rotate_key_file(tmp_path)
    rotated = KeyRing.load(AuthConfig(), tmp_path)
    assert rotated.signer is not None and rotated.signer.kid == entries[0]["kid"] != old_kid
    assert rotated.decode(old_token)["sub"] == "route:/d"  # published tokens keep working
    rotate_key_file(tmp_path, retire=old_kid)
    with pytest.raises(TokenError):
        KeyRing.load(AuthConfig(), tmp_path).decode(old_token)


def test_a_token_seen_before_is_not_decoded_again_until_its_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = hs_ring()
    now = time.time()
    token, claims = ring.issue(subject="route:/a", scopes=["jobs:run:routes:/a"], ttl=60, now=now)
    decodes = 0
    real_decode = jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert ring.decode(token) == claims
    assert ring.decode(token) == claims
    assert decodes == 1
    ring.verified.clock = lambda: claims["exp"]  # the cache never outlives the token's exp
    assert ring.verified.get(token) is None
    ring.verified.clock = time.time
    assert ring.decode(token) == claims and decodes == 2  # verified anew, by pyjwt


def test_the_cache_holds_only_verified_tokens_and_stays_bounded() -> None:
    ring = hs_ring()
    other = hs_ring(secret="another-secret-that-is-also-32-bytes-long!")
    forged, _ = other.issue(subject="route:/a", scopes=["jobs:run:routes:/a"], ttl=60)
    for _ in range(2):  # a refused token is refused every time: nothing about it is remembered
        with pytest.raises(TokenError):
            ring.decode(forged)
    assert ring.verified.get(forged) is None
    ring.verified.size = 3
    tokens = [ring.issue(subject=f"route:/{n}", scopes=["x"], ttl=60)[0] for n in range(5)]
    for token in tokens:
        ring.decode(token)
    assert [ring.verified.get(t) is not None for t in tokens] == [False, False, True, True, True]
