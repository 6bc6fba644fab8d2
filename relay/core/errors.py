"""The relay's error tree.

RelayError
 ├── ConfigError              a RELAY_* setting is missing or malformed
 ├── InvalidInput             bad user input (a file, an argument)
 │    ├── InvalidJSON         not JSON, or nested too deep (carries a reason code)
 │    ├── InvalidEvent        a document event failed validation (carries a reason code)
 │    └── InvalidPartner      a partner profile failed validation
 ├── UnknownCode              an industry/region/scale/tag code is not in its catalogue
 ├── UnsafeWebhookURL         a webhook URL points at a private network
 └── DeliveryError            a delivery attempt did not succeed
      ├── TransientDeliveryError   worth retrying (timeouts, 429, 5xx, SMTP 4xx)
      └── PermanentDeliveryError   not worth retrying (other 4xx, SMTP 5xx, 410)
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


class DeliveryError(RelayError):
    """A delivery attempt failed; ``detail`` says how (status code, SMTP reply, error)."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class TransientDeliveryError(DeliveryError):
    """A failure worth retrying later; ``retry_after`` is the receiver's wish, if any."""

    def __init__(
        self, detail: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, status=status)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """A failure that retrying will not fix."""
