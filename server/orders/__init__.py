"""Orders from the RIS as ServiceRequests, and their reconciliation with the dose data that
arrived (orders without dose, dose without order, demographic mismatches)."""
