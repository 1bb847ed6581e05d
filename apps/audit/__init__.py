"""A client's tamper-evident audit trail: hash-chained, append-only events, verification and export."""
