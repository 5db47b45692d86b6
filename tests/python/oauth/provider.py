"""Authlib wiring: the strict grants, revocation, introspection, ID tokens and bearer checks.

Authlib does the protocol work (client authentication, parameter validation, RFC 6749 error
bodies and redirects); the subclasses here add what a strict provider enforces on top.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import (InvalidGrantError, InvalidRequestError, OAuth2Error,
                                    TokenMixin, grants)
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator, InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey

from store import AUTH_METHODS, AuthCode, Store, Token, new_id

REALM = "toolbelt-oauth-fixture"


class StrictS256(CodeChallenge):
    """PKCE is mandatory for every client, and only S256: Authlib alone would let a
    confidential client skip PKCE and would default a missing method to `plain`."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE required: missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE 'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        try:
            super().validate_code_verifier(grant, result)
        except OAuth2Error:
            # A code that failed its PKCE check is burnt, so a verifier cannot be guessed.
            code = grant.request.authorization_code
            grant.server.store.codes.pop(code.code, None)
            raise


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def save_authorization_code(self, code, request):
        s = self.server.store
        d = request.payload.data
        s.codes[code] = AuthCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user=request.user,
            code_challenge=d["code_challenge"],
            code_challenge_method=d["code_challenge_method"],
            family_id=new_id("fam"),
            expires_at=time.time() + s.code_ttl,
            nonce=d.get("nonce"),
            auth_time=int(time.time()),
        )

    def query_authorization_code(self, code, client):
        s = self.server.store
        c = s.codes.get(code)
        if c is None or c.client_id != client.client_id:
            return None
        if c.used:
            # RFC 6749 §4.1.2: a replayed code is refused and its tokens revoked.
            s.event("code_reuse_detected", client_id=c.client_id, family_id=c.family_id)
            s.revoke_family(c.family_id, "code_reused")
            raise InvalidGrantError("authorization code already used; its tokens are revoked")
        if time.time() >= c.expires_at:
            s.event("code_expired", client_id=c.client_id)
            raise InvalidGrantError("authorization code expired")
        return c

    def delete_authorization_code(self, authorization_code):
        authorization_code.used = True  # kept, so a replay is recognised as one

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh returns a new refresh token

    def authenticate_refresh_token(self, refresh_token):
        s = self.server.store
        t = s.by_refresh(refresh_token)
        if t is None or t.client_id != self.request.client.client_id:
            s.event("refresh_rejected", reason="unknown", token_id=t.id if t else None)
            raise InvalidGrantError("unknown refresh token")
        if t.refresh_revoked == "rotated":
            # Someone holds a copy of an old refresh token: burn the whole family.
            s.event("refresh_reuse_detected", token_id=t.id, family_id=t.family_id, user=t.user)
            s.revoke_family(t.family_id, "refresh_reused")
            raise InvalidGrantError("refresh token reused; its token family is revoked")
        if t.refresh_revoked or t.refresh_expired():
            reason = t.refresh_revoked or "expired"
            s.event("refresh_rejected", reason=reason, token_id=t.id, family_id=t.family_id)
            raise InvalidGrantError(f"refresh token {reason}")
        return t

    def authenticate_user(self, refresh_token):
        return refresh_token.user

    def revoke_old_credential(self, refresh_token):
        # The old access token stays valid until it expires (as at most providers).
        refresh_token.refresh_revoked = "rotated"


@dataclass
class TokenRef(TokenMixin):
    """One half of a stored token pair, as found by a revocation or introspection request."""

    token: Token
    kind: str  # access_token | refresh_token

    def check_client(self, client):
        return self.token.check_client(client)

    def get_scope(self):
        return self.token.scope

    def is_expired(self):
        t = self.token
        return t.is_expired() if self.kind == "access_token" else t.refresh_expired()

    def is_revoked(self):
        t = self.token
        return t.access_revoked if self.kind == "access_token" else t.refresh_revoked is not None


