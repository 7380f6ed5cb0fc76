"""``python -m unicr.certify``: certify a data set with a model into Cohen-format logs; see
:mod:`unicr.certify_cli` and docs/certify.md."""
import sys

if __name__ == "__main__":
    from unicr.certify_cli import main

    sys.exit(main())
else:
    # ``unicr.certify`` is the function unicr.certification.certify (a lazy export of unicr). Importing
    # this file as the module ``unicr.certify`` would make the import system bind the module to that
    # attribute and shadow the function; it binds whatever sys.modules holds under the name once the
    # file has run, so the function is put there instead.
    from unicr.certification import certify

    sys.modules[__name__] = certify
