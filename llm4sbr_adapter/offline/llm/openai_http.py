"""Any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama, OpenAI) over plain HTTP.

Standard library only: a thread pool keeps ``concurrency`` requests in flight, each one a blocking
``urllib.request`` call. Connection errors, HTTP 429 and 5xx are retried with exponential backoff,
or after the wait a 429/503 answer's ``Retry-After`` header asks for (seconds or an HTTP date, at
most ``max_retry_after``); other 4xx answers fail at once with the status and the start of the
response body. Errors and warnings name the prompt by its label (the builder passes session id and
perspective). The API key is read from an environment variable, sent as ``Authorization: Bearer
...`` and never logged. Credentials in the URL (``http://user:password@host``) are taken out of it,
sent as HTTP Basic auth (when no API key is set), and never appear in warnings, errors or
``model_id``.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone
from typing import Any, NamedTuple

from .base import GenerationConfig, LLMBackend, LLMError, truncate_at_stop

__all__ = ["OpenAIChatBackend", "HTTPStatusError", "redact_url"]

logger = logging.getLogger(__name__)

_BODY_EXCERPT = 300
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]*@")

_sleep = time.sleep  # tests replace it to keep retries instant


class HTTPStatusError(LLMError):
    """The server answered with an error status that is not worth retrying (or retries ran out)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class _Retry(NamedTuple):
    """A failed attempt worth retrying: why, the HTTP status (None: no answer), the server's wait."""

    reason: str
    status: int | None
    retry_after: float | None


def redact_url(url: str) -> str:
    """``url`` (or any text holding URLs) with each ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(r"\1***@", url)


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its ``user:password@`` part, and the (unquoted) user and password, if any."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    clean = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    unquote = urllib.parse.unquote
    return clean, unquote(parts.username or ""), unquote(parts.password or "")


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or HTTP date); None if absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


def _chat_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


class OpenAIChatBackend(LLMBackend):
    """Chat completions from an OpenAI-compatible HTTP server.

    Args:
        base_url: server root, with or without the trailing ``/v1`` (e.g. ``http://localhost:8000``);
            ``user:password@`` in it is sent as HTTP Basic auth and kept out of every message.
        model: model name sent in every request.
        api_key_env: environment variable holding the API key; when unset or empty no
            Authorization header is sent (local servers usually need none).
        concurrency: requests in flight at once.
        timeout: seconds per request (must be > 0).
        max_retries: extra attempts after a connection error, 429 or 5xx.
        backoff: first retry delay in seconds; doubles each retry (with up to 10 % jitter).
        extra_body: extra JSON fields merged into each request (e.g. ``{"top_p": 1.0}``).
        max_retry_after: longest wait in seconds honoured from a ``Retry-After`` header.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        *,
        extra_body: dict[str, Any] | None = None,
        max_retry_after: float = 300.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {redact_url(base_url)!r}")
        if int(concurrency) < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if not 0 < float(timeout) < float("inf"):
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout}")
        clean, self._user, self._password = _split_credentials(base_url)
        self.base_url = clean.rstrip("/")
        self.url = _chat_url(clean)
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_retry_after = float(max_retry_after)
        self.extra_body = dict(extra_body or {})
        root = self.url[: -len("/chat/completions")]
        self.model_id = f"openai:{root}#{model}"

    def _api_key(self) -> str:
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    def _basic_token(self) -> str:
        if self._user is None:
            return ""
        return base64.b64encode(f"{self._user}:{self._password}".encode()).decode("ascii")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif self._user is not None:
            headers["Authorization"] = f"Basic {self._basic_token()}"
        return headers

    def _body(self, prompt: str, config: GenerationConfig) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": float(config.temperature),
            "max_tokens": int(config.max_new_tokens),
        }
        if config.stop:
            body["stop"] = list(config.stop)
        body.update(self.extra_body)
        return json.dumps(body).encode("utf-8")

    @staticmethod
    def _excerpt(raw: bytes) -> str:
        text = raw.decode("utf-8", errors="replace").strip().replace("\n", " ")
        return text[:_BODY_EXCERPT] + ("..." if len(text) > _BODY_EXCERPT else "")

    def _scrub(self, text: str) -> str:
        """Remove the API key and URL credentials from text that may reach logs or exceptions
        (servers may echo them)."""
        secrets = [self._api_key(), self._basic_token()]
        if self._user is not None:
            secrets += [f"{self._user}:{self._password}", self._password or ""]
        for secret in sorted((x for x in secrets if x), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _delay(self, attempt: int, retry: _Retry) -> float:
        """Seconds before the next attempt: the server's Retry-After (capped), else exponential backoff."""
        if retry.retry_after is not None:
            return min(retry.retry_after, self.max_retry_after)
        return self.backoff * (2**attempt) * (1.0 + 0.1 * random.random())

    def _ask_one(self, label: str, prompt: str, config: GenerationConfig) -> str:
        data = self._body(prompt, config)
        attempt = 0
        while True:
            outcome = self._attempt(label, data, config)
            if isinstance(outcome, str):
                return outcome
            if attempt >= self.max_retries:
                raise HTTPStatusError(
                    f"{self.url}: {label} failed after {attempt + 1} attempts; last error: {outcome.reason}",
                    outcome.status,
                )
            delay = self._delay(attempt, outcome)
            waited = " (Retry-After)" if outcome.retry_after is not None else ""
            logger.warning(
                "%s: %s attempt %d failed (%s); retrying in %.2f s%s",
                self.url,
                label,
                attempt + 1,
                outcome.reason,
                delay,
                waited,
            )
            _sleep(delay)
            attempt += 1

    def _attempt(self, label: str, data: bytes, config: GenerationConfig) -> str | _Retry:
        """One request: the answer, or why it is worth retrying (raises for an error not worth it)."""
        req = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            return self._http_error(label, e)
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", e)
            return _Retry(f"connection error: {self._scrub(str(reason))}", None, None)
        return self._parse(label, raw, config)

    def _http_error(self, label: str, e: urllib.error.HTTPError) -> _Retry:
        body = self._scrub(self._excerpt(e.read() or b""))
        if e.code == 429 or e.code >= 500:
            headers = e.headers if e.headers is not None else {}
            wait = _retry_after_seconds(headers.get("Retry-After")) if e.code in (429, 503) else None
            return _Retry(f"HTTP {e.code}: {body}", e.code, wait)
        raise HTTPStatusError(f"{self.url} answered HTTP {e.code} for {label}: {body}", e.code) from None

    def _parse(self, label: str, raw: bytes, config: GenerationConfig) -> str:
        try:
            payload = json.loads(raw)
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"{self.url}: unexpected response for {label}: {self._scrub(self._excerpt(raw))}") from None
        return truncate_at_stop(content or "", config.stop)

    def generate(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        """Send every prompt as its own chat request, ``concurrency`` at a time; answers in prompt order."""
        prompts = list(prompts)
        return self.generate_labelled(
            prompts, config or GenerationConfig(), [f"prompt #{i}" for i in range(len(prompts))]
        )

    def generate_labelled(self, prompts: Sequence[str], config: GenerationConfig, labels: Sequence[str]) -> list[str]:
        """:meth:`generate`, with errors and retry warnings naming each prompt by its label."""
        prompts, labels = list(prompts), list(labels)
        if len(labels) != len(prompts):
            raise ValueError(f"{len(labels)} labels for {len(prompts)} prompts")
        if not prompts:
            return []
        workers = min(self.concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-http") as pool:
            futures = [pool.submit(self._ask_one, label, p, config) for label, p in zip(labels, prompts, strict=True)]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
