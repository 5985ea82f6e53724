import sys

from workers.pdf.cli import main

sys.exit(main())
