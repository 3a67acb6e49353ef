"""The station's dashboard: buildings, floor plans, live alerts, approvals, search, charts."""
