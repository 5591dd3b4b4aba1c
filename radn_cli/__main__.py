"""python -m radn_cli"""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while starting up: no traceback
    sys.exit(130)

if __name__ == "__main__":
    main()
