"""Statistics over the dose facts, for REST, reports and GraphQL."""
