"""The relay's error tree.

RelayError
 ├── ConfigError              a RELAY_* setting is missing or malformed
 ├── InvalidInput             bad user input (a file, an argument)
 │    ├── InvalidJSON         not JSON, or nested too deep (carries a reason code)
 │    ├── InvalidEvent        a document event failed validation (carries a reason code)
 │    └── InvalidPartner      a partner profile failed validation
 ├── UnknownCode              an industry/region/scale/tag code is not in its catalogue
 ├── UnsafeWebhookURL         a webhook URL points at a private network
 ├── ChatTooLarge             a group-chat notice over its platform's limit even cut to its links
 └── WorkerUnreachable        no worker answers at the URL a command was given (relay status)

Deliveries raise nothing: an attempt's result is an Outcome (``relay.core.outcome``),
delivered, retry, failed or disabled, because a receiver that fails is not an error of
the relay's but a fact to record; ``relay.core.retry`` decides what follows from it.
"""

from __future__ import annotations


class RelayError(Exception):
    """Base class of every error the relay raises on purpose."""


class ConfigError(RelayError):
    """A setting is missing or malformed; the message names the variable."""


class InvalidInput(RelayError):
    """User input could not be accepted; the message says why in one line."""


class InvalidJSON(InvalidInput):
    """Text that is not JSON (``reason`` ``not_json``) or nests too deep (``too_deep``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class InvalidEvent(InvalidInput):
    """A document event failed validation.

    ``reason`` is machine-readable (``not_json``, ``invalid_event``, ``expired``, …),
    ``message`` is a human sentence naming the field and the bad value.
    """

    def __init__(self, reason: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


class InvalidPartner(InvalidInput):
    """A partner profile failed validation."""


class UnknownCode(InvalidInput):
    """A code is not in the catalogue of its dimension."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: unknown code {code!r}")
        self.field = field
        self.code = code


class UnsafeWebhookURL(InvalidInput):
    """A webhook URL resolves to a private, loopback, link-local or metadata address."""


class ChatTooLarge(RelayError):
    """A group-chat notice does not fit its platform's limit even with everything cut but
    its links, title line and labels (``relay.core.chat``): the links alone are too long.

    Only 企业微信's 4096-byte markdown can meet it within the document limits (two URLs of
    2,048 characters); the notice cannot be sent to that robot as it is.
    """

    def __init__(self, platform: str, size: int, limit: int) -> None:
        super().__init__(
            f"the {platform} notice needs {size} bytes with everything but its links cut, "
            f"over the platform's {limit}"
        )
        self.platform = platform
        self.size = size
        self.limit = limit


class WorkerUnreachable(RelayError):
    """No relay worker answers at ``url``; the message says what happened, in one line."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url
