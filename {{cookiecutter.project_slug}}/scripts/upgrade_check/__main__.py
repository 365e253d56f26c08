import sys

from upgrade_check.cli import main

if __name__ == "__main__":
    sys.exit(main())
