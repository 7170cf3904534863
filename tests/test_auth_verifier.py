"""The access-token verifier on its own: every claim it requires, the role it insists on, the
cache's expiry, the key lookup. No database or server: these run in milliseconds, which is what
lets mutation testing (``make mutation``) run them per mutant."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.auth import AUDIENCE, TokenVerifier, User, is_admin
from shared.errors import Unauthorized

ISSUER = "http://127.0.0.1:9999/auth/v1"
SUB = str(uuid.UUID(int=0xABCD, version=4))


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _jwks(key, kid: str = "k1") -> dict:
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": kid, "alg": "ES256", "use": "sig"}]}


def _token(key, kid: str = "k1", drop: tuple[str, ...] = (), alg: str = "ES256", **over) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": SUB,
        "aud": AUDIENCE,
        "role": AUDIENCE,
        "email": "a@example.com",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(over)
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _code(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as e:
        verifier.verify(token)
    return e.value.code


@pytest.fixture
def verifier(key) -> TokenVerifier:
    return TokenVerifier(ISSUER, jwks=_jwks(key))


def test_a_good_token_gives_its_user(verifier, key):
    user = verifier.verify(_token(key, app_metadata={"role": "admin"}))
    assert user.id == SUB and user.email == "a@example.com"
    assert user.is_admin and user.claims["sub"] == SUB


def test_sub_is_normalised_to_a_uuid(verifier, key):
    user = verifier.verify(_token(key, sub=SUB.upper()))
    assert user.id == SUB


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud", "iss"])
def test_every_required_claim_is_required(verifier, key, claim):
    assert _code(verifier, _token(key, drop=(claim,))) == "INVALID_TOKEN"


def test_expired_token_is_refused_with_its_own_code(verifier, key):
    assert _code(verifier, _token(key, exp=int(time.time()) - 5)) == "TOKEN_EXPIRED"


@pytest.mark.parametrize("role", ["service_role", "anon", "admin", ""])
def test_only_the_authenticated_role_is_a_user(verifier, key, role):
    # A service-role key is signed by the same project key: its role is what tells it apart.
    assert _code(verifier, _token(key, role=role)) == "INVALID_TOKEN"


def test_a_token_without_a_role_claim_is_a_user(verifier, key):
    assert verifier.verify(_token(key, drop=("role",))).id == SUB


@pytest.mark.parametrize(
    "over", [{"aud": "anon"}, {"iss": "https://evil.example/auth/v1"}, {"sub": "not-a-uuid"}]
)
def test_wrong_audience_issuer_or_subject(verifier, key, over):
    assert _code(verifier, _token(key, **over)) == "INVALID_TOKEN"


def test_unknown_kid_and_foreign_key_are_refused(verifier, key):
    assert _code(verifier, _token(key, kid="other")) == "INVALID_TOKEN"
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert _code(verifier, _token(stranger)) == "INVALID_TOKEN"


def test_symmetric_and_unsigned_tokens_are_refused(verifier, key):
    hs = jwt.encode({"sub": SUB, "aud": AUDIENCE, "iss": ISSUER}, "s" * 32, algorithm="HS256")
    assert _code(verifier, hs) == "INVALID_TOKEN"
    none = jwt.encode({"sub": SUB, "aud": AUDIENCE, "iss": ISSUER}, None, algorithm="none")
    assert _code(verifier, none) == "INVALID_TOKEN"
    assert _code(verifier, "not.a.jwt") == "INVALID_TOKEN"


def test_rsa_keys_are_accepted_too():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    verifier = TokenVerifier(ISSUER, jwks={"keys": [{**jwk, "kid": "r1", "alg": "RS256"}]})
    assert verifier.verify(_token(rsa_key, kid="r1", alg="RS256")).id == SUB


def test_a_cached_token_still_expires(verifier, key, monkeypatch):
    token = _token(key)
    assert verifier.verify(token).id == SUB
    assert verifier.verifies_in_memory(token)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert _code(verifier, token) == "TOKEN_EXPIRED"
    assert not verifier.verifies_in_memory(token)  # dropped from the cache


def test_cache_is_bounded(verifier, key, monkeypatch):
    monkeypatch.setattr(TokenVerifier, "CACHE_SIZE", 3)
    tokens = [_token(key, email=f"u{i}@example.com") for i in range(4)]
    for t in tokens:
        verifier.verify(t)
    assert len(verifier._verified) <= 3
    assert verifier.verifies_in_memory(tokens[-1])


class _Floors:
    """Stand-in for the database-backed token floors (tested with Postgres in
    test_security_sessions.py): here only whether ``verify`` consults them."""

    def __init__(self, revoked: set[str], fresh: bool) -> None:
        self.revoked, self.fresh = revoked, fresh

    def allows(self, user_id: str, claims: dict) -> bool:
        return user_id not in self.revoked

    def is_fresh(self, user_id: str) -> bool:
        return self.fresh


def test_the_token_floor_is_checked_on_every_verify(key):
    floors = _Floors(revoked=set(), fresh=False)
    verifier = TokenVerifier(ISSUER, jwks=_jwks(key), floors=floors)
    token = _token(key)
    assert verifier.verify(token).id == SUB
    assert not verifier.verifies_in_memory(token)  # a stale floor needs I/O
    floors.fresh = True
    assert verifier.verifies_in_memory(token)
    floors.revoked.add(SUB)
    assert _code(verifier, token) == "SESSION_REVOKED"
    assert not verifier.verifies_in_memory("never seen")


def test_is_admin_reads_only_app_metadata():
    assert is_admin({"app_metadata": {"role": "admin"}})
    assert not is_admin({"app_metadata": {"role": "editor"}})
    assert not is_admin({"user_metadata": {"role": "admin"}})
    assert not is_admin({"app_metadata": "admin"})
    assert not is_admin("admin")  # type: ignore[arg-type]
    plain = User(id=SUB, email="")
    assert plain.role == AUDIENCE and plain.claims == {} and not plain.is_admin


def test_a_users_repr_does_not_print_the_token_claims(verifier, key):
    # Users end up in logs and tracebacks; the claims (email, app_metadata) stay out of them.
    user = verifier.verify(_token(key, app_metadata={"role": "admin", "secret": "s3cr3t"}))
    assert "s3cr3t" not in repr(user) and SUB in repr(user)


def test_keys_fetched_from_a_jwks_url(key):
    """Production reads the project's JWKS over HTTP: a real local server serves it here."""
    import http.server
    import json
    import threading

    body = json.dumps(_jwks(key)).encode()
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/auth/v1/.well-known/jwks.json"
        verifier = TokenVerifier(ISSUER, jwks_url=url)
        assert verifier.verify(_token(key)).id == SUB
        assert verifier.verify(_token(key, email="b@example.com")).id == SUB
        assert hits == ["/auth/v1/.well-known/jwks.json"]  # fetched once, then cached
        assert _code(verifier, _token(key, kid="rotated-away")) == "INVALID_TOKEN"
    finally:
        server.shutdown()


