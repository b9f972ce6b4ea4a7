"""Importers: turn the field's preference data formats into comparisons in the store.

``run.run_import`` drives an import; ``formats.FORMATS`` names the formats (one module each);
``reader`` streams records out of JSONL / gzipped JSONL / CSV / Parquet / Hugging Face datasets folders.
See docs/data-formats.md.
"""
