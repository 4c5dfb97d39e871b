"""Tools imported from OpenAPI documents: each chosen operation of a tenant's import is a tool agents may use."""
