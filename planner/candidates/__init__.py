"""From a resolved problem to the candidate table: every (slot, configuration, batch level).

table.py: the table and every derived quantity; load.py: capacity at SLO; objectives.py: the registry."""
