"""AI feedback: comparisons made by an LLM judge behind any OpenAI-compatible chat endpoint, guided by a
constitution or rubric file (``rewardkit label ai``), and constitutional revisions (``rewardkit label revise``).

- ``client``: the async chat client (concurrency limit, retries with backoff on 429/5xx/timeouts)
- ``constitution``: the principles file (TOML or markdown), validated
- ``verdict``: the judge's answer -> "A" | "B" | "tie" and its rationale, or None
- ``run``: the labeling loop (position swap, self-consistency, budget, resume)
- ``revise``: critique and rewrite against a principle -> (revision over original) pairs
- ``inputs`` / ``outputs``: pairs from a file or the store; labels to the store and/or JSONL
- ``agreement``: how often AI labels agree with the human labels of the same pairs
"""
