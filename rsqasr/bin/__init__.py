"""Entry points, one per recipe step: ``python -m rsqasr.bin.<step> --help``."""
