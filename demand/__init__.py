"""The demand side (DESIGN.md §5a, issue 15): enterprises publish needs (需求), the platform
matches them to institutions, institutions send proposals, the enterprise awards one.

- ``models``: needs, their versions and files, invitations, proposals and their messages;
- ``services``: the rules (publish, moderate, invite, decline, propose, revise, withdraw,
  award, close, expire), each taking a session and flushing, never committing;
- ``matching``: the explainable match score and the ranking of institutions for a need;
- ``funnel``: the staff console's figures;
- ``views``: thin pages over the services (blueprint ``demand``).
"""