def test_refusals_say_what_to_do_in_a_sentence(verifier, key):
    """The API shows these messages to people: each names the problem (and the fix)."""

    def message(token: str) -> str:
        with pytest.raises(Unauthorized) as e:
            verifier.verify(token)
        return e.value.message

    assert message(_token(key, exp=int(time.time()) - 5)) == (
        "The access token has expired; refresh it."
    )
    assert message(_token(key, kid="other")) == "The access token was signed with an unknown key."
    assert message(_token(key, aud="anon")) == "The access token is not valid."
    hs = jwt.encode({"sub": SUB}, "s" * 32, algorithm="HS256")
    assert message(hs) == "Unsupported token algorithm."


def test_cached_tokens_expire_at_exp_and_say_so(verifier, key, monkeypatch):
    exp = int(time.time()) + 60
    token = _token(key, exp=exp, drop=("email",))
    user = verifier.verify(token)
    assert user.email == ""  # no email claim: empty, not invented
    monkeypatch.setattr(time, "time", lambda: float(exp))  # at exp exactly: expired (RFC 7519)
    with pytest.raises(Unauthorized) as e:
        verifier.verify(token)
    assert (e.value.code, e.value.message) == (
        "TOKEN_EXPIRED",
        "The access token has expired; refresh it.",
    )


def test_role_subject_and_floor_refusals_are_sentences(verifier, key):
    with pytest.raises(Unauthorized) as e:
        verifier.verify(_token(key, role="service_role"))
    assert e.value.message == "This token is not a user's access token."
    with pytest.raises(Unauthorized) as e:
        verifier.verify(_token(key, sub="not-a-uuid"))
    assert e.value.message == "The access token is not valid."
    floors = _Floors(revoked={SUB}, fresh=True)
    with pytest.raises(Unauthorized) as e:
        TokenVerifier(ISSUER, jwks=_jwks(key), floors=floors).verify(_token(key))
    assert e.value.message == (
        "This session has ended (password reset or sign-out everywhere); sign in again."
    )
