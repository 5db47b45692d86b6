"""In-memory state of the OAuth fixture: clients, codes, tokens, token families, events.

Everything lives in one `Store` guarded by one lock. The server serialises every request that
touches the store, so a refresh token presented twice at the same moment is seen as rotated by
the second request (reuse detection), exactly as a strict provider would see it.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scope: str = "openid read write"

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # redirect_uri is required on every authorization request

    def get_allowed_scope(self, scope):
        allowed = self.scope.split()
        if not scope:
            return self.scope
        asked = scope.split()
        # A strict provider refuses unknown scopes (invalid_scope) instead of dropping them.
        return scope if all(s in allowed for s in asked) else None

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris  # exact string match, no prefix matching

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method, endpoint):
        return method in AUTH_METHODS

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str
    code_challenge_method: str
    family_id: str  # every token issued from this code joins this family
    expires_at: float
    nonce: str | None = None
    auth_time: int = 0
    used: bool = False  # kept after use so a replay can be detected

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


@dataclass
class Token(TokenMixin):
    """One token response: an access token and (usually) its refresh token."""

    id: str
    family_id: str
    parent_id: str | None  # the token whose refresh token was rotated into this one
    grant_type: str
    client_id: str
    user: str
    scope: str
    access_token: str
    refresh_token: str | None
    issued_at: float
    expires_in: int
    refresh_expires_at: float
    access_revoked: bool = False
    refresh_revoked: str | None = None  # None, or why: rotated | revoked | family_revoked | …

    def check_client(self, client):
        return self.client_id == client.get_client_id()

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.access_revoked

    def get_user(self):
        return self.user

    def refresh_expired(self):
        return time.time() >= self.refresh_expires_at


@dataclass
class Store:
    users: list[str]
    code_ttl: int = 60
    access_ttl: int = 60
    refresh_ttl: int = 86400
    state_file: str | None = None
    url: str = ""
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    # Indexes by token string, so lookups stay O(1) when a test refreshes 1,000 connections.
    access_index: dict[str, str] = field(default_factory=dict)
    refresh_index: dict[str, str] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    # Malformed-response switch for /token, by client_id ("*" = every client).
    token_modes: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- events ------------------------------------------------------------------------------

    def event(self, kind: str, **fields) -> None:
        seq = len(self.events) + 1
        self.events.append({"seq": seq, "time": time.time(), "type": kind, **fields})

    # -- lookups -----------------------------------------------------------------------------

    def add_token(self, t: Token) -> None:
        self.tokens[t.id] = t
        self.access_index[t.access_token] = t.id
        if t.refresh_token:
            self.refresh_index[t.refresh_token] = t.id

    def by_access(self, value: str | None) -> Token | None:
        return self.tokens.get(self.access_index.get(value or ""))

    def by_refresh(self, value: str | None) -> Token | None:
        return self.tokens.get(self.refresh_index.get(value or ""))

    # -- revocation --------------------------------------------------------------------------

    def revoke_family(self, family_id: str, reason: str) -> list[str]:
        """Revoke every access and refresh token descended from one authorization grant."""
        hit = []
        for t in self.tokens.values():
            if t.family_id != family_id:
                continue
            if not t.access_revoked or t.refresh_revoked is None:
                hit.append(t.id)
            t.access_revoked = True
            if t.refresh_revoked is None:
                t.refresh_revoked = reason
        self.event("family_revoked", family_id=family_id, reason=reason, token_ids=hit)
        return hit

    def revoke_user(self, user: str) -> list[str]:
        hit = []
        for t in self.tokens.values():
            if t.user == user and (not t.access_revoked or t.refresh_revoked is None):
                t.access_revoked = True
                t.refresh_revoked = t.refresh_revoked or "provider_revoked"
                hit.append(t.id)
        self.event("user_tokens_revoked", user=user, token_ids=hit)
        return hit

    # -- persistence (optional) ----------------------------------------------------------------

    def save(self) -> None:
        """Write the whole state atomically, so a test may restart the fixture and keep its
        tokens. Write-through because Rust's Child::kill is SIGKILL: no exit hook runs."""
        if not self.state_file:
            return
        data = {
            "url": self.url,
            "pid": os.getpid(),
            "clients": [asdict(c) for c in self.clients.values()],
            "codes": [asdict(c) for c in self.codes.values()],
            "tokens": [asdict(t) for t in self.tokens.values()],
            "events": self.events,
        }
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.state_file)

    def load(self) -> None:
        if not self.state_file or not os.path.exists(self.state_file):
            return
        with open(self.state_file) as f:
            data = json.load(f)
        for c in data.get("clients", []):
            self.clients.setdefault(c["client_id"], Client(**c))  # command line wins
        self.codes = {c["code"]: AuthCode(**c) for c in data.get("codes", [])}
        for t in data.get("tokens", []):
            self.add_token(Token(**t))
        self.events = data.get("events", [])
