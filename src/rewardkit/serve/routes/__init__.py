"""The service's routes, one router per area: scoring (``/v1/*``), OpenRLHF (``/get_reward``), admin
(``/admin/reload``) and ops (``/health``, ``/ready``, ``/info``, ``/metrics``)."""
