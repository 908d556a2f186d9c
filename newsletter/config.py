"""The one validated settings model, loaded once from config.json plus the environment.

Every setting can be overridden by ``NEWSLETTER_<NAME>`` (``__`` between nested names). Secrets
are accepted only from the environment. Errors name the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from newsletter.arxiv.taxonomy import unknown_category_message

ENV_PREFIX = "NEWSLETTER_"
CONFIG_ENV = "NEWSLETTER_CONFIG"
DEFAULT_CONFIG_PATH = "./config.json"
# NEWSLETTER_* variables that are not settings (every other one must name a setting).
NON_SETTING_VARIABLES = frozenset({CONFIG_ENV})
# Settings that are paths: relative ones in a config file are relative to that file's folder.
PATH_SETTINGS = (("archive_dir",), ("delivery", "outbox_dir"), ("ai_summary", "prompt_file"))

# Keys the old single-user bot wrote that served features this project does not carry.
LEGACY_IGNORED_KEYS = frozenset({"fetch_ratings", "display_limit"})

DedupMethod = Literal["id", "title", "link"]
AnnounceType = Literal["new", "cross", "replace", "replace-cross"]
_DEFAULT_ANNOUNCE_TYPES: tuple[AnnounceType, ...] = ("new", "cross")
_SECRET: dict[str, Any] = {"secret": True}


class ConfigError(Exception):
    """A configuration problem a person can fix; the CLI turns it into exit code 2."""


_MAILTO = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ArxivSettings(_Section):
    """How we talk to arXiv; one client owns these manners."""

    rss_url: str = Field("https://rss.arxiv.org/rss/", description="Announcement feed base URL")
    api_url: str = Field("https://export.arxiv.org/api/query", description="arXiv API query URL")
    pdf_url: str = Field("https://arxiv.org/pdf/", description="Base URL of PDFs (full-text mode)")
    delay_seconds: float = Field(3.0, ge=0, description="Minimum seconds between requests")
    timeout_seconds: float = Field(30.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(4, ge=0, le=20, description="Retries on 429/5xx/empty pages")
    batch_size: int = Field(100, ge=1, le=2000, description="Papers per id_list API request")
    backoff_seconds: float = Field(
        5.0, ge=0, description="First retry wait; doubles on each further retry"
    )
    max_backoff_seconds: float = Field(
        120.0, ge=0, description="Longest wait between retries (a longer Retry-After gives up)"
    )
    max_pdf_bytes: int = Field(50_000_000, ge=1024, description="Largest PDF downloaded")


class AISummarySettings(_Section):
    """The OpenAI-compatible model that writes TL;DRs and structured summaries."""

    enabled: bool = Field(False, description="Summarise papers with a model")
    api_key_env: str = Field(
        "DASHSCOPE_API_KEY", description="Name of the environment variable holding the key"
    )
    base_url: str = Field(
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        description="OpenAI-compatible endpoint",
    )
    model: str = Field("qwen-long", min_length=1, max_length=200, description="Model name")
    prompt_file: str | None = Field(None, description="Your own prompt template (optional)")
    max_papers_to_summarize: int = Field(15, ge=0, description="Papers summarised per day")
    max_workers: int = Field(3, ge=1, le=64, description="Concurrent model calls")
    language: str = Field(
        "English",
        min_length=1,
        max_length=64,
        description="The site's summary language (readers without one of their own get it)",
    )
    languages: list[str] = Field(
        default_factory=list,
        description=(
            "Summary languages readers may choose (e.g. English, Chinese); empty: only "
            "`language`. See docs/cadence-language.md"
        ),
    )
    source: Literal["abstract", "fulltext"] = Field(
        "abstract", description="Summarise the abstract or the PDF's text"
    )
    max_input_chars: int = Field(20000, ge=500, description="Characters of full text sent")
    timeout_seconds: float = Field(60.0, gt=0, description="Per-call timeout")
    max_output_tokens: int = Field(800, ge=50, description="Output tokens per call")
    daily_token_budget: int = Field(
        300000, ge=0, description="Tokens the model may use per day (0: no limit)"
    )
    max_retries: int = Field(3, ge=0, le=10, description="Retries on 429/5xx/timeouts")

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for name in value:
            name = name.strip()
            if not name or len(name) > 64 or not name.isprintable():
                raise ValueError(f"each language is 1 to 64 printable characters, not {name!r}")
            if name.casefold() not in {n.casefold() for n in out}:
                out.append(name)
        return out

    @property
    def offered_languages(self) -> list[str]:
        """The languages readers may choose: the site's own first, then ``languages``."""
        rest = [n for n in self.languages if n.casefold() != self.language.casefold()]
        return [self.language, *rest]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekday_name(day: Weekday) -> str:
    """``fri`` -> ``Friday`` (for pages and e-mails)."""
    return _WEEKDAY_NAMES[WEEKDAYS.index(day)]


