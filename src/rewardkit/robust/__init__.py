"""Robust training against reward hacking: exploit transformations and the pairs built from them.

One concept per module, importing downward only (records, then each other in this order): ``phrases`` (the
training phrase bank, held apart from the evaluation probes'), ``transforms`` (the registry of exploit
transformations), ``rewrites`` (meaning-preserving rewrites for the invariance penalty), ``profile`` (the TOML
profile of kinds, weights and shares; ``profiles/default.toml`` ships), ``augment`` (augmented training pairs,
marked), ``invariance`` (the penalty, the one module that needs torch). ``rewardkit train --robust PROFILE`` and
``--invariance-weight`` use them (``train/loop.py``).
"""
