"""The doors over HTTP: FHIR REST (/fhir), statistics (/stats), GraphQL (/fhir/$graphql) and
the OpenAPI document. They authenticate, check roles, call the services below and answer."""