class DeliverySettings(_Section):
    """Where digests go: an outbox of .eml files, SendGrid, or SMTP."""

    backend: Literal["file", "sendgrid", "smtp"] = Field("file", description="Delivery backend")
    outbox_dir: str = Field("./outbox", description="Directory of .eml files (file backend)")
    sendgrid_host: str = Field("https://api.sendgrid.com", description="SendGrid API host")
    sandbox_mode: bool = Field(False, description="SendGrid sandbox mode (validate, don't send)")
    sendgrid_sections: bool = Field(
        False,
        description=(
            "Send one shared body with message-level `sections` (SendGrid documents section "
            "tags as removed: check on your account first); off: cards expanded before sending"
        ),
    )
    concurrency: int = Field(
        96,
        ge=1,
        le=256,
        description=(
            "Requests in flight (also the most batches a crash can leave in flight; "
            "see docs/email-delivery.md)"
        ),
    )
    prepare_processes: int = Field(
        1,
        ge=0,
        le=16,
        description=(
            "SendGrid: processes that build the requests of a large send, beside the sending "
            "one (0: the sending threads build them)"
        ),
    )
    prepare_min_batches: int = Field(
        1000,
        ge=1,
        description="SendGrid: sends of at least this many batches use prepare_processes",
    )
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 429/5xx")
    in_flight_policy: Literal["skip", "resend"] = Field(
        "skip", description="After a crash: what to do with sends whose outcome is unknown"
    )
    send_empty_note: bool = Field(
        False, description="Send a short note to subscribers with no matching paper"
    )
    weekly_weekday: Weekday = Field(
        "fri",
        description=(
            "Weekly readers' day: their e-mail goes with that day's run (or the next run "
            "when arXiv announces nothing that day)"
        ),
    )
    smtp_host: str = Field("localhost", description="SMTP server")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="SMTP transport security"
    )
    smtp_user: str | None = Field(
        None, description="SMTP user (password: NEWSLETTER_SMTP_PASSWORD)"
    )
    smtp_timeout_seconds: float = Field(30.0, gt=0, description="SMTP timeout")
    webhook_public_key: str | None = Field(
        None, description="SendGrid Event Webhook verification key (base64 ECDSA public key)"
    )
    webhook_max_age_seconds: int = Field(600, ge=1, description="Reject older webhook events")


def check_address(value: str | None) -> str | None:
    """A plain address (``digest@example.org``, no display name): syntax only, no DNS."""
    if value is None:
        return None
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not an e-mail address such as 'digest@example.org' ({exc})") from exc
    return value


class EmailSettings(_Section):
    """The sender's identity and the digest's wording."""

    from_email: str = Field("digest@example.org", description="Sender address")
    from_name: str = Field("arXiv Digest", description="Sender name")
    reply_to: str | None = Field(None, description="Reply-To address")
    postal_address: str = Field("", description="Sender's postal address (footer)")
    subject_template: str = Field(
        "arXiv digest for {date}: {count} papers", description="Subject; {date}, {count}"
    )
    list_id: str = Field("arxiv-digest.example.org", description="List-Id header value")
    unsubscribe_mailto: str | None = Field(
        None,
        description=(
            "Address added as `<mailto:ADDRESS?subject=unsubscribe>` to List-Unsubscribe, after "
            "the one-click https link (unset: the https link only)"
        ),
    )

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _check_mailto(cls, value: str | None) -> str | None:
        if value is not None and not _MAILTO.fullmatch(value):
            raise ValueError(
                "email.unsubscribe_mailto must be a bare address like unsubscribe@example.org"
            )
        return value or None

    _check_addresses = field_validator("from_email", "reply_to")(check_address)


