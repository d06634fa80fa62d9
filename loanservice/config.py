"""Configuration: everything comes from environment variables, with safe defaults."""
import os


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class MissingSecretKey(RuntimeError):
    """SECRET_KEY is not set where the app must not make one up for itself."""


def check_secret_key(secret_key: str | None, production: bool, workers: int) -> None:
    """Refuse to start without SECRET_KEY in production or with several workers.

    A key made up at start is kept in the instance folder, which other servers (and each container)
    do not share: sessions and form tokens signed by one would be refused by the next.
    """
    if secret_key:
        return
    if production or workers > 1:
        why = "PRODUCTION is on" if production else f"{workers} workers serve the app (WEB_CONCURRENCY)"
        raise MissingSecretKey(
            f"SECRET_KEY is not set and {why}: set SECRET_KEY to the same long random value on every server "
            "(python3 -c 'import secrets; print(secrets.token_hex(32))').")


class Config:
    # None means "a SQLite file in the instance folder"; the factory fills it in.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    # None means "generated once and kept in the instance folder", allowed only on one process that is
    # not marked PRODUCTION (see check_secret_key).
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # On for a real deployment: SECRET_KEY is then required.
    PRODUCTION = _env_bool("PRODUCTION", False)
    # How many worker processes serve the app (gunicorn.conf.py sets it from its workers).
    WEB_CONCURRENCY = int(os.environ.get("WEB_CONCURRENCY") or "1")
    # How many proxies in front set X-Forwarded-For and X-Forwarded-Proto (0: clients reach the app directly).
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES") or "0")
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")

    HUB_NAME = os.environ.get("HUB_NAME", "Demo Music Hub")
    # Phone and email only: letterheads print it under HUB_ADDRESS, so the address is not repeated here.
    HUB_CONTACT = os.environ.get("HUB_CONTACT", "01234 567890 - store@hub.example")
    # Printed at the head of every agreement, receipt and letter (lines separated by "|" or newlines).
    HUB_ADDRESS = os.environ.get("HUB_ADDRESS", "Instrument Store|1 Music Lane|Exampleton EX1 2MP").replace("|", "\n")
    # When parents can collect from (and bring back to) the store: in the "ready to collect" email.
    HUB_OPENING_HOURS = os.environ.get(
        "HUB_OPENING_HOURS", "Monday to Friday 9am-5pm|Saturday 9am-12 noon (term time)").replace("|", "\n")
    # Where overdue notices ask for instruments to be brought back.
    HUB_RETURN_INSTRUCTIONS = os.environ.get(
        "HUB_RETURN_INSTRUCTIONS", "Bring it to the instrument store, or give it to your child's music teacher.")
    ASSET_TAG_PREFIX = os.environ.get("ASSET_TAG_PREFIX", "MIX")
    ASSET_TAG_DIGITS = int(os.environ.get("ASSET_TAG_DIGITS", "6"))
    PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "50"))
    # Condition photos: each upload at most PHOTO_MAX_BYTES (resized and re-saved small on the way in);
    # a whole request at most MAX_CONTENT_LENGTH (larger is refused, 413, before it is read).
    PHOTO_MAX_BYTES = int(os.environ.get("PHOTO_MAX_BYTES", str(15_000_000)))
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(40_000_000)))

    MAIL_SERVER = os.environ.get("MAIL_SERVER")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", False)
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "loans@hub.example")
    MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "10"))
    # The sender tries a message again after 1, 2, 4... times MAIL_RETRY_SECONDS, and marks it failed
    # after MAIL_MAX_ATTEMPTS tries (at once when the server refuses it for good).
    MAIL_RETRY_SECONDS = float(os.environ.get("MAIL_RETRY_SECONDS", "60"))
    MAIL_MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS", "5"))

    REDIS_URL = os.environ.get("REDIS_URL")
    # With REDIS_URL set, notice runs started from the web and the mail sender's jobs go to `rq worker` on this queue.
    NOTICES_QUEUE = os.environ.get("NOTICES_QUEUE", "loanservice")
    # Rate-limit counters live in Redis when REDIS_URL is set, shared by every worker and server.
    # Should Redis become unreachable, each process counts in its own memory (with a warning in the
    # log) and goes back to Redis once it answers again: sign-in keeps working, limits keep holding.
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # A limit counted after the response (failed sign-ins) whose storage fails is logged, not a 500.
    RATELIMIT_SWALLOW_ERRORS = True
    # Seconds to wait for Redis: a dead host must not hold every sign-in.
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 2}
    RATELIMIT_HEADERS_ENABLED = True
    # Failed sign-ins, counted so that nobody can lock a user out (README, "Sessions and signing in"):
    # per client address; per account and address; per account and known browser; and a soft cap per
    # account which, once passed, slows unknown browsers to LOGIN_SLOWED_RATE_LIMIT and mails the owner.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute;50 per hour")
    LOGIN_PAIR_RATE_LIMIT = os.environ.get("LOGIN_PAIR_RATE_LIMIT", "10 per minute;20 per hour")
    LOGIN_DEVICE_RATE_LIMIT = os.environ.get("LOGIN_DEVICE_RATE_LIMIT", "10 per hour")
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "20 per hour")
    LOGIN_SLOWED_RATE_LIMIT = os.environ.get("LOGIN_SLOWED_RATE_LIMIT", "3 per hour")
    # "Keep me signed in" lasts this many days from the sign-in that asked for it.
    REMEMBER_DAYS = int(os.environ.get("REMEMBER_DAYS", "30"))
    # Parents: self-registration and password resets, per address and per email.
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "5 per minute;20 per hour")
    RESET_RATE_LIMIT = os.environ.get("RESET_RATE_LIMIT", "5 per minute;20 per hour")
    RESET_ACCOUNT_RATE_LIMIT = os.environ.get("RESET_ACCOUNT_RATE_LIMIT", "3 per hour")
    CONFIRM_LINK_HOURS = int(os.environ.get("CONFIRM_LINK_HOURS", "48"))
    INVITE_LINK_HOURS = int(os.environ.get("INVITE_LINK_HOURS", "72"))
    RESET_LINK_HOURS = int(os.environ.get("RESET_LINK_HOURS", "2"))

    # Reservations: working days to collect a ready instrument, how the waiting list is ordered
    # ("first_come" or "remission_first") and how many open reservations one child may have.
    RESERVATION_COLLECT_WORKING_DAYS = int(os.environ.get("RESERVATION_COLLECT_WORKING_DAYS", "5"))
    WAITING_LIST_ORDER = os.environ.get("WAITING_LIST_ORDER", "first_come")
    RESERVATIONS_PER_CHILD = int(os.environ.get("RESERVATIONS_PER_CHILD", "2"))

    # Bookings: the day ("MM-DD", in the summer) by which a school confirms its set for next school
    # year; after it, sets not confirmed lapse and are free for others.
    BOOKING_ROLLOVER_BY = os.environ.get("BOOKING_ROLLOVER_BY", "07-01")

    # Hold an individual loan (to a pupil, through their parent or carer, or to a family) until its
    # agreement is signed: check-out makes it pending, with the instrument held, and staff issue it once
    # signed. Schools' set loans, other borrowers and size exchanges are lent at once as before.
    REQUIRE_SIGNED_AGREEMENT = _env_bool("REQUIRE_SIGNED_AGREEMENT", False)

    # Money: invoices fall due this many days after they are issued; how families pay the hub.
    INVOICE_DUE_DAYS = int(os.environ.get("INVOICE_DUE_DAYS", "30"))
    # A term can be invoiced from this many days before it starts (never a term further ahead).
    INVOICE_AHEAD_DAYS = int(os.environ.get("INVOICE_AHEAD_DAYS", "45"))
    HUB_BANK_DETAILS = os.environ.get(
        "HUB_BANK_DETAILS", "Demo Music Hub|Sort code 00-00-00|Account 12345678")  # '|' separates lines
    # Monthly instalments: whether an account may pay a term's invoice in instalments (staff set it per
    # account), and into how many, a month apart from the invoice's due date (the last takes the pennies).
    INSTALMENTS_ALLOWED = _env_bool("INSTALMENTS_ALLOWED", True)
    INSTALMENTS_PER_TERM = int(os.environ.get("INSTALMENTS_PER_TERM", "3"))
    # Deposits: invoiced as their own line on a loan's first invoice, held while it is out, then refunded
    # or kept. A loan's own deposit (from its fee band) comes first; otherwise DEPOSIT_AMOUNT (0: none).
    # Pupils with remission pay it only if their category is listed (comma-separated category names).
    DEPOSIT_AMOUNT = os.environ.get("DEPOSIT_AMOUNT", "0")
    DEPOSIT_REMISSION_CATEGORIES = [name.strip() for name in os.environ.get(
        "DEPOSIT_REMISSION_CATEGORIES",
        "free_school_meals,pupil_premium,looked_after,previously_looked_after,benefits").split(",") if name.strip()]
    # A pupil's first year of hire (from their first loan's start) is invoiced at nothing, the line saying so.
    FIRST_YEAR_FREE = _env_bool("FIRST_YEAR_FREE", False)
    # A loan out for part of a term pays the whole term ("or part thereof"); off: in proportion to its days.
    CHARGE_PART_TERM_IN_FULL = _env_bool("CHARGE_PART_TERM_IN_FULL", True)
    # Keep invoicing, term after term, an instrument kept past its due date until it comes back.
    KEEP_INVOICING_OVERDUE = _env_bool("KEEP_INVOICING_OVERDUE", True)
    # Refuse new loans and reservations to an account owing on invoices this many days old, or owing
    # more than this amount (unset: never); staff can override, and the override is audited.
    DEBT_BLOCK_DAYS = int(os.environ["DEBT_BLOCK_DAYS"]) if os.environ.get("DEBT_BLOCK_DAYS") else None
    DEBT_BLOCK_AMOUNT = os.environ.get("DEBT_BLOCK_AMOUNT") or None
    # The finance export: nominal codes by kind of entry, and by fee band as "hire:B" (money.export has the
    # defaults), e.g. FINANCE_NOMINAL_CODES="hire=4000,hire:B=4002,loss=4010"; the VAT rate on hire and
    # replacements as a fraction (0.20), 0 when the hub does not charge VAT.
    FINANCE_NOMINAL_CODES = dict(pair.strip().split("=", 1) for pair in
                                 os.environ.get("FINANCE_NOMINAL_CODES", "").split(",") if "=" in pair)
    VAT_RATE = os.environ.get("VAT_RATE", "0")

    # Reports: in the funders' data return a count below this is shown as "<5" (and one more wherever a
    # hidden count could be worked back from a total); instruments bought for less than this net cost are
    # flagged on the capital-grant asset register as below the capitalisation (de minimis) threshold.
    REPORT_MIN_COUNT = int(os.environ.get("REPORT_MIN_COUNT", "5"))
    CAPITALISATION_THRESHOLD = os.environ.get("CAPITALISATION_THRESHOLD", "500")

    # Cookies: Secure whenever the public address is https (set it explicitly behind a proxy).
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", PUBLIC_BASE_URL.startswith("https"))
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 60 * 60 * 10  # a store shift
    # Store staff keep a page open all day: the token lives as long as the session.
    WTF_CSRF_TIME_LIMIT = None

    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # A pooled connection idle this many seconds is pinged before use (see loanservice.dbping).
    DB_PING_AFTER_IDLE = float(os.environ.get("DB_PING_AFTER_IDLE", "1"))


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"
    WTF_CSRF_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    PUBLIC_BASE_URL = "http://hub.test"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    PAGE_SIZE = 20
