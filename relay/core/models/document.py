"""The document event of DESIGN §4: a policy published, revised or repealed."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from relay.core.models.limits import (
    CHOICES_MAX,
    CODE_MAX,
    CODES_MAX,
    DISCLOSURE_MAX,
    EMAIL_MAX,
    INDEX_NO_MAX,
    PARKS_MAX,
    PHONE_MAX,
    TAGS_MAX,
    URL_MAX,
    VERSION_MAX,
    Changes,
    DocNumber,
    Name,
    ParkName,
    Summary,
    Tag,
    Title,
    one_line,
)

INDUSTRY_CODE = re.compile(r"^(?:[A-T]|[A-T]?\d{2}|[A-T]?\d{3}|[A-T]?\d{4})$")
REGION_CODE = re.compile(r"^\d{6}(?:\d{3}){0,2}$")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class EventType(StrEnum):
    published = "document.published"
    revised = "document.revised"
    repealed = "document.repealed"


class Audience(StrEnum):
    association = "association"
    park = "park"


class Scale(StrEnum):
    """Enterprise scale per 工信部联企业〔2011〕300号."""

    large = "large"
    medium = "medium"
    small = "small"
    micro = "micro"


def _industry(code: str) -> str:
    code = code.strip().upper()
    if not INDUSTRY_CODE.match(code):
        raise ValueError(
            f"{code!r} is not a GB/T 4754-2017 code (a section letter A–T, "
            "or 2/3/4 digits, optionally after the section letter)"
        )
    return code


def _region(code: str) -> str:
    code = code.strip()
    if not REGION_CODE.match(code):
        raise ValueError(f"{code!r} is not a region code (6, 9 or 12 digits, e.g. 310118106)")
    return code


def _http_url(url: str) -> str:
    url = url.strip()
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


IndustryCode = Annotated[str, Field(max_length=CODE_MAX), AfterValidator(_industry)]
RegionCode = Annotated[str, Field(max_length=CODE_MAX), AfterValidator(_region)]
HttpURL = Annotated[
    str, Field(max_length=URL_MAX), AfterValidator(one_line), AfterValidator(_http_url)
]


class Scope(BaseModel):
    """Who a policy applies to; an empty list means "not restricted on this dimension"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    audiences: list[Audience] = Field(default_factory=list, max_length=CHOICES_MAX)
    industries: list[IndustryCode] = Field(default_factory=list, max_length=CODES_MAX)
    regions: list[RegionCode] = Field(default_factory=list, max_length=CODES_MAX)
    parks: list[ParkName] = Field(default_factory=list, max_length=PARKS_MAX)
    scales: list[Scale] = Field(default_factory=list, max_length=CHOICES_MAX)


IndexNo = Annotated[str, Field(max_length=INDEX_NO_MAX), AfterValidator(one_line)]
Disclosure = Annotated[str, Field(max_length=DISCLOSURE_MAX), AfterValidator(one_line)]
Phone = Annotated[str, Field(max_length=PHONE_MAX), AfterValidator(one_line)]
ContactEmail = Annotated[str, Field(max_length=EMAIL_MAX), AfterValidator(one_line)]


class Contact(BaseModel):
    """The drafting unit that answers questions on a policy (item 6: 咨询问题反馈制文单位)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: Name
    phone: Phone | None = None
    email: ContactEmail | None = None


class Document(BaseModel):
    """A policy document as published by the issuing government."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    version: StrictInt = Field(ge=1, le=VERSION_MAX)
    doc_number: DocNumber
    title: Title
    issuer: Title
    published_on: date
    effective_from: date | None = None
    expires_on: date | None = None
    normative: StrictBool = False
    url: HttpURL
    interpretation_url: HttpURL | None = None
    summary: Summary = ""
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    scope: Scope = Field(default_factory=Scope)
    #: For revisions: what changed, in a sentence or two, shown to prior recipients.
    changes: Changes | None = None
    #: 索引号; when absent the document ``id`` is shown as the 索引号.
    index_no: IndexNo | None = None
    #: 公开方式, e.g. 主动公开.
    disclosure: Disclosure | None = None
    #: Who answers questions on the policy.
    contact: Contact | None = None
    #: Repeals: the day the policy stopped applying. Intake fills it with the day the
    #: repeal event occurred (Shanghai) when the publisher leaves it out.
    repealed_on: date | None = None

    @model_validator(mode="after")
    def _validity_in_order(self) -> Document:
        start = self.effective_from or self.published_on
        if self.expires_on is not None and self.expires_on < start:
            raise ValueError(
                f"expires_on {self.expires_on} is before effective_from/published_on {start}"
            )
        return self


class DocumentEvent(BaseModel):
    """The value of a ``documents.published`` record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(pattern=ID_PATTERN)
    type: EventType
    occurred_at: datetime
    document: Document

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2023-06-07T09:00:00+08:00")
        return value
