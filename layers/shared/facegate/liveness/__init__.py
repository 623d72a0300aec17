"""Liveness: server-issued challenges (sessions), per-purpose policy, and the judgement of a burst of frames.

entities.py (plain data), ports.py (storage and engine interfaces), service.py (the rules), dynamo.py (the
DynamoDB implementations), engine.py (the face engine behind the port), api.py (request and response models).
"""