class ScheduleSettings(_Section):
    """When the daily digest fires."""

    enabled: bool = Field(True, description="Run the scheduler inside `newsletter serve`")
    cron: str = Field("40 5 * * 1-5", description="Crontab expression")
    timezone: str = Field("UTC", description="Time zone of the crontab")
    misfire_grace_seconds: int = Field(3600, ge=0, description="Late runs allowed within this")
    resume_days: int = Field(
        3,
        ge=0,
        le=31,
        description="Start-up and every firing finish built issues of the last N days that "
        "still have e-mails queued",
    )

    @model_validator(mode="after")
    def _check_schedule(self) -> ScheduleSettings:
        from newsletter.runtime.crontab import crontab_trigger

        crontab_trigger(self.cron, self.timezone)  # ValueError names the bad field
        return self


class WebSettings(_Section):
    """Web app limits."""

    signup_limit_per_ip_per_hour: int = Field(10, ge=1, description="Signups per IP per hour")
    signup_limit_per_address_per_day: int = Field(3, ge=1, description="Signups per address/day")
    confirm_token_days: int = Field(7, ge=1, description="Days a confirmation link is valid")
    link_days: int = Field(
        90,
        ge=60,
        description="Days the preferences and unsubscribe links of an e-mail work (renewed "
        "with every digest; at least 60, so one-click unsubscribe outlives the e-mail)",
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request body (any framing); larger: 413"
    )
    webhook_max_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024 * 1024,
        description="Largest body of POST /webhooks/sendgrid (SendGrid batches up to ~768 KB)",
    )
    metrics_public: bool = Field(
        False, description="Serve /metrics to anyone; off: it needs Bearer NEWSLETTER_ADMIN_TOKEN"
    )
    feed_size: int = Field(100, ge=1, le=1000, description="Papers in a feed")
    admin_session_hours: float = Field(
        12.0, gt=0, le=720, description="Hours a sign-in to the /admin dashboard lasts"
    )


class RankingSettings(_Section):
    """Personal relevance: how a reader with a profile (interests, example papers, favourite
    authors) is ranked; readers with keywords only keep the keyword ranking (docs/relevance.md)."""

    mode: Literal["keywords", "semantic", "hybrid"] = Field(
        "hybrid", description="Readers with a profile: keywords only, meaning only, or both"
    )
    model: Literal["wordllama", "tfidf", "blend"] = Field(
        "wordllama", description="Text model of the semantic score (see the relevance benchmark)"
    )
    relative_threshold: float = Field(
        1.0,
        ge=-3,
        le=5,
        description="Profile-only papers qualify at mean + this many standard deviations of "
        "the reader's scores that day",
    )
    keyword_weight: float = Field(
        0.1, ge=0, le=10, description="Hybrid: score added per keyword point"
    )
    negative_weight: float = Field(
        0.5, ge=0, le=10, description="Rocchio: weight of the closest 'fewer like this' paper"
    )
    classifier_min_examples: int = Field(
        6, ge=2, le=1000, description="Examples (both signs) before a per-reader classifier"
    )
    max_examples: int = Field(200, ge=1, le=5000, description="Example papers per reader")
    max_upload_bytes: int = Field(
        1_000_000, ge=1000, le=50_000_000, description="Largest BibTeX/Zotero CSV upload"
    )


