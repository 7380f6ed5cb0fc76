"""``python -m unicr.audit``: see :mod:`unicr.audit.cli`."""
from .cli import main

raise SystemExit(main())