def find_token(store: Store, value: str, hint: str | None) -> TokenRef | None:
    # RFC 7009 §2.1: the hint only orders the search; a wrong hint still finds the token.
    kinds = ["access_token", "refresh_token"]
    if hint == "refresh_token":
        kinds.reverse()
    for kind in kinds:
        t = store.by_access(value) if kind == "access_token" else store.by_refresh(value)
        if t:
            return TokenRef(t, kind)
    return None


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def query_token(self, token_string, token_type_hint):
        ref = find_token(self.server.store, token_string, token_type_hint)
        self.server.store.event(
            "revocation_requested",
            token_type_hint=token_type_hint,
            found=ref is not None,
            token_kind=ref.kind if ref else None,
            token_id=ref.token.id if ref else None,
        )
        return ref

    def revoke_token(self, token, request):
        if token.kind == "refresh_token":
            self.server.store.revoke_family(token.token.family_id, "revoked")
        else:
            token.token.access_revoked = True


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def query_token(self, token_string, token_type_hint):
        return find_token(self.server.store, token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return True  # any registered client may introspect: this is a test fixture

    def introspect_token(self, token):
        t, access = token.token, token.kind == "access_token"
        self.server.store.event("introspected", token_id=t.id, token_kind=token.kind)
        return {
            "active": True,
            "client_id": t.client_id,
            "username": t.user,
            "sub": t.user,
            "scope": t.scope,
            "token_type": "Bearer" if access else "refresh_token",
            "exp": int(t.issued_at + t.expires_in if access else t.refresh_expires_at),
            "iat": int(t.issued_at),
            "iss": self.server.store.url,
            "jti": t.id,
        }


class OpenID(OpenIDCode):
    """ID tokens (RS256) when `openid` is in the scope, so OIDC discovery is not a lie."""

    def __init__(self, store: Store, key: RSAKey):
        super().__init__(require_nonce=False)
        self.store, self.key = store, key

    def exists_nonce(self, nonce, request):
        cid = request.payload.client_id
        return any(c.nonce == nonce and c.client_id == cid for c in self.store.codes.values())

    def resolve_client_private_key(self, client):
        return self.key

    def get_client_algorithm(self, client):
        return "RS256"

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": self.key.kid}

    def get_client_claims(self, client):
        return {"iss": self.store.url, "aud": [client.client_id]}

    def generate_user_info(self, user, scope):
        return user_info(user, scope)


def user_info(user: str, scope: str) -> UserInfo:
    info = UserInfo(sub=user, preferred_username=user, name=user.title())
    if "email" in scope.split():
        info["email"] = f"{user}@example.test"
    return info


class FixtureServer(AuthorizationServer):
    def __init__(self, app, store: Store, key: RSAKey):
        super().__init__()
        self.store = store
        self.init_app(app, query_client=store.clients.get, save_token=self.persist_token)
        # Opaque, prefixed tokens (easy to tell apart in logs); the TTL is read per request.
        self.register_token_generator("default", BearerTokenGenerator(
            lambda **_: "at_" + generate_token(40),
            lambda **_: "rt_" + generate_token(40),
            lambda client, grant_type: store.access_ttl,
        ))
        self.register_grant(CodeGrant, [StrictS256(), OpenID(store, key)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def persist_token(self, token, request):
        s, now = self.store, time.time()
        grant_type = request.payload.grant_type
        old = request.refresh_token  # set by the refresh grant only
        family = old.family_id if old else request.authorization_code.family_id
        t = Token(
            id=new_id("tok"),
            family_id=family,
            parent_id=old.id if old else None,
            grant_type=grant_type,
            client_id=request.client.client_id,
            user=request.user,
            scope=token.get("scope", ""),
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            issued_at=now,
            expires_in=token["expires_in"],
            refresh_expires_at=now + s.refresh_ttl,
        )
        s.add_token(t)
        s.event("token_issued", grant_type=grant_type, token_id=t.id, family_id=family,
                client_id=t.client_id, user=t.user, scope=t.scope,
                refresh_token_issued=t.refresh_token is not None)
        if old:
            s.event("refresh_used", old_token_id=old.id, new_token_id=t.id, family_id=family)


class Bearer(BearerTokenValidator):
    """Access-token check for the protected resource; records why a token was refused."""

    def __init__(self, store: Store):
        super().__init__(realm=REALM)
        self.store = store

    def authenticate_token(self, token_string):
        return self.store.by_access(token_string)

    def validate_token(self, token, scopes, request):
        reason = ("unknown" if token is None else "revoked" if token.is_revoked()
                  else "expired" if token.is_expired() else None)
        if reason:
            self.store.event("resource_denied", reason=reason, path=request.uri.split("?")[0],
                             token_id=token.id if token else None)
            raise InvalidTokenError(f"access token {reason}", realm=REALM)


def protector(store: Store) -> ResourceProtector:
    p = ResourceProtector()
    p.register_token_validator(Bearer(store))
    return p