class Settings(_Section):
    """All settings. Seed keys of the old bot keep their names and meanings."""

    categories: list[str] = Field(
        default_factory=lambda: ["cs.AI", "cs.CL", "cs.LG"], description="arXiv categories"
    )
    keywords: list[str] = Field(default_factory=list, description="Site keywords")
    high_score_keywords: list[str] = Field(
        default_factory=list, description="Old bot's strong keywords (+10 text, +20 title)"
    )
    exclude_keywords: list[str] = Field(default_factory=list, description="Drop papers with these")
    max_papers: int = Field(30, ge=1, le=2000, description="Papers in the global digest")
    days_back: int = Field(7, ge=1, le=60, description="How far back a window may reach")
    min_score: float = Field(0.0, ge=0, description="Global digest score threshold")
    enable_deduplication: bool = Field(True, description="Drop duplicates within a day")
    deduplication_methods: list[DedupMethod] = Field(
        default_factory=lambda: list(get_args(DedupMethod)), description="Duplicate criteria"
    )
    keyword_match: Literal["word", "substring"] = Field(
        "word", description="Whole words and phrases, or the old substring rule"
    )
    announce_types: list[AnnounceType] = Field(
        default_factory=lambda: list(_DEFAULT_ANNOUNCE_TYPES), description="Announcement types kept"
    )
    database_url: str = Field("sqlite:///./data/newsletter.db", description="SQLAlchemy URL")
    archive_dir: str = Field("./archive", description="Markdown archive directory")
    base_url: str = Field("http://localhost:8000", description="Public URL of the site")
    site_name: str = Field("arXiv Digest", description="Name shown on pages and e-mails")
    site_language: str = Field(
        "en",
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="Language tag (BCP 47: en, de-CH) of the feeds: RSS language, Atom xml:lang",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging")

    arxiv: ArxivSettings = Field(default_factory=ArxivSettings)
    ai_summary: AISummarySettings = Field(default_factory=AISummarySettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)

    # Secrets: environment only (NEWSLETTER_SECRET_KEY, ...); refused in config files.
    secret_key: SecretStr | None = Field(
        None, description="Signs tokens", json_schema_extra=_SECRET
    )
    admin_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token of POST /admin/run and /metrics, sign-in token of /admin "
            "(at least 32 characters)"
        ),
        json_schema_extra=_SECRET,
    )
    smtp_password: SecretStr | None = Field(
        None, description="SMTP password", json_schema_extra=_SECRET
    )

    _config_file: Path | None = PrivateAttr(None)

    @property
    def config_file(self) -> Path | None:
        """The config file these settings were loaded from (None: defaults and environment)."""
        return self._config_file

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, value: list[str]) -> list[str]:
        for cat in value:
            problem = unknown_category_message(cat)
            if problem is not None:
                raise ValueError(problem)
        if not value:
            raise ValueError("at least one category is required")
        return list(dict.fromkeys(value))

    @field_validator("keywords", "exclude_keywords", "high_score_keywords")
    @classmethod
    def _strip_terms(cls, value: list[str]) -> list[str]:
        terms = [t.strip() for t in value]
        if any(not t for t in terms):
            raise ValueError("terms must not be empty")
        return terms

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def ai_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The model's key, read from the variable named by ``ai_summary.api_key_env``."""
        env = os.environ if environ is None else environ
        return env.get(self.ai_summary.api_key_env) or None

    def sendgrid_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return env.get("SENDGRID_API_KEY") or None


_SECRET_FIELDS = {"secret_key", "admin_token", "smtp_password"}


def _field_names(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _nested_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = model.model_fields.get(name)
    if field is None:
        return None
    ann = field.annotation
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None


def _did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(
    data: Mapping[str, Any], model: type[BaseModel], prefix: str, notices: list[str]
) -> dict[str, Any]:
    """Reject unknown and secret keys with a helpful message; drop the old bot's extra keys."""
    clean: dict[str, Any] = {}
    names = _field_names(model)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if not prefix and key in LEGACY_IGNORED_KEYS:
            notices.append(f"config: ignoring {key!r} (a setting of the old bot we do not carry)")
            continue
        if key not in names:
            raise ConfigError(
                f"config: unknown key {dotted!r}{_did_you_mean(key, names)}; "
                f"allowed keys{' in ' + prefix.rstrip('.') if prefix else ''}: {', '.join(names)}"
            )
        if not prefix and key in _SECRET_FIELDS:
            raise ConfigError(
                f"config: {dotted!r} is a secret and is read only from the environment "
                f"({ENV_PREFIX}{key.upper()}); remove it from the config file"
            )
        sub = _nested_model(model, key)
        if sub is not None and isinstance(value, Mapping):
            clean[key] = _check_keys(value, sub, f"{dotted}.", notices)
        else:
            clean[key] = value
    return clean


def _parse_env_value(raw: str, model: type[BaseModel], name: str) -> Any:
    """Environment values are strings; lists take JSON or comma-separated items."""
    field = model.model_fields[name]
    origin = getattr(field.annotation, "__origin__", None)
    text = raw.strip()
    if origin is list:
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"config: {ENV_PREFIX}{name.upper()} is not JSON: {exc}") from exc
        return [item.strip() for item in text.split(",") if item.strip()]
    if text in ("", "null") and name != "log_level":
        return None if field.default is None else raw
    return raw


