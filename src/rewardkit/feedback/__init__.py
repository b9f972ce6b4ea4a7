"""The write path of the production loop: feedback items (preferences and implicit events) into the store, and
the score log of what the service served. ``batch`` checks items, ``write`` stores them directly
(``rewardkit.log_feedback``), ``group_commit`` shares transactions between concurrent requests in the service,
``score_log`` keeps served scores without slowing scoring."""
