"""Domain errors. Each carries a stable machine-readable `code` and the HTTP status it maps to.

The mapping to RFC 9457 problem details happens in exactly one place: `facegate.api.problems`.
"""

from __future__ import annotations

from typing import Any


class FacegateError(Exception):
    """Base of every error the service reports to a caller."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class InvalidRequestError(FacegateError):
    status, code, title = 422, "invalid_request", "The request is not valid"


class MalformedJsonError(FacegateError):
    status, code, title = 400, "malformed_json", "The request body is not valid JSON"


class PayloadTooLargeError(FacegateError):
    status, code, title = 413, "payload_too_large", "The request body is too large"


class UnsupportedContentTypeError(FacegateError):
    status, code, title = 415, "unsupported_content_type", "The request body must be application/json"


class UnauthorizedError(FacegateError):
    status, code, title = 401, "unauthorized", "A valid bearer token is required"


class ForbiddenError(FacegateError):
    status, code, title = 403, "forbidden", "The token does not allow this operation"


class TenantUnknownError(FacegateError):
    status, code, title = 403, "tenant_unknown", "The client is not onboarded as a tenant"


class PurposeNotFoundError(FacegateError):
    status, code, title = 404, "purpose_not_found", "The tenant has no such purpose"


class NoticeNotFoundError(FacegateError):
    status, code, title = 404, "notice_not_found", "No notice exists for this purpose and locale"


class NoticeOutdatedError(FacegateError):
    status, code, title = 409, "notice_outdated", "The notice shown is not the current version"


class GuardianRequiredError(FacegateError):
    status, code, title = 422, "guardian_required", "A child under 14 needs a guardian's consent"


class ConsentNotFoundError(FacegateError):
    status, code, title = 404, "consent_not_found", "No consent record exists for this purpose"


class ConsentRequiredError(FacegateError):
    status, code, title = 403, "consent_required", "Active consent for this purpose is required"


class ConflictError(FacegateError):
    status, code, title = 409, "conflict", "A concurrent change was made; retry the request"


class IdempotencyKeyReusedError(FacegateError):
    status, code, title = 422, "idempotency_key_reused", "The Idempotency-Key was used with another request"


class RequestInProgressError(FacegateError):
    status, code, title = 409, "request_in_progress", "A request with this Idempotency-Key is still being processed"


class DependencyUnavailableError(FacegateError):
    status, code, title = 503, "service_unavailable", "A service facegate depends on did not answer in time"


class RouteNotFoundError(FacegateError):
    status, code, title = 404, "route_not_found", "No such route"


class InvalidImageError(FacegateError):
    status, code, title = 400, "invalid_image", "The image cannot be read"


class UnsupportedMediaTypeError(FacegateError):
    status, code, title = 415, "unsupported_media_type", "Only JPEG, PNG and WebP images are accepted"


class ImageTooLargeError(FacegateError):
    status, code, title = 413, "image_too_large", "The image is too large"


class NoFaceError(FacegateError):
    status, code, title = 422, "no_face", "No usable face was found in the image"


class MultipleFacesError(FacegateError):
    status, code, title = 422, "multiple_faces", "More than one comparable face is in the image; exactly one is needed"


class LowQualityError(FacegateError):
    status, code, title = 422, "low_quality", "The face is not good enough to use"


class EnrolmentNotFoundError(FacegateError):
    status, code, title = 404, "enrolment_not_found", "No such enrolment for this subject"


class UploadNotReceivedError(FacegateError):
    """The reason of an enrolment whose presigned upload never came (never raised to a caller)."""

    status, code, title = 410, "upload_not_received", "No image was uploaded before the upload URL expired"


class ProcessingInterruptedError(FacegateError):
    """The reason of an enrolment whose processing ended without an outcome, e.g. a crashed instance."""

    status, code, title = 500, "processing_interrupted", "Processing of the image was interrupted; enrol again"


class NotEnrolledError(FacegateError):
    status, code, title = 409, "not_enrolled", "The subject has no face enrolment for this purpose"


class ReenrolmentRequiredError(FacegateError):
    status, code, title = 409, "reenrolment_required", "The enrolment was made by another model version"


class FallbackRequiredError(FacegateError):
    status, code, title = 423, "fallback_required", "Face verification is paused; use a non-face method"


class ProbeNotFoundError(FacegateError):
    status, code, title = 404, "probe_not_found", "No uploaded probe image with this id (it may have expired)"


class IdentificationDisabledError(FacegateError):
    status, code, title = 403, "identification_disabled", "1:N identification is not enabled for this purpose"


class EnrolmentMismatchError(FacegateError):
    status, code, title = (
        409,
        "enrolment_mismatch",
        "The face does not match the subject's enrolment for this purpose; send replace: true to replace it",
    )


class TooManyTemplatesError(FacegateError):
    status, code, title = 409, "too_many_templates", "The subject has as many templates for this purpose as allowed"


class KeyServiceError(FacegateError):
    status, code, title = 503, "key_service_unavailable", "Encryption keys are unavailable; retry"


class SigningUnavailableError(FacegateError):
    status, code, title = 503, "signing_unavailable", "Results cannot be signed right now; retry"


class EventPublishError(FacegateError):
    status, code, title = (
        503,
        "event_publish_failed",
        "The change was saved but could not be announced; retry",
    )


class DeletionNotFoundError(FacegateError):
    status, code, title = 404, "deletion_not_found", "No such deletion for this tenant"


# -- non-face verification (fallback). None tells whether a subject, an e-mail address or a phone number is known.


class SessionNotFoundError(FacegateError):
    status, code, title = 404, "session_not_found", "No such verification session"


class SessionExpiredError(FacegateError):
    status, code, title = 410, "session_expired", "The verification session has expired; start a new one"


class SessionUsedError(FacegateError):
    status, code, title = 409, "session_used", "The verification session has already been verified"


class MethodNotOfferedError(FacegateError):
    status, code, title = 422, "method_not_offered", "This session does not offer that method"


class ChallengeNotFoundError(FacegateError):
    status, code, title = 404, "challenge_not_found", "No such challenge"


class ChallengeExpiredError(FacegateError):
    status, code, title = 410, "challenge_expired", "The code has expired; ask for a new one"


class ChallengeLockedError(FacegateError):
    status, code, title = 423, "challenge_locked", "Too many wrong codes; this challenge is locked"


class OtpLockedError(FacegateError):
    status, code, title = (
        423,
        "otp_locked",
        "Too many wrong codes for this person; the code methods are paused, manual review is not",
    )


class CodeInvalidError(FacegateError):
    status, code, title = 422, "code_invalid", "The code is not correct"


class CodeReusedError(FacegateError):
    status, code, title = 409, "code_reused", "This code has already been used; wait for the next one"


class ResendTooSoonError(FacegateError):
    status, code, title = 429, "resend_too_soon", "A code was sent moments ago; wait before asking again"


class RateLimitedError(FacegateError):
    status, code, title = 429, "rate_limited", "Too many requests; slow down"


class ReviewNotFoundError(FacegateError):
    status, code, title = 404, "review_not_found", "No such manual review"


class ReviewPendingError(FacegateError):
    status, code, title = 409, "review_pending", "The manual review has not been decided yet"


class ReviewDecidedError(FacegateError):
    status, code, title = 409, "review_decided", "The manual review has already been decided"


class TotpReplacementRequiresProofError(FacegateError):
    status, code, title = (
        403,
        "totp_replacement_requires_proof",
        "A TOTP secret exists; replacing it needs a fresh verification by another method, or the admin scope",
    )


class DeliveryFailedError(FacegateError):
    status, code, title = 502, "delivery_failed", "The code could not be sent; try again or use another method"


# ---------------------------------------------------------------- liveness (facegate.liveness)


class LivenessRequiredError(FacegateError):
    status, code, title = (
        403,
        "liveness_required",
        "This purpose requires a liveness check: answer a liveness session's challenge, or use a non-face method",
    )


class LivenessSessionMismatchError(FacegateError):
    status, code, title = (
        403,
        "liveness_session_mismatch",
        "No liveness session with this id was issued for this subject and purpose",
    )


class LivenessSessionUsedError(FacegateError):
    status, code, title = 409, "liveness_session_used", "The liveness session was already used; start a new one"


class LivenessSessionExpiredError(FacegateError):
    status, code, title = 410, "liveness_session_expired", "The liveness session has expired; start a new one"


class LivenessBurstTooLargeError(FacegateError):
    status, code, title = 413, "liveness_burst_too_large", "The burst has too many frames or too many bytes"


class LivenessFailedError(FacegateError):
    status, code, title = (
        422,
        "liveness_failed",
        "The frames were not judged live; nothing was enrolled. Try a new session or use a non-face method",
    )


# ---------------------------------------------------------------- proctoring (facegate.proctoring)


class ProctoringSessionNotFoundError(FacegateError):
    status, code, title = 404, "proctoring_session_not_found", "No such proctoring session for this tenant"


class ProctoringSessionEndedError(FacegateError):
    status, code, title = 409, "session_ended", "The proctoring session has ended; it takes no more frames"


class ProctoringSessionExpiredError(FacegateError):
    status, code, title = 410, "proctoring_session_expired", "The proctoring session ran longer than allowed"


class SequenceConflictError(FacegateError):
    status, code, title = (
        409,
        "sequence_conflict",
        "This batch is not the one expected next; send the batch numbered expected_sequence",
    )


class ProctoringBatchTooLargeError(FacegateError):
    status, code, title = 413, "proctoring_batch_too_large", "The batch has too many frames or too many bytes"


class TimestampsNotIncreasingError(FacegateError):
    status, code, title = (
        422,
        "timestamps_not_increasing",
        "Frame timestamps must increase, within the batch and after the previous batch's last frame",
    )


class IncidentNotFoundError(FacegateError):
    status, code, title = 404, "incident_not_found", "No such incident in this proctoring session"


class IdentityNotVerifiedError(FacegateError):
    status, code, title = (
        403,
        "identity_not_verified",
        "The candidate was not verified live against their enrolment; the session did not start. "
        "Try again or choose a sitting without face processing",
    )


# ---------------------------------------------------------------- device sessions (facegate.devices)


class InvalidDeviceTokenError(FacegateError):
    status, code, title = 401, "invalid_token", "The device token is missing, malformed or not signed by facegate"


class DeviceSessionExpiredError(FacegateError):
    status, code, title = 401, "device_session_expired", "The device session has expired; ask for a new one"


class DeviceSessionRevokedError(FacegateError):
    status, code, title = 401, "device_session_revoked", "The device session was revoked or no longer exists"


class OperationNotAllowedError(FacegateError):
    status, code, title = 403, "operation_not_allowed", "The device session does not allow this operation"


# -- webhooks (issue 15)
class WebhookEndpointNotFoundError(FacegateError):
    status, code, title = 404, "webhook_endpoint_not_found", "The tenant has no such webhook endpoint"


class WebhookUrlNotAllowedError(FacegateError):
    status, code, title = (
        422,
        "webhook_url_not_allowed",
        "The webhook URL must be https and reach a public address (no private, loopback or link-local network)",
    )


class WebhookEndpointLimitError(FacegateError):
    status, code, title = 409, "webhook_endpoint_limit", "The tenant has as many webhook endpoints as allowed"


class WebhookDeliveryError(FacegateError):
    """No answer from the endpoint (timeout, refused connection, TLS): the delivery is retried later."""

    status, code, title = 502, "webhook_delivery_failed", "The webhook endpoint did not answer"


# -- end webhooks
