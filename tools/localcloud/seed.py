"""Onboarding a tenant: its Cognito app client, its purposes and default notices in zh-CN and en.

The local cloud onboards `demo` and `other` with these functions; `tools/onboard_tenant.py` does the same
against a deployed stack.
"""

from __future__ import annotations

from typing import Any

from facegate.consent.api import NoticeContent
from facegate.consent.dynamo import TenantRepository
from facegate.consent.entities import Notice, Purpose, notice_sha256
from facegate.core.clock import iso, utcnow

TENANTS = ("demo", "other")
SCOPES = ("consent", "enrol", "verify", "identify", "fallback", "delete", "admin")

PURPOSES = {
    "checkout": Purpose(name="checkout", display_name="Checkout verification", retention_days=365),
    "exam_proctoring": Purpose(name="exam_proctoring", display_name="Exam proctoring", retention_days=180),
}

_TEXT: dict[str, dict[str, dict[str, Any]]] = {
    "en": {
        "checkout": {
            "title": "Face verification at checkout",
            "purpose": "To confirm that the account holder is the person approving this payment.",
            "method": "A selfie is turned into a face template (a list of numbers) and compared 1:1 with "
            "the template made when you enrolled. The photo is deleted as soon as it is processed.",
            "retention": "Your face template is kept for 365 days or until you withdraw, whichever is first.",
        },
        "exam_proctoring": {
            "title": "Face checks during your online exam",
            "purpose": "To confirm that the registered candidate is the one taking the exam, alone and facing "
            "the exam. The answer is a list of moments for a person to review, never a verdict.",
            "method": "Before the exam we check that you are present and live (a short challenge, such as "
            "turning your head) and compare your face 1:1 with your enrolment. During the exam your camera "
            "sends one photo every 2 to 10 seconds. Each photo is checked in memory and deleted at once; no "
            "photo, video or sound is ever stored. We watch only for: no face in view, more than one face, "
            "a different person, looking away from the screen for a while, a covered or very dark camera, and "
            "a photo or screen held up to the camera. There is no room scan, and no emotion or intent is read.",
            "retention": "We keep only the list of these moments (type, times, number of photos, confidence, "
            "model version) and the signed report, for 180 days from the day of the exam, or until you withdraw; then "
            "they are deleted. Your face template is kept for 180 days or until you withdraw, whichever is "
            "first.",
            "rights": [
                "You may refuse: you will be offered a sitting with a human proctor or in person, with no "
                "disadvantage.",
                "No decision against you is made by the system. A person at your exam provider reviews every "
                "moment in the report and confirms or dismisses it. 'No face found' and a dark or covered "
                "camera are technical conditions, never counted against you.",
                "To appeal, contact your exam provider: you may see the report about you, explain any moment "
                "and ask for a new review by another person.",
                "You may withdraw at any time; your face data and reports are then deleted.",
                "You may ask what data is held about you, have it corrected or deleted.",
            ],
            "alternatives_text": "Instead of face checks you can sit the exam with a human proctor or in "
            "person; to confirm who you are you can use a code sent by e-mail or text message, an "
            "authenticator app, or a manual check by a person.",
        },
    },
    "zh-CN": {
        "checkout": {
            "title": "结账人脸验证",
            "purpose": "确认批准本次付款的人是账户持有人本人。",
            "method": "自拍照会被转换为人脸模板（一组数字），并与您注册时生成的模板进行一比一比对。照片在处理后立即删除。",
            "retention": "您的人脸模板保存365天，或保存至您撤回同意为止（以先到者为准）。",
        },
        "exam_proctoring": {
            "title": "在线考试期间的人脸核验",
            "purpose": "确认参加考试的是已登记的考生本人，且无他人在场并面向考试画面。结果是一份供人工审核的时间点清单，而不是结论。",
            "method": "考试开始前，我们会确认您本人在场且为真人（完成简短的动作，例如转头），并将您的面部与注册信息进行一比一比对。"
            "考试期间，摄像头每2至10秒发送一张照片。每张照片仅在内存中检查并立即删除；不会保存任何照片、视频或声音。"
            "我们只检查以下情况：画面中没有人脸、出现多张人脸、换成了其他人、较长时间视线离开屏幕、摄像头被遮挡或过暗，"
            "以及有人把照片或屏幕对准摄像头。不进行环境扫描，也不分析情绪或意图。",
            "retention": "我们只保存上述时间点的清单（类型、时间、照片数量、置信度、模型版本）和签名报告，自考试之日起保存180天，"
            "或至您撤回同意为止，之后即删除。您的人脸模板保存180天，或保存至您撤回同意为止（以先到者为准）。",
            "rights": [
                "您可以拒绝：我们将为您安排人工监考或现场考试，且不会对您造成任何不利影响。",
                "系统不会作出对您不利的决定。考试机构的工作人员会逐一审核报告中的每个时间点，予以确认或驳回。"
                "“未检测到人脸”以及摄像头过暗或被遮挡属于技术情况，绝不会被计为您的违规。",
                "如需申诉，请联系您的考试机构：您可以查看与您有关的报告，对任何时间点作出说明，并要求由另一名人员重新审核。",
                "您可以随时撤回同意；撤回后您的人脸数据和报告将被删除。",
                "您有权查阅、更正或删除与您有关的数据。",
            ],
            "alternatives_text": "除人脸核验外，您可以选择人工监考或现场参加考试；身份确认可使用电子邮件或短信验证码、"
            "身份验证器应用，或由人工审核。",
        },
    },
}

