"""Contracts of the consent function: notices and consent records."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Locale = Literal["zh-CN", "en"]
Decision = Literal["granted", "refused"]
AgeBand = Literal["adult", "minor_14_17", "child_under_14"]
Channel = Literal["web", "mobile_app", "kiosk", "in_person", "api"]
NonFaceMethod = Literal["email_otp", "sms_otp", "totp", "manual_review"]
PurposeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,47}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Processor(_Strict):
    name: ShortText
    contact: ShortText


class NoticeContent(_Strict):
    """What a person is told before any face data is processed (CAC art. 5; PIPL art. 17, 30)."""

    title: ShortText
    processor: Processor
    purpose: LongText
    method: LongText = Field(description="What is processed and how (face image → template, 1:1 match)")
    retention: LongText
    retention_days: int = Field(ge=1, le=3650)
    rights: list[LongText] = Field(min_length=1)
    withdrawal: LongText = Field(description="How to withdraw consent, at any time")
    alternatives: list[NonFaceMethod] = Field(
        min_length=1, description="The non-face methods offered instead; never empty (CAC art. 10)"
    )
    alternatives_text: LongText
    sensitive_data_statement: LongText


class PutNoticeRequest(_Strict):
    locale: Locale
    content: NoticeContent


class NoticeResponse(BaseModel):
    purpose: str
    locale: str
    version: int
    sha256: str
    created_at: str
    content: NoticeContent


class Guardian(_Strict):
    name: ShortText
    relation: Literal["parent", "legal_guardian"]
    contact: ShortText
    decision: Decision


class RecordConsentRequest(_Strict):
    purpose: PurposeName
    notice_version: int = Field(ge=1)
    notice_sha256: Sha256Hex
    decision: Decision
    channel: Channel
    locale: Locale
    age_band: AgeBand
    guardian: Guardian | None = None


class ConsentRecordResponse(BaseModel):
    record_id: str
    subject_id: str
    purpose: str
    action: Literal["granted", "refused", "withdrawn"]
    notice_version: int
    notice_sha256: str
    locale: str
    channel: str
    age_band: str
    guardian: Guardian | None = None
    created_at: str
    prev_hash: str
    record_hash: str
    receipt: str = Field(description="ES256 JWS over the record hash; verify with the keys at /v1/keys")


class ConsentStateResponse(BaseModel):
    purpose: str
    status: Literal["granted", "refused", "withdrawn"]
    active: bool
    record_id: str
    notice_version: int
    notice_sha256: str
    age_band: str
    updated_at: str


class ConsentStatesResponse(BaseModel):
    subject_id: str
    consents: list[ConsentStateResponse]


class ConsentHistoryResponse(BaseModel):
    subject_id: str
    records: list[ConsentRecordResponse]
