"""Opening stored templates: the one audited decryption every reader of templates uses (verification,
identification's gallery build, enrolment's same-person check). A privacy rule, so it lives in one place:
the access is audited before the plaintext exists, and the plaintext becomes the engine's object at once.
"""

from __future__ import annotations

from collections.abc import Callable

from facegate.core.audit import Auditor
from facegate.core.envelope import Sealed, unpack_sealed
from facegate.core.ports import Cipher
from facegate.core.tenancy import CallerContext
from facegate.matching.entities import EngineTemplate, StoredTemplate, subject_id_context, template_context
from facegate.matching.ports import Biometrics


class TemplateOpener:
    def __init__(self, cipher: Cipher, auditor: Auditor, engine: Callable[[], Biometrics]) -> None:
        self._cipher = cipher
        self._auditor = auditor
        self._engine = engine

    def open(self, caller: CallerContext, template: StoredTemplate, **reason: str) -> EngineTemplate:
        """Decrypt a stored template for a comparison or a search key; audited before the plaintext exists."""
        self._auditor.record(
            caller,
            "template.decrypted",
            "ok",
            template.subject_ref,
            template.purpose,
            template_id=template.template_id,
            **reason,
        )
        data = self._cipher.open(
            Sealed(template.ciphertext, template.encrypted_key, template.nonce),
            template_context(template.tenant_id, template.subject_ref, template.purpose),
        )
        return self._engine().from_bytes(template.model_id, template.model_version, data)

    def reveal_subject(self, caller: CallerContext, template: StoredTemplate, purpose: str, reason: str) -> str | None:
        """The tenant's subject id sealed with a template (for naming a 1:N candidate); audited likewise."""
        if not template.subject_sealed:
            return None
        self._auditor.record(caller, "subject.revealed", "ok", template.subject_ref, purpose, reason=reason)
        sealed = unpack_sealed(template.subject_sealed)
        return self._cipher.open(sealed, subject_id_context(template.tenant_id, template.subject_ref)).decode()
