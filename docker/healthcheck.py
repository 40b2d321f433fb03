"""The image HEALTHCHECK: exit 0 when /health/ready answers 200, 1 otherwise. Standard library
only, so the slim image needs no curl. Port from FIRSTSPIKE_PORT (default 8000)."""

import os
import sys
import urllib.error
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('FIRSTSPIKE_PORT', '8000')}/health/ready"
try:
    with urllib.request.urlopen(url, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError):
    sys.exit(1)
