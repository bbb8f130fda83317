"""Demo data: the deterministic demo supermarket (``catalogue``, with its text tables in
``content``), nine months of trade among its organisations (``activity``) and the commands
that load them (``cli``). Nothing outside this package and tests imports it."""
