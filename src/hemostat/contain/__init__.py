"""Containment (DESIGN §7): plan (pure) -> nftables ruleset text (pure) -> apply.

- ``site``: the site's networks as containment needs them (internal, management, resolvers,
  continuity);
- ``plan``: what one action keeps and stops (host isolation, site cut, destination block);
- ``rules``: the deterministic ``nft -f`` text of table ``inet hemostat``;
- ``apply``: the only place that runs ``nft``: atomic load, self-test and rollback, release,
  TTL expiry, state that survives a restart;
- ``sockets``: kills the established sockets of the flows a plan stops (``ss -K``);
- ``state``: the active actions of this node, on disk;
- ``runner``: how commands run: here, or behind ``ip netns exec NS``;
- ``flows``: which recent flows in the store a plan would stop (the dry-run).

All but ``flows`` (which reads the store) import only the standard library, ``hemostat.errors``
and ``hemostat.audit``, so the agent can use them.
"""
