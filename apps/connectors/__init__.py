"""A client's data sources: connection settings (secrets encrypted at rest) and field mappings."""
