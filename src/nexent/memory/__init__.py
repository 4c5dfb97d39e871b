"""Long-term memory: facts kept at four levels (tenant, agent, user, user with an agent), recalled before a run and
extracted after it (docs/memory.md)."""
