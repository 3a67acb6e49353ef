"""doorgate rules: the pure domain (no I/O, no clock reads; time is always an argument).

- `rules.model`: units, occupants, credentials, visitor passes, access requests and decisions.
- `rules.access`: `decide` (stateless) and `evaluate` (two factors, anti-passback, pass uses).
- `rules.occupancy`: headcount, last known side, night attribution of companions.
- `rules.alerts`: `Alert`, alert episodes, `check_enrolment_capacity`, `device_offline`.
- `rules.engine`: `step(state, event, now, config, site)`, the single entry point.
- `rules.scenario`: the scenario format and `replay`, to test all of it without hardware.
"""
