import sys

from infra.local.run import main

# Guarded: the AWS emulation's process (spawned) imports this module too.
if __name__ == "__main__":
    sys.exit(main())
