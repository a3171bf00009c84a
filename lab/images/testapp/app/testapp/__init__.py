"""The lab's test app: a stand-in for a Rails app that meets the collection's app image contract.

Modules: ``config`` (environment, ``*_FILE`` secrets, ``DATABASE_URL``), ``assets`` (fingerprinting and
the manifest), ``schema`` (migrations per release, seeds), ``db`` (connections), ``tasks`` (``bin/rails``),
``web`` (the server). Only ``db``, ``tasks`` and ``web`` need psycopg2; the others are standard library.
"""

from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
