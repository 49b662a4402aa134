"""Any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama, OpenAI) over plain HTTP.

Standard library only: a thread pool keeps ``concurrency`` requests in flight, each one a blocking
``urllib.request`` call. Connection errors, HTTP 429 and 5xx are retried with exponential backoff;
other 4xx answers fail at once with the status and the start of the response body. The API key is
read from an environment variable, sent as ``Authorization: Bearer ...`` and never logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from .base import GenerationConfig, LLMBackend, LLMError, truncate_at_stop

__all__ = ["OpenAIChatBackend", "HTTPStatusError"]

logger = logging.getLogger(__name__)

_BODY_EXCERPT = 300


class HTTPStatusError(LLMError):
    """The server answered with an error status that is not worth retrying (or retries ran out)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


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
        base_url: server root, with or without the trailing ``/v1`` (e.g. ``http://localhost:8000``).
        model: model name sent in every request.
        api_key_env: environment variable holding the API key; when unset or empty no
            Authorization header is sent (local servers usually need none).
        concurrency: requests in flight at once.
        timeout: seconds per request.
        max_retries: extra attempts after a connection error, 429 or 5xx.
        backoff: first retry delay in seconds; doubles each retry (with up to 10 % jitter).
        extra_body: extra JSON fields merged into each request (e.g. ``{"top_p": 1.0}``).
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
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if int(concurrency) < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.base_url = base_url.rstrip("/")
        self.url = _chat_url(base_url)
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.extra_body = dict(extra_body or {})
        root = self.url[: -len("/chat/completions")]
        self.model_id = f"openai:{root}#{model}"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
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
        """Remove the API key from any text that may reach logs or exceptions (servers may echo it)."""
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return text.replace(key, "***") if key else text

    def _ask_one(self, index: int, prompt: str, config: GenerationConfig) -> str:
        data = self._body(prompt, config)
        attempt = 0
        while True:
            req = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
            retry_reason = None
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                return self._parse(index, raw, config)
            except urllib.error.HTTPError as e:
                body = self._scrub(self._excerpt(e.read() or b""))
                if e.code == 429 or e.code >= 500:
                    retry_reason = f"HTTP {e.code}: {body}"
                    status = e.code
                else:
                    raise HTTPStatusError(
                        f"{self.url} answered HTTP {e.code} for prompt #{index}: {body}", e.code) from None
            except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError) as e:
                reason = getattr(e, "reason", e)
                retry_reason = f"connection error: {self._scrub(str(reason))}"
                status = None
            if attempt >= self.max_retries:
                raise HTTPStatusError(
                    f"{self.url}: prompt #{index} failed after {attempt + 1} attempts; last error: {retry_reason}",
                    status)
            delay = self.backoff * (2 ** attempt) * (1.0 + 0.1 * random.random())
            logger.warning("%s: prompt #%d attempt %d failed (%s); retrying in %.2f s",
                           self.url, index, attempt + 1, retry_reason, delay)
            time.sleep(delay)
            attempt += 1

    def _parse(self, index: int, raw: bytes, config: GenerationConfig) -> str:
        try:
            payload = json.loads(raw)
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"{self.url}: unexpected response for prompt #{index}: "
                           f"{self._scrub(self._excerpt(raw))}") from None
        return truncate_at_stop(content or "", config.stop)

    def generate(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        """Send every prompt as its own chat request, ``concurrency`` at a time; answers in prompt order."""
        config = config or GenerationConfig()
        prompts = list(prompts)
        if not prompts:
            return []
        workers = min(self.concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-http") as pool:
            futures = [pool.submit(self._ask_one, i, p, config) for i, p in enumerate(prompts)]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
