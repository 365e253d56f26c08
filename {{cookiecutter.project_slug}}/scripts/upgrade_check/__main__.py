import sys

from scripts.upgrade_check.cli import main

if __name__ == "__main__":
    sys.exit(main())
