"""Request and response contracts (pydantic); they also generate the OpenAPI document."""