def setting_variables(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> list[str]:
    """Every variable that names a setting or a section (``NEWSLETTER_DELIVERY`` takes JSON)."""
    out: list[str] = []
    for name in model.model_fields:
        var = f"{prefix}{name.upper()}"
        out.append(var)
        sub = _nested_model(model, name)
        if sub is not None:
            out.extend(setting_variables(sub, f"{var}__"))
    return out


def _unknown_variable(var: str) -> ConfigError:
    cut = len(ENV_PREFIX)  # compared without the prefix they all share
    known = {v[cut:]: v for v in [*setting_variables(), *sorted(NON_SETTING_VARIABLES)]}
    close = difflib.get_close_matches(var[cut:], list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {known[close[0]]}?)" if close else ""
    return ConfigError(
        f"config: environment variable {var} matches no setting{hint}; fix its name or unset "
        "it (every NEWSLETTER_* variable must name a setting: see the README's table)"
    )


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Collect NEWSLETTER_* variables into a nested dict; a name that fits no setting is an
    error, like an unknown key in the file (a typo must not be silently ignored)."""
    overrides: dict[str, Any] = {}
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var in NON_SETTING_VARIABLES:
            continue
        path = var[len(ENV_PREFIX) :].lower().split("__")
        model: type[BaseModel] = Settings
        target = overrides
        for i, part in enumerate(path):
            if part not in model.model_fields:
                raise _unknown_variable(var)
            sub = _nested_model(model, part)
            if i == len(path) - 1:
                if sub is not None:
                    try:
                        target[part] = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        raise ConfigError(f"config: {var} must be a JSON object: {exc}") from exc
                else:
                    target[part] = _parse_env_value(raw, model, part)
            elif sub is None:
                raise _unknown_variable(var)
            else:
                target = target.setdefault(part, {})
                model = sub
    return overrides


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
_KINDS = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text in quotes",
    "list_type": 'must be a list, e.g. ["a", "b"]',
    "model_type": "must be an object, e.g. {...}",
    "model_attributes_type": "must be an object, e.g. {...}",
    "dict_type": "must be an object, e.g. {...}",
    "missing": "is required",
}


def _key_text(loc: tuple[Any, ...]) -> str:
    """``('announce_types', 1)`` reads as ``announce_types[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _value_text(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)
    return json.dumps(value, default=str)


def _plain_reason(err: Mapping[str, Any]) -> str:
    """What is wrong and what is allowed, in words a person can act on."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _BOUNDS:
        symbol, name = _BOUNDS[kind]
        bound = ctx.get(name)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {symbol} {bound}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = re.findall(r"'([^']*)'", expected)
        value = err.get("input")
        hint = _did_you_mean(value, options) if isinstance(value, str) else ""
        return f"allowed {expected}{hint}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind in ("string_too_short", "too_short"):
        return "must not be empty"
    return _KINDS.get(kind, str(err["msg"]))


def format_validation_error(
    exc: ValidationError, source: str, env_vars: Mapping[str, str] | None = None
) -> str:
    """One line per problem: ``key = value: what is allowed`` (and the variable it came from)."""
    origins = env_vars or {}
    lines = [f"config: invalid settings in {source}:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = _key_text(loc)
        value = err.get("input")
        shown = "<secret>" if loc and loc[0] in _SECRET_FIELDS else _value_text(value)
        top = ".".join(str(p) for p in loc if isinstance(p, str))
        origin = next(
            (
                f" (from {var})"
                for path, var in origins.items()
                if top == path or top.startswith(path + ".")
            ),
            "",
        )
        lines.append(f"  {key} = {shown}: {_plain_reason(err)}{origin}")
    return "\n".join(lines)


def _env_paths(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted setting paths set from the environment, mapped to their variable names."""
    out: dict[str, str] = {}
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_env_paths(value, f"{path}."))
        out.setdefault(path, ENV_PREFIX + path.upper().replace(".", "__"))
    return out


def config_path(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> tuple[Path, bool]:
    """The config file to read (argument, else NEWSLETTER_CONFIG, else ./config.json) and
    whether it was asked for explicitly (then it must exist)."""
    explicit = path is not None or CONFIG_ENV in environ
    return Path(
        path if path is not None else environ.get(CONFIG_ENV, DEFAULT_CONFIG_PATH)
    ), explicit


def _relative_to(folder: Path, value: Any) -> Any:
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    return os.path.normpath(folder / value)


def _sqlite_relative_to(folder: Path, url: Any) -> Any:
    """``sqlite:///data/x.db`` (a relative file) under ``folder``; other URLs unchanged."""
    prefix = "sqlite:///"
    if not isinstance(url, str) or not url.startswith(prefix):
        return url
    file, sep, query = url[len(prefix) :].partition("?")
    if not file or file == ":memory:" or Path(file).is_absolute():
        return url
    return f"{prefix}{os.path.normpath(folder / file)}{sep}{query}"


def _resolve_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative paths of a config file (and the defaults it leaves in place) are taken relative
    to the file's folder, not to wherever the command happens to run."""
    out = dict(data)
    defaults = Settings.model_construct()
    out["database_url"] = _sqlite_relative_to(
        folder, out.get("database_url", defaults.database_url)
    )
    for path in PATH_SETTINGS:
        target, default = out, defaults
        for part in path[:-1]:
            section = target.get(part, {})
            if not isinstance(section, Mapping):
                break
            target[part] = target = dict(section)
            default = getattr(default, part)
        else:
            key = path[-1]
            target[key] = _relative_to(folder, target.get(key, getattr(default, key)))
    return out


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    notices: list[str] | None = None,
) -> Settings:
    """Load config.json (path argument, else NEWSLETTER_CONFIG, else ./config.json) plus env.

    A missing file at the default path means "all defaults"; a missing explicit path is an error.
    Relative paths in the file (and the default paths, when a file is read) are relative to the
    file's folder; relative paths from the environment are relative to the current directory.
    ``settings.config_file`` says which file was read.
    """
    env = os.environ if environ is None else environ
    sink: list[str] = [] if notices is None else notices
    config_file, explicit = config_path(path, env)
    data: dict[str, Any] = {}
    loaded_from: Path | None = None
    if config_file.exists():
        try:
            loaded = json.loads(config_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"config: {config_file} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
                f"{exc.msg}"
            ) from exc
        except OSError as exc:
            raise ConfigError(f"config: cannot read {config_file}: {exc.strerror}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config: {config_file} must hold a JSON object at the top level")
        loaded_from = config_file.absolute()
        data = _resolve_paths(_check_keys(loaded, Settings, "", sink), loaded_from.parent)
    elif explicit:
        raise ConfigError(f"config: file {config_file} does not exist")
    overrides = _env_overrides(env)
    data = _merge(data, overrides)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        source = str(config_file) if loaded_from else "the environment"
        message = format_validation_error(exc, source, _env_paths(overrides))
        raise ConfigError(message) from exc
    settings._config_file = loaded_from
    return settings


def describe_source(settings: Settings) -> str:
    """One line: which config file was loaded, or that none was."""
    if settings.config_file is not None:
        return f"config: loaded {settings.config_file}"
    return (
        f"config: no config file ({DEFAULT_CONFIG_PATH} not found); using the built-in defaults "
        f"and {ENV_PREFIX}* variables"
    )


def settings_for_tests(**overrides: Any) -> Settings:
    """Defaults plus overrides, validated like a config file (never reads the environment)."""
    return Settings.model_validate(_check_keys(overrides, Settings, "", []))