_COMMON: dict[str, dict[str, Any]] = {
    "en": {
        "rights": [
            "You may refuse: you will be offered another way to verify, with no disadvantage.",
            "You may withdraw at any time; your face data is then deleted.",
            "You may ask what data is held about you, have it corrected or deleted.",
        ],
        "withdrawal": "Withdraw in the app's privacy settings or ask support; it takes effect at once.",
        "alternatives_text": "Instead of your face you can use a code sent by e-mail or text message, an "
        "authenticator app, or a manual check by a person.",
        "sensitive_data_statement": "Face data is sensitive personal information. It is processed only "
        "with your separate consent, for the purpose stated here, and never for any other.",
    },
    "zh-CN": {
        "rights": [
            "您可以拒绝：我们将为您提供其他验证方式，且不会对您造成任何不利影响。",
            "您可以随时撤回同意；撤回后您的人脸数据将被删除。",
            "您有权查阅、更正或删除与您有关的数据。",
        ],
        "withdrawal": "您可以在应用的隐私设置中或联系客服撤回同意，撤回立即生效。",
        "alternatives_text": "除人脸外，您还可以使用电子邮件或短信验证码、身份验证器应用，或由人工审核进行验证。",
        "sensitive_data_statement": "人脸信息属于敏感个人信息，仅在取得您的单独同意后，为本文所述目的处理，不会用于其他任何目的。",
    },
}


def notice_content(tenant_id: str, purpose: str, locale: str, processor: dict[str, str] | None = None) -> NoticeContent:
    text = _TEXT[locale][purpose]
    return NoticeContent.model_validate(
        {
            **_COMMON[locale],
            **text,  # a purpose's own text (e.g. proctoring's rights) wins over the common one
            "processor": processor or {"name": f"{tenant_id} (local)", "contact": f"privacy@{tenant_id}.example"},
            "retention_days": PURPOSES[purpose].retention_days,
            "alternatives": ["email_otp", "sms_otp", "totp", "manual_review"],
        }
    )


def create_client(cognito: Any, pool_id: str, tenant_id: str) -> str:
    """The tenant's app client (client-credentials grant, all facegate scopes); reused if it exists."""
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    for client in clients:
        if client["ClientName"] == tenant_id:
            return str(client["ClientId"])
    return str(
        cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=tenant_id,
            GenerateSecret=True,
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthScopes=[f"facegate/{scope}" for scope in SCOPES],
            AllowedOAuthFlowsUserPoolClient=True,
        )["UserPoolClient"]["ClientId"]
    )


def seed_tenant(
    tenants: TenantRepository,
    tenant_id: str,
    client_id: str,
    processor: dict[str, str] | None = None,
    created_by: str = "onboarding",
) -> None:
    """Idempotent: purposes are written again with the same values; a notice is added only if none exists."""
    tenants.register_client(client_id, tenant_id)
    for purpose in PURPOSES.values():
        tenants.put_purpose(tenant_id, purpose)
        for locale in ("zh-CN", "en"):
            if tenants.latest_notice(tenant_id, purpose.name, locale) is not None:
                continue
            content = notice_content(tenant_id, purpose.name, locale, processor).model_dump(mode="json")
            tenants.add_notice(
                tenant_id,
                Notice(
                    purpose=purpose.name,
                    locale=locale,
                    version=1,
                    sha256=notice_sha256(purpose.name, locale, 1, content),
                    content=content,
                    created_at=iso(utcnow()),
                ),
                created_by=created_by,
            )
