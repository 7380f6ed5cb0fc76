"""End-to-end examples on real data: ``python -m unicr.examples.digits`` trains small classifiers on
scikit-learn's bundled digits with noise augmentation, certifies them with :func:`unicr.certify`'s
draws and radii, and runs the paper's classifier-input noise optimisation (C-OPT). They need the
optional extra ``examples`` (scikit-learn); see ``docs/digits.md``."""
