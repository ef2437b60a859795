import sys

from hil._entry import main

sys.exit(main())
