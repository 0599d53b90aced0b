"""GraphQL (strawberry) at /fhir/$graphql: the dose analytics BI tools ask for, computed by the
same service functions as the REST statistics."""
