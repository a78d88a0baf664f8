"""``python -m watchkeeper.service.drainer FD``: serve's intake drainer (``service/intake.py``)."""

import sys

from watchkeeper.service.intake import main

if __name__ == "__main__":
    main(sys.argv[1:])
