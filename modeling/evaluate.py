"""``python -m modeling.evaluate``: evaluate a saved model on a release split (JSON report).

Django-free on purpose (it imports only :mod:`modeling.hae`).
"""

from modeling.hae.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
