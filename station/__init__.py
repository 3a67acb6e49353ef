"""The station: consumer of many gateways, its store, approvals."""
