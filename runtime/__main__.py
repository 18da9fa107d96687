"""``python -m runtime`` is ``tqrun``."""

from runtime.cli import main

main()
