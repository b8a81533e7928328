"""Corpus preparation: where a recipe's lines come from (IAM's files, parquet datasets, the
handwriting-font renderer and its texts). These write data dirs; the formats themselves live in
htr.data."""
