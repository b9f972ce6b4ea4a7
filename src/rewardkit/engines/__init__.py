"""Engines that run scoring beyond one process: ``ray`` (Ray Data over a cluster)."""
