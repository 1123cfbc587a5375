"""moto server answering one request at a time: `python3 tools/moto_single_thread.py HOST PORT`.

moto checks a conditional write (If-Match, If-None-Match, a DynamoDB condition) and then
writes without a lock, so under a threaded server two racing writes can both pass the check.
The concurrency tests run moto here, serialized, so what they test is the service's own
handling of races, not moto's.
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, use_reloader=False, use_debugger=False)
