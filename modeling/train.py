"""``python -m modeling.train``: train HumanAesExpert from a release directory.

Django-free on purpose (it imports only :mod:`modeling.hae`), so it runs on a GPU box that has
no database. See :mod:`modeling.hae.train` for the flags.
"""

from modeling.hae.train import main

if __name__ == "__main__":
    raise SystemExit(main())
