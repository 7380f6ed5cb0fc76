"""``python -m unicr.audit``: see :mod:`unicr.audit.cli`."""
from . import main

raise SystemExit(main())
