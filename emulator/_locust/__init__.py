"""The Locust users `batchconf load` runs (shipped with the package, so that the command works
from any install). Locust loads `locustfile.py` by path, in its own process; nothing imports
this package: importing Locust monkey-patches the importing process with gevent."""
