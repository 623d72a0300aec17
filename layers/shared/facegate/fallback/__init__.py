"""Non-face verification: sessions that always offer a non-face method, OTP by e-mail or SMS, TOTP, manual review."""
