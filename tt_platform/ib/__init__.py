"""Interactive Brokers: the client layer (``client``), pacing, chunking, the backfill driver and
the IB Gateway emulator (``emulator``). Only ``tt_platform.ib.client`` imports ib_insync."""
