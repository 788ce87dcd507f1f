import sys

from infra.local.run import main

sys.exit(main())
