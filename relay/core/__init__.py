"""The pure core: models, matching, planning, rendering, signing and the decisions around them.

No I/O, no asyncio, no Faust, Kafka, HTTP or SMTP (an import-linter contract holds it).
"""
