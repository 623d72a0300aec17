"""Errors of the fallback methods. Each has its own stable `code`; none tells whether a subject, an
e-mail address or a phone number is known."""

from __future__ import annotations

from facegate.errors import FacegateError


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
