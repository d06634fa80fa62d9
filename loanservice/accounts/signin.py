"""Signing in without being locked out: failed sign-ins counted per address, per account and address, and
per known browser, with a soft cap per account; the known-browser and "keep me signed in" cookies.

An attacker who knows an email address can use up the limits of their own addresses, but not those of the
owner's address, nor of a browser the owner has signed in with before (a signed ``known_device`` cookie set
at each successful sign-in). Past the soft cap per account, unknown browsers are slowed down and the owner
is told by email, once a window. See README, "Sessions and signing in".
"""
import hashlib
import secrets

from flask import current_app, request
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, URLSafeSerializer
from limits import parse_many

from ..extensions import limiter
from .services import normalise_email

KNOWN_DEVICE_COOKIE = "known_device"
REMEMBER_COOKIE = "keep_signed_in"
_KNOWN_DEVICE_DAYS = 365
_ACCOUNTS_PER_DEVICE = 20  # a shared computer in the store remembers this many people


def account_key(email: str | None = None) -> str:
    """The account a sign-in names (the posted email unless given), as a short digest for counters and cookies."""
    email = normalise_email(request.form.get("email", "") if email is None else email)
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="known-device")


def _known_device() -> dict:
    """The browser's signed known-device cookie: {"d": device id, "a": [account keys]}, or {}."""
    raw = request.cookies.get(KNOWN_DEVICE_COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer().loads(raw)
    except BadSignature:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("d"), str) or not isinstance(data.get("a"), list):
        return {}
    return data


def from_known_device() -> bool:
    """Whether this browser has signed in to the account it now names before."""
    return account_key() in _known_device().get("a", [])


def pair_key() -> str:
    return f"login-pair:{account_key()}:{get_remote_address()}"


def device_key() -> str:
    return f"login-device:{account_key()}:{_known_device().get('d', '')}"


def _counter_key(kind: str) -> str:
    return f"{current_app.config.get('RATELIMIT_KEY_PREFIX', '')}{kind}"


def account_under_attack() -> bool:
    """Whether the account named has passed its soft cap of failed sign-ins from all addresses."""
    return not all(limiter.limiter.test(item, _counter_key("login-account"), account_key())
                   for item in parse_many(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]))


def pair_limit() -> str:
    """The limit for this account from this address: slower while the account is past its soft cap."""
    config = current_app.config
    return config["LOGIN_SLOWED_RATE_LIMIT"] if account_under_attack() else config["LOGIN_PAIR_RATE_LIMIT"]


def note_failed_sign_in() -> bool:
    """Count a failed sign-in against the account; True when its owner should now be told (once a window)."""
    key = account_key()
    items = parse_many(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"])
    over = [item for item in items if not limiter.limiter.hit(item, _counter_key("login-account"), key)]
    if not over:
        return False
    longest = max(over, key=lambda item: item.get_expiry())
    once = type(longest)(1, longest.multiples)
    return limiter.limiter.hit(once, _counter_key("login-notice"), key)


def remember_device(response, email: str) -> None:
    """Mark the browser as one this account signs in with (kept a year, signed, holding no personal data)."""
    data = _known_device()
    key = account_key(email)
    accounts = [a for a in data.get("a", []) if a != key][-(_ACCOUNTS_PER_DEVICE - 1):] + [key]
    value = _serializer().dumps({"d": data.get("d") or secrets.token_urlsafe(16), "a": accounts})
    _set(response, KNOWN_DEVICE_COOKIE, value, _KNOWN_DEVICE_DAYS)


def set_remember_cookie(response, token: str) -> None:
    _set(response, REMEMBER_COOKIE, token, current_app.config["REMEMBER_DAYS"])


def clear_remember_cookie(response) -> None:
    config = current_app.config
    response.delete_cookie(REMEMBER_COOKIE, secure=config["REMEMBER_COOKIE_SECURE"], httponly=True,
                           samesite=config["REMEMBER_COOKIE_SAMESITE"])


def _set(response, name: str, value: str, days: int) -> None:
    config = current_app.config
    response.set_cookie(name, value, max_age=days * 24 * 3600, secure=config["REMEMBER_COOKIE_SECURE"],
                        httponly=True, samesite=config["REMEMBER_COOKIE_SAMESITE"])
